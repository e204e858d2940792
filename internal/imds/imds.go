// Package imds is eipclaim's instance metadata client: the SDK's
// (feature/ec2/imds) with timeouts made for boot, and errors that say why
// a token request failed, classified by internal/retry (a refusal, IMDS
// disabled by the environment, a busy IMDS).
package imds

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/eipclaim/eipclaim/internal/retry"
)

// The instance metadata service's timeouts, for boot: the SDK's defaults
// (a 250 ms dial, 500 ms for the answer's headers) are made to find out
// fast that a program is not on EC2, and give up on an IMDS that is busy,
// as it is while an instance boots. Each attempt gets these; the command's
// --timeout bounds them all.
const (
	dialTimeout    = 2 * time.Second
	headerTimeout  = 5 * time.Second
	attemptTimeout = 10 * time.Second
	// refusalsFinal is how many token requests in a row IMDS must
	// refuse (403, 404, 405) before eipclaim stops asking.
	refusalsFinal = 2
)

// Client is the instance metadata client of every IMDS read, the SDK's
// credential provider's (an instance profile) included. Its errors say why
// a token request failed, which the SDK's own hide (their cause is in an
// error type without Unwrap), so that they are classified by type.
type Client struct {
	md *awsimds.Client
	// disabled: AWS_EC2_METADATA_DISABLED=true turns IMDS off.
	disabled bool
	// refusals counts the token requests refused in a row.
	refusals atomic.Int32
	// answered is set once IMDS has answered any request: it is there,
	// so this is an instance (or its emulator).
	answered atomic.Bool
}

// New returns the IMDS client for cfg (its endpoint, and whether
// AWS_EC2_METADATA_DISABLED turns IMDS off); IMDSv1 only with allowV1.
func New(cfg aws.Config, allowV1 bool) *Client {
	c := &Client{disabled: disabled(cfg)}
	inner := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = headerTimeout
			tr.Proxy = nil // link-local: never through HTTP_PROXY
		}).
		WithTimeout(attemptTimeout)
	c.md = awsimds.NewFromConfig(cfg, func(o *awsimds.Options) {
		if !allowV1 {
			o.EnableFallback = aws.FalseTernary
		}
		// Not a *BuildableClient, which awsimds.New would give its own short
		// timeouts.
		o.HTTPClient = &httpClient{inner: inner, client: c}
	})
	return c
}

// imdsDisabled reports whether the configuration turns IMDS off
// (AWS_EC2_METADATA_DISABLED=true).
func disabled(cfg aws.Config) bool {
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(interface {
			GetEC2IMDSClientEnableState() (awsimds.ClientEnableState, bool, error)
		}); ok {
			if state, found, err := p.GetEC2IMDSClientEnableState(); err == nil && found {
				return state == awsimds.ClientDisabled
			}
		}
	}
	return false
}

func (c *Client) GetMetadata(ctx context.Context, in *awsimds.GetMetadataInput, optFns ...func(*awsimds.Options)) (*awsimds.GetMetadataOutput, error) {
	if c.disabled {
		return nil, ErrDisabled
	}
	t := &tokenAttempt{}
	out, err := c.md.GetMetadata(context.WithValue(ctx, tokenKey{}, t), in, optFns...)
	return out, c.explain(err, t)
}

func (c *Client) GetRegion(ctx context.Context, in *awsimds.GetRegionInput, optFns ...func(*awsimds.Options)) (*awsimds.GetRegionOutput, error) {
	if c.disabled {
		return nil, ErrDisabled
	}
	t := &tokenAttempt{}
	out, err := c.md.GetRegion(context.WithValue(ctx, tokenKey{}, t), in, optFns...)
	return out, c.explain(err, t)
}

func (c *Client) GetUserData(ctx context.Context, in *awsimds.GetUserDataInput, optFns ...func(*awsimds.Options)) (*awsimds.GetUserDataOutput, error) {
	if c.disabled {
		return nil, ErrDisabled
	}
	t := &tokenAttempt{}
	out, err := c.md.GetUserData(context.WithValue(ctx, tokenKey{}, t), in, optFns...)
	return out, c.explain(err, t)
}

// Answered reports whether IMDS has answered any request: it is there, so
// this is an instance (or its emulator), even if it fails for now.
func (c *Client) Answered() bool { return c.answered.Load() }

// Metadata reads one metadata path (such as "instance-id"), trimmed.
func (c *Client) Metadata(ctx context.Context, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &awsimds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// explain returns err with the cause of a failed token request in its
// chain, when the call failed for want of a token.
func (c *Client) explain(err error, t *tokenAttempt) error {
	if err == nil {
		c.refusals.Store(0)
		return nil
	}
	o := t.get()
	if !o.failed {
		return err // no token was asked for, or it was had: err shows its cause
	}
	switch o.status {
	case 0:
		if o.err == nil {
			return err
		}
		return &tokenError{err: err, cause: o.err}
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		n := c.refusals.Add(1)
		return &refusedError{status: o.status, url: o.url, final: n >= refusalsFinal, err: err}
	}
	return &tokenError{err: err, cause: httpStatus(o.status)}
}

type tokenKey struct{}

// tokenAttempt is what became of the last token request of one call.
type tokenAttempt struct {
	mu     sync.Mutex
	status int    // its answer's status; 0 if none came
	err    error  // the transport's error, if no answer came
	url    string // where it went, without a query
	failed bool
}

func (t *tokenAttempt) set(r *http.Request, resp *http.Response, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.url = r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
	t.status, t.err = 0, err
	if resp != nil {
		t.status = resp.StatusCode
	}
	t.failed = err != nil || t.status < 200 || t.status > 299
}

// tokenOutcome is a copy of a tokenAttempt.
type tokenOutcome struct {
	status int
	err    error
	url    string
	failed bool
}

func (t *tokenAttempt) get() tokenOutcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tokenOutcome{status: t.status, err: t.err, url: t.url, failed: t.failed}
}

// httpClient is the IMDS client's HTTP client: it notes what became of token
// requests, for the call that made them.
type httpClient struct {
	inner  awsimds.HTTPClient
	client *Client
}

func (h *httpClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := h.inner.Do(r)
	if err == nil {
		h.client.answered.Store(true)
	}
	if t, ok := r.Context().Value(tokenKey{}).(*tokenAttempt); ok && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/api/token") {
		t.set(r, resp, err)
	}
	return resp, err
}

// tokenError is an IMDS call that failed because its token request did:
// the SDK's error, with the token request's own error in the chain.
type tokenError struct {
	err   error // the SDK's
	cause error // the transport's error, or the answer's status
}

func (e *tokenError) Error() string   { return e.err.Error() }
func (e *tokenError) Unwrap() []error { return []error{e.err, e.cause} }

// httpStatus is an answer's status, as an error.
type httpStatus int

func (s httpStatus) Error() string {
	return fmt.Sprintf("IMDS answered the token request %d %s", int(s), http.StatusText(int(s)))
}
func (s httpStatus) HTTPStatusCode() int { return int(s) }

// refusedError is IMDS refusing a session token: it is disabled for
// this instance (403), or a proxy between does not let PUT through (405),
// or it knows no IMDSv2 (404). Asking again does not help after a second
// refusal.
type refusedError struct {
	status int
	url    string
	final  bool
	err    error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("IMDS refused the token request (HTTP %d %s from PUT %s): IMDS is disabled for this instance or a proxy blocks PUT; "+
		"enable the metadata service (aws ec2 modify-instance-metadata-options --instance-id ID --http-endpoint enabled) or, "+
		"if this instance allows only IMDSv1, pass --imdsv1",
		e.status, http.StatusText(e.status), e.url)
}

func (e *refusedError) Unwrap() error { return e.err }

func (e *refusedError) RetryClass() (retry.Class, string) {
	if !e.final {
		return retry.Retry, fmt.Sprintf("HTTP %d", e.status)
	}
	return retry.Invalid, "IMDSTokenRefused"
}

// ErrDisabled is IMDS turned off by the environment
// (AWS_EC2_METADATA_DISABLED=true): every call returns it at once.
var ErrDisabled error = &disabledError{}

// disabledError is IMDS turned off by the environment, which the SDK
// reports without a type of its own.
type disabledError struct{}

func (*disabledError) Error() string {
	return "AWS_EC2_METADATA_DISABLED=true turns the instance metadata service off, and eipclaim reads this instance's id, " +
		"region and user-data there: unset AWS_EC2_METADATA_DISABLED"
}

func (*disabledError) RetryClass() (retry.Class, string) { return retry.Invalid, "IMDSDisabled" }
