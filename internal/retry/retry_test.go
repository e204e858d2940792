package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// fakeClock advances instantly on Sleep.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "message of " + code}
}

func httpErr(status int) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("http error")}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		op   string
		err  error
		want Class
	}{
		{"ec2:DescribeAddresses", apiErr("RequestLimitExceeded"), Retry},
		{"ec2:DescribeInstances", apiErr("InvalidInstanceID.NotFound"), Retry},
		{"ec2:AssociateAddress", apiErr("InvalidNetworkInterfaceID.NotFound"), Retry},
		{"ec2:AssociateAddress", apiErr("InvalidAllocationID.NotFound"), Retry},
		{"ec2:AssociateAddress", apiErr("IncorrectInstanceState"), Retry},
		{"ec2:AssociateAddress", apiErr("UnauthorizedOperation"), Denied},
		{"ec2:AssociateAddress", apiErr("AuthFailure"), Denied},
		{"ec2:AssociateAddress", apiErr("Gateway.NotAttached"), Fatal},
		{"ec2:AssociateAddress", apiErr("InvalidParameterValue"), Invalid},
		{"ec2:AssociateAddress", apiErr("SomethingNew"), Fatal},
		{"route53:ChangeResourceRecordSets", apiErr("Throttling"), Retry},
		{"route53:ChangeResourceRecordSets", apiErr("PriorRequestNotComplete"), Retry},
		{"route53:ListResourceRecordSets", apiErr("NoSuchHostedZone"), Invalid},
		{"route53:ChangeResourceRecordSets", apiErr("ExpiredToken"), Denied},
		// A code of one service means nothing in another.
		{"ec2:DescribeAddresses", apiErr("PriorRequestNotComplete"), Fatal},
		{"s3:GetObject", apiErr("SlowDown"), Retry},
		{"s3:GetObject", apiErr("NoSuchKey"), Invalid},
		{"s3:GetObject", apiErr("AccessDenied"), Denied},
		{"ec2:DescribeAddresses", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, Retry},
		{"ec2:DescribeAddresses", NotVisibleYet("x"), Retry},
		{"imds:user-data", &smithy.OperationError{ServiceID: "ec2imds", OperationName: "GetUserData", Err: httpErr(404)}, Fatal},
		{"imds:user-data", &smithy.OperationError{ServiceID: "ec2imds", OperationName: "GetUserData", Err: httpErr(503)}, Retry},
		{"http:GET", httpErr(429), Retry},
		// A per-request deadline; Do tells the caller's own from it.
		{"ec2:DescribeAddresses", context.DeadlineExceeded, Retry},
		{"ec2:DescribeAddresses", context.Canceled, Fatal},
		{"ec2:DescribeAddresses", errors.New("plain"), Fatal},
	}
	for _, tc := range tests {
		if got, _ := Classify(tc.op, tc.err); got != tc.want {
			t.Errorf("Classify(%s, %v) = %v, want %v", tc.op, tc.err, got, tc.want)
		}
	}
}

// TestHints: the hint of a final error names the right service and
// action, once.
func TestHints(t *testing.T) {
	tests := []struct {
		op       string
		err      error
		want     string
		not      []string
		wantCode int
	}{
		{"route53:ChangeResourceRecordSets", apiErr("ExpiredToken"),
			"the AWS credentials have expired", []string{"grant", "ec2:"}, exitcode.Denied},
		{"route53:ChangeResourceRecordSets", apiErr("AccessDenied"),
			"grant route53:ChangeResourceRecordSets to the instance role", []string{"ec2:"}, exitcode.Denied},
		{"ec2:AssociateAddress", apiErr("UnauthorizedOperation"),
			"grant ec2:AssociateAddress to the instance role", nil, exitcode.Denied},
		{"s3:GetObject", apiErr("AccessDenied"),
			"grant s3:GetObject to the instance role", []string{"ec2:"}, exitcode.Denied},
		{"ec2:AssociateAddress", apiErr("AuthFailure"),
			"the AWS credentials were not accepted", []string{"grant"}, exitcode.Denied},
		{"ec2:AssociateAddress", apiErr("Gateway.NotAttached"),
			"attach an internet gateway", nil, exitcode.Failed},
		{"ec2:AssociateAddress", apiErr("InvalidParameterValue"),
			"check the configuration values", nil, exitcode.Usage},
	}
	for _, tc := range tests {
		err := (&Retrier{}).Do(t.Context(), tc.op, func(context.Context) error { return tc.err })
		msg := fmt.Sprint(err)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s %v: got %q, want it to say %q", tc.op, tc.err, msg, tc.want)
		}
		if n := strings.Count(msg, tc.want); n > 1 {
			t.Errorf("%s %v: %q gives its hint %d times, want once", tc.op, tc.err, msg, n)
		}
		for _, not := range tc.not {
			if strings.Contains(msg, not) {
				t.Errorf("%s %v: %q says %q", tc.op, tc.err, msg, not)
			}
		}
		if got := exitcode.Of(err); got != tc.wantCode {
			t.Errorf("%s %v: exit code %d, want %d", tc.op, tc.err, got, tc.wantCode)
		}
	}
}

// TestCodedErrorsPassThrough: an error that already has an exit code (and
// so its own hint) is not wrapped again.
func TestCodedErrorsPassThrough(t *testing.T) {
	inner := exitcode.With(exitcode.Denied, fmt.Errorf("upsert CNAME: not permitted: allow route53:ChangeResourceRecordSets: %w", apiErr("AccessDenied")))
	err := (&Retrier{}).Do(t.Context(), "route53:publish", func(context.Context) error { return inner })
	if err != inner {
		t.Fatalf("got %v, want the error itself", err)
	}
}

func TestGivesUpAtDeadline(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	var logs bytes.Buffer
	r := &Retrier{Clock: clock, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithDeadline(context.Background(), clock.now.Add(time.Minute))
	defer cancel()
	calls := 0
	err := r.Do(ctx, "ec2:DescribeAddresses", func(context.Context) error { calls++; return apiErr("InternalError") })
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("err = %v, want gave up ... InternalError", err)
	}
	if exitcode.Of(err) != exitcode.Failed {
		t.Errorf("exit code %d, want 1", exitcode.Of(err))
	}
	if len(clock.sleeps) < 3 || calls != len(clock.sleeps)+1 {
		t.Errorf("%d calls, %d sleeps", calls, len(clock.sleeps))
	}
	var total time.Duration
	for _, d := range clock.sleeps {
		total += d
	}
	if total > time.Minute {
		t.Errorf("slept %v in all, past the 1m deadline", total)
	}
	if n := strings.Count(logs.String(), "will retry"); n != len(clock.sleeps) {
		t.Errorf("%d retry log lines for %d sleeps", n, len(clock.sleeps))
	}
	if !strings.Contains(logs.String(), "error_code=InternalError") || !strings.Contains(logs.String(), "next_delay=") {
		t.Errorf("retry lines lack error_code or next_delay:\n%s", logs.String())
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second, Rand: func(n int64) int64 { return n - 1 }}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := b.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v (the ceiling)", attempt, got, want)
		}
	}
	b.Rand = func(int64) int64 { return 0 }
	if got := b.Delay(3); got != 0 {
		t.Errorf("full jitter floor = %v, want 0", got)
	}
}
