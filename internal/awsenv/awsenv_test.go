package awsenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// noWait is a retry clock that does not sleep.
type noWait struct{}

func (noWait) Now() time.Time                                   { return time.Now() }
func (noWait) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// TestIdentify: the instance's id and region from IMDS, the region
// replacing the environment's (with a warning), and each way it fails
// named: which read, the deadline, IMDS refusing tokens.
func TestIdentify(t *testing.T) {
	tests := []struct {
		name       string
		envRegion  string
		token      int // the token request's answer
		idStatus   int // instance-id's answer
		deadline   bool
		wantID     string
		wantRegion string
		wantWarn   bool
		wantErr    string // in the error; "" for none
		wantCode   int
		wantLate   bool
	}{
		{name: "read", token: 200, idStatus: 200, wantID: "i-0123456789abcdef0", wantRegion: "eu-west-3"},
		{name: "same region", envRegion: "eu-west-3", token: 200, idStatus: 200, wantID: "i-0123456789abcdef0", wantRegion: "eu-west-3"},
		{name: "other region", envRegion: "us-east-1", token: 200, idStatus: 200, wantID: "i-0123456789abcdef0", wantRegion: "eu-west-3", wantWarn: true},
		{name: "no instance id", token: 200, idStatus: 404, wantErr: "read this instance's id from the instance metadata service (run on EC2 with IMDS enabled", wantCode: exitcode.Failed},
		{name: "token refused", token: 403, idStatus: 200, wantErr: "IMDS refused the token request (HTTP 403", wantCode: exitcode.Usage},
		{name: "deadline", token: 503, idStatus: 200, deadline: true, wantErr: "the deadline expired while trying to read", wantCode: exitcode.Failed, wantLate: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
					if tc.token != 200 {
						w.WriteHeader(tc.token)
						return
					}
					w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
					io.WriteString(w, "token")
				case r.URL.Path == "/latest/meta-data/instance-id":
					if tc.idStatus != 200 {
						w.WriteHeader(tc.idStatus)
						return
					}
					io.WriteString(w, "i-0123456789abcdef0\n")
				case r.URL.Path == "/latest/dynamic/instance-identity/document":
					io.WriteString(w, `{"region":"eu-west-3","instanceId":"i-0123456789abcdef0"}`)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "")
			t.Setenv("AWS_REGION", tc.envRegion)
			t.Setenv("AWS_DEFAULT_REGION", "")
			t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("AWS_MAX_ATTEMPTS", "1")

			env, err := Load(context.Background(), Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ctx := context.Background()
			if tc.deadline {
				// The caller's deadline has passed (eipclaim --timeout 1ns).
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Nanosecond)
				defer cancel()
				<-ctx.Done()
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			r := &retry.Retrier{Log: log, Clock: noWait{}}
			id, err := env.Identify(ctx, r, log)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Identify: %v", err)
				}
				if id.InstanceID != tc.wantID || id.Region != tc.wantRegion || env.Config.Region != tc.wantRegion {
					t.Errorf("got %+v, config region %q; want %s in %s", id, env.Config.Region, tc.wantID, tc.wantRegion)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Identify: got %v, want an error saying %q", err, tc.wantErr)
				}
				if got := exitcode.Of(err); got != tc.wantCode {
					t.Errorf("exit code %d, want %d (%v)", got, tc.wantCode, err)
				}
				var late *DeadlineError
				if errors.As(err, &late) != tc.wantLate {
					t.Errorf("errors.As(%v, *DeadlineError) = %v, want %v", err, !tc.wantLate, tc.wantLate)
				}
			}
			if warned := strings.Contains(logs.String(), "AWS_REGION differs"); warned != tc.wantWarn {
				t.Errorf("warned about AWS_REGION: %v, want %v\n%s", warned, tc.wantWarn, logs.String())
			}
		})
	}
}
