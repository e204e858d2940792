package source

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// instantClock is retry.Clock without the waiting.
type instantClock struct{ now time.Time }

func (c *instantClock) Now() time.Time { return c.now }
func (c *instantClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return ctx.Err()
}

// flakyS3 fails the first fails calls with err, then answers as S3API does.
type flakyS3 struct {
	S3API
	fails, calls int
	err          error
}

func (f *flakyS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.calls++
	if f.calls <= f.fails {
		return nil, &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: f.err}
	}
	return f.S3API.GetObject(ctx, in, optFns...)
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestLoadS3Retried: reading the configuration from S3 is retried, as
// every AWS call, when it failed for a transient reason (a timeout, a 5xx
// after the SDK's attempts), and not when the configuration is at fault.
func TestLoadS3Retried(t *testing.T) {
	timeout := &smithyhttp.RequestSendError{Err: &url.Error{Op: "Get", URL: "https://fleet.s3.amazonaws.com/eipclaim.yaml", Err: timeoutError{}}}
	tests := []struct {
		name      string
		source    string
		err       error
		wantCalls int
		wantCode  int
		want      string
	}{
		{"timeouts", "s3://fleet/eipclaim.yaml", timeout, 3, exitcode.OK, ""},
		{"InternalError", "s3://fleet/eipclaim.yaml", &smithy.GenericAPIError{Code: "InternalError"}, 3, exitcode.OK, ""},
		{"NoSuchKey at once", "s3://fleet/nope.yaml", nil, 1, exitcode.Usage, "bucket fleet has no key nope.yaml"},
		{"AccessDenied at once", "s3://fleet/eipclaim.yaml", &smithy.GenericAPIError{Code: "AccessDenied"}, 1, exitcode.Denied, "grant s3:GetObject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &flakyS3{S3API: &fakeS3{objects: map[string]map[string][]byte{"fleet": {"eipclaim.yaml": []byte(fleetDoc)}}}, err: tc.err}
			if tc.err != nil {
				f.fails = 2
				if tc.wantCalls == 1 {
					f.fails = 100
				}
			}
			r := &retry.Retrier{Clock: &instantClock{now: time.Now()}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := (&Loader{S3: f, Retry: r.Do}).Load(ctx, Request{Config: tc.source})
			if f.calls != tc.wantCalls {
				t.Errorf("%d GetObject calls, want %d", f.calls, tc.wantCalls)
			}
			if exitcode.Of(err) != tc.wantCode || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v (exit %d), want exit %d %q", err, exitcode.Of(err), tc.wantCode, tc.want)
			}
			if err == nil && got.Config.Roles["web"] == nil {
				t.Errorf("roles = %v, want the table from S3", got.Config.Roles)
			}
		})
	}
}

// TestLoadUserDataKeepsItsCode: an IMDS error that says what to do itself
// (IMDS disabled, a token refused: exit 2) is not turned into "unreachable"
// (exit 1).
func TestLoadUserDataKeepsItsCode(t *testing.T) {
	refused := errors.New("IMDS refused the token request (HTTP 405): ... pass --imdsv1")
	l := &Loader{
		IMDS: &fakeIMDS{err: refused},
		Retry: func(ctx context.Context, op string, fn func(context.Context) error) error {
			if err := fn(ctx); err != nil {
				return exitcode.With(exitcode.Usage, err)
			}
			return nil
		},
	}
	_, err := l.Load(context.Background(), Request{UserData: true})
	if exitcode.Of(err) != exitcode.Usage || !errors.Is(err, refused) || strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Load = %v (exit %d), want exit 2 with the refusal, not unreachable", err, exitcode.Of(err))
	}
}
