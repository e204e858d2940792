package imds

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/eipclaim/eipclaim/internal/retry"
)

// TestIMDSClientTokenErrors: a failed token request's cause, which the
// SDK's IMDS client hides, is classified by type through Client: the
// answer's status, or the transport's error.
func TestIMDSClientTokenErrors(t *testing.T) {
	var token atomic.Int32 // the status to answer the token request with; -1: drop the connection
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			switch s := int(token.Load()); s {
			case -1:
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			case http.StatusOK:
				w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
				io.WriteString(w, "token")
				return
			default:
				w.WriteHeader(s)
				return
			}
		}
		io.WriteString(w, "i-0123456789abcdef0")
	}))
	defer srv.Close()
	newClient := func() *Client {
		return New(aws.Config{Region: "us-east-1", Retryer: func() aws.Retryer { return aws.NopRetryer{} }}, false)
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)

	tests := []struct {
		status   int32
		want     []retry.Class // the class of each call in a row
		wantCode string
	}{
		{http.StatusTooManyRequests, []retry.Class{retry.Retry, retry.Retry}, ""},
		{http.StatusServiceUnavailable, []retry.Class{retry.Retry, retry.Retry}, ""},
		{-1, []retry.Class{retry.Retry, retry.Retry}, ""},
		{http.StatusBadRequest, []retry.Class{retry.Fatal}, ""},
		{http.StatusForbidden, []retry.Class{retry.Retry, retry.Invalid}, "IMDSTokenRefused"},
		{http.StatusMethodNotAllowed, []retry.Class{retry.Retry, retry.Invalid}, "IMDSTokenRefused"},
	}
	for _, tc := range tests {
		token.Store(tc.status)
		md := newClient()
		var code string
		for i, want := range tc.want {
			_, err := md.Metadata(context.Background(), "instance-id")
			if err == nil {
				t.Fatalf("token %d: call %d succeeded", tc.status, i+1)
			}
			var class retry.Class
			class, code = retry.Classify("sts:credentials", err)
			if class != want {
				t.Errorf("token %d: call %d: Classify(%v) = %v, want %v", tc.status, i+1, err, class, want)
			}
		}
		if code != tc.wantCode {
			t.Errorf("token %d: code %q, want %q", tc.status, code, tc.wantCode)
		}
		// A token had again resets the count of refusals.
		token.Store(http.StatusOK)
		if id, err := md.Metadata(context.Background(), "instance-id"); err != nil || id != "i-0123456789abcdef0" {
			t.Errorf("token %d, then 200: %q, %v", tc.status, id, err)
		}
		if md.refusals.Load() != 0 || !md.Answered() {
			t.Errorf("token %d, then 200: %d refusals, answered %v; want 0, true", tc.status, md.refusals.Load(), md.Answered())
		}
	}

	// Disabled by the environment: said at once, with its own class.
	md := New(aws.Config{Region: "us-east-1", ConfigSources: []any{disabledSource{}}}, false)
	_, err := md.Metadata(context.Background(), "instance-id")
	if class, code := retry.Classify("sts:credentials", err); class != retry.Invalid || code != "IMDSDisabled" || !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled: Classify(%v) = %v, %q; want invalid, IMDSDisabled", err, class, code)
	}
}

// disabledSource is a configuration source that turns IMDS off, as
// AWS_EC2_METADATA_DISABLED=true does.
type disabledSource struct{}

func (disabledSource) GetEC2IMDSClientEnableState() (awsimds.ClientEnableState, bool, error) {
	return awsimds.ClientDisabled, true, nil
}
