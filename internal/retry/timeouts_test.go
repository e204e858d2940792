package retry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// slowServer answers nothing until the request is abandoned or the test
// ends: an endpoint busy beyond any per-request timeout.
func slowServer(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv
}

// realTimeouts returns the errors that real clients return when a request
// outlasts its own timeout, while the caller's context has time left.
func realTimeouts(t *testing.T) map[string]error {
	t.Helper()
	srv := slowServer(t)
	get := func(c *http.Client, ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("the slow server answered")
		}
		return err
	}
	ec2Call := func(c *http.Client, ctx context.Context) error {
		client := ec2.New(ec2.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: c, Retryer: aws.NopRetryer{},
			Credentials: aws.AnonymousCredentials{},
		})
		_, err := client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
		if err == nil {
			t.Fatal("DescribeAddresses succeeded against the slow server")
		}
		return err
	}
	withTimeout := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	clientTimeout := &http.Client{Timeout: 50 * time.Millisecond}
	headerTimeout := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}}
	return map[string]error{
		"http.Client Timeout":              get(clientTimeout, context.Background()),
		"ResponseHeaderTimeout":            get(headerTimeout, context.Background()),
		"per-request context deadline":     get(http.DefaultClient, withTimeout(50*time.Millisecond)),
		"EC2 call, http.Client Timeout":    ec2Call(clientTimeout, context.Background()),
		"EC2 call, ResponseHeaderTimeout":  ec2Call(headerTimeout, context.Background()),
		"EC2 call, per-operation deadline": ec2Call(http.DefaultClient, withTimeout(50*time.Millisecond)),
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// classedErr declares its own class.
type classedErr struct {
	class Class
	code  string
}

func (e classedErr) Error() string               { return "classed: " + e.code }
func (e classedErr) RetryClass() (Class, string) { return e.class, e.code }

func TestClassifyTransportTimeouts(t *testing.T) {
	for name, err := range realTimeouts(t) {
		if got, code := Classify("ec2:DescribeAddresses", err); got != Retry || code != "" {
			t.Errorf("%s: Classify(%v) = %v, %q; want retry", name, err, got, code)
		}
		if got := codeOr("", err); got != "timeout" {
			t.Errorf("%s: logged as error_code=%s, want timeout", name, got)
		}
	}

	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &smithyhttp.RequestSendError{Err: err}}
	}
	tests := []struct {
		name     string
		err      error
		want     Class
		wantCode string
	}{
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, Retry, ""},
		{"url.Error timeout", &url.Error{Op: "Get", URL: "https://s3.amazonaws.com/b/k", Err: timeoutErr{}}, Retry, ""},
		{"S3 send timeout", op(&url.Error{Op: "Get", URL: "https://s3.amazonaws.com/b/k", Err: timeoutErr{}}), Retry, ""},
		{"Route 53 operation deadline", &smithy.OperationError{ServiceID: "Route 53", OperationName: "GetChange",
			Err: &smithy.CanceledError{Err: context.DeadlineExceeded}}, Retry, ""},
		{"deadline, wrapped", fmt.Errorf("read: %w", context.DeadlineExceeded), Retry, ""},
		{"canceled", &smithy.CanceledError{Err: context.Canceled}, Fatal, ""},
		{"canceled, wrapped", fmt.Errorf("x: %w", context.Canceled), Fatal, ""},
		{"connection refused", &url.Error{Op: "Put", URL: "http://169.254.169.254/latest/api/token",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, Retry, ""},
		{"connection reset", op(&url.Error{Op: "Post", URL: "https://ec2.us-east-1.amazonaws.com/", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}), Retry, ""},
		{"EOF", &url.Error{Op: "Get", URL: "https://example.com/x", Err: io.EOF}, Retry, ""},
		{"no such host yet", &url.Error{Op: "Get", URL: "https://example.com/x", Err: &net.DNSError{Err: "no such host", Name: "example.com"}}, Retry, ""},
		{"certificate", op(&url.Error{Op: "Get", URL: "https://example.com/x", Err: x509.UnknownAuthorityError{}}), Fatal, ""},
		{"refused redirect", &url.Error{Op: "Get", URL: "https://example.com/x", Err: errors.New("refusing a redirect to a URL that is not https")}, Fatal, ""},
		{"http 429", httpErr(429), Retry, ""},
		{"http 503", httpErr(503), Retry, ""},
		{"http 403", httpErr(403), Fatal, ""},
		{"classed denied", fmt.Errorf("x: %w", classedErr{Denied, "NoCredentials"}), Denied, "NoCredentials"},
		{"classed retry", classedErr{Retry, "HTTP 403"}, Retry, "HTTP 403"},
		{"an IMDS error without a cause is no longer guessed", &smithy.OperationError{ServiceID: "ec2imds", OperationName: "GetMetadata",
			Err: errors.New("access disabled to EC2 IMDS via client option")}, Fatal, ""},
	}
	for _, tc := range tests {
		if got, code := Classify("s3:GetObject", tc.err); got != tc.want || code != tc.wantCode {
			t.Errorf("%s: Classify(%v) = %v, %q; want %v, %q", tc.name, tc.err, got, code, tc.want, tc.wantCode)
		}
	}
}

// TestDoRetriesRequestTimeouts: a request that times out on its own, while
// the command's deadline has time left, is tried again.
func TestDoRetriesRequestTimeouts(t *testing.T) {
	errs := realTimeouts(t)
	for name, timeout := range errs {
		clock := &fakeClock{now: time.Now()}
		r := &Retrier{Clock: clock}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		calls := 0
		err := r.Do(ctx, "ec2:DescribeAddresses", func(context.Context) error {
			calls++
			if calls < 3 {
				return timeout
			}
			return nil
		})
		cancel()
		if err != nil || calls != 3 || len(clock.sleeps) != 2 {
			t.Errorf("%s: Do = %v after %d calls and %d sleeps; want success on the third call", name, err, calls, len(clock.sleeps))
		}
	}
}

// TestDoStopsAtCallerDeadline: when the command's own context is done, the
// deadline error is not retried, and says so.
func TestDoStopsAtCallerDeadline(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	r := &Retrier{Clock: clock}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, expire := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer expire()
	calls := 0
	err := r.Do(ctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		calls++
		return &smithy.OperationError{ServiceID: "EC2", OperationName: "ec2:DescribeAddresses", Err: &smithy.CanceledError{Err: ctx.Err()}}
	})
	if calls != 1 || len(clock.sleeps) != 0 {
		t.Errorf("%d calls, %d sleeps after the caller's deadline; want 1 call, no sleep", calls, len(clock.sleeps))
	}
	if exitcode.Of(err) != exitcode.Failed || err == nil || !strings.Contains(err.Error(), "the deadline (--timeout) passed") {
		t.Errorf("Do = %v (exit %d), want exit 1 saying the deadline passed", err, exitcode.Of(err))
	}

	// Stopped (SIGTERM): context.Canceled is final.
	ctx, stop := context.WithCancel(context.Background())
	stop()
	calls = 0
	err = r.Do(ctx, "ec2:AssociateAddress", func(ctx context.Context) error { calls++; return ctx.Err() })
	if calls != 1 || exitcode.Of(err) != exitcode.Failed || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %d calls, Do = %v (exit %d); want 1 call, exit 1, context.Canceled", calls, err, exitcode.Of(err))
	}
}

// TestDoClassedErrors: an error that declares its class ends the retries
// with that class's exit code, and its own message, without a hint.
func TestDoClassedErrors(t *testing.T) {
	r := &Retrier{Clock: &fakeClock{now: time.Now()}}
	for _, tc := range []struct {
		class Class
		want  int
	}{{Denied, exitcode.Denied}, {Invalid, exitcode.Usage}, {Fatal, exitcode.Failed}} {
		err := r.Do(context.Background(), "imds:instance-id", func(context.Context) error { return classedErr{tc.class, "X"} })
		if exitcode.Of(err) != tc.want || err.Error() != "imds:instance-id: classed: X" {
			t.Errorf("%v: Do = %q (exit %d), want %q, exit %d", tc.class, err, exitcode.Of(err), "imds:instance-id: classed: X", tc.want)
		}
	}
}
