// Package fetch reads the documents eipclaim reads whole (the
// configuration, the role table) from https:// URLs and local files, at
// most MaxSize bytes, with errors that name the source without its secrets
// (a presigned URL's query string) and carry their exit code. It is shared
// by internal/source and internal/table.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/localfile"
)

// MaxSize caps the size of a document eipclaim reads: far more than any
// configuration or role table needs.
const MaxSize = 1 << 20

// Capped reads at most MaxSize bytes of r.
func Capped(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// Fewer bytes than Content-Length: never parsed, never used.
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: the answer was cut short after %d bytes: %w", name, len(data), RedactErr(err)))
	}
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: %w", name, RedactErr(err)))
	}
	if len(data) > MaxSize {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s is larger than %d bytes: refused (eipclaim's documents are smaller)", name, MaxSize))
	}
	return data, nil
}

// HTTPS reads the document at an https:// URL through client
// (NewHTTPClient(log) when nil): at most MaxSize bytes, a body cut
// short is an error, and an error names the problem, what to check and its
// exit code (404 → 2, 401/403 → 3, 429/5xx after retries → 1). The URL's
// query string (a presigned URL's credentials) never appears in an error.
// It serves every document eipclaim reads over https: the configuration,
// the role table.
func HTTPS(ctx context.Context, client *retryablehttp.Client, log *slog.Logger, url, accept string) ([]byte, error) {
	if client == nil {
		client = NewHTTPClient(log)
	}
	name := Redact(url)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s: not a valid URL: %w", name, RedactErr(err)))
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %w; check the URL and the network (a proxy, the VPC's route to the internet)", name, RedactErr(err)))
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusNotFound || code == http.StatusGone:
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("fetch %s: %s: check the URL", name, resp.Status))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, exitcode.With(exitcode.Denied, fmt.Errorf("fetch %s: %s: the server refused; check the URL's credentials (a presigned URL expires) and the server's policy", name, resp.Status))
	case code == http.StatusTooManyRequests || code >= 500:
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %s (retried up to %d times): try again later, or check the server", name, resp.Status, client.RetryMax))
	case code >= 400:
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("fetch %s: %s: check the URL", name, resp.Status))
	default:
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %s: want 200 OK", name, resp.Status))
	}
	if resp.ContentLength > MaxSize {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s is %d bytes, larger than %d: refused", name, resp.ContentLength, MaxSize))
	}
	return Capped(resp.Body, name)
}

// File reads a local document (the configuration, the role table): at
// most MaxSize bytes of a regular file, opened without waiting
// (internal/localfile: a named pipe or a device is refused at once), with
// an error that names key (the flag or key that gave the path), says what
// to fix and carries its exit code (missing or not a regular file → 2,
// not permitted → 3).
func File(key, path string) ([]byte, error) {
	data, more, err := localfile.Read(path, MaxSize)
	if err != nil {
		return nil, localfile.Describe(key, path, err)
	}
	if more {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s %s is larger than %d bytes: refused (eipclaim's documents are smaller)", key, path, MaxSize))
	}
	return data, nil
}

// NewHTTPClient returns the client for https:// documents (source.Load's
// when its Loader.HTTP is nil, hosts --from's): 4 retries of connection errors, 429 and 5xx with
// exponential backoff (cut short by the context's deadline), 30 s per
// attempt, no redirect to plain http, and log lines at Debug on log
// without URLs' query strings.
func NewHTTPClient(log *slog.Logger) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.RetryMax = 4
	c.RetryWaitMin = 500 * time.Millisecond
	c.RetryWaitMax = 8 * time.Second
	c.HTTPClient.Timeout = 30 * time.Second
	c.HTTPClient.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return errInsecureRedirect
		}
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if errors.Is(err, errInsecureRedirect) {
			return false, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.Logger = nil
	if log != nil {
		c.Logger = retryLogger{log}
	}
	return c
}

var errInsecureRedirect = errors.New("refusing a redirect to a URL that is not https")

// retryLogger gives go-retryablehttp's messages to slog at Debug, without
// URLs' query strings.
type retryLogger struct{ log *slog.Logger }

var _ retryablehttp.LeveledLogger = retryLogger{}

func (r retryLogger) Error(msg string, kv ...any) { r.debug(msg, kv) }
func (r retryLogger) Info(msg string, kv ...any)  { r.debug(msg, kv) }
func (r retryLogger) Debug(msg string, kv ...any) { r.debug(msg, kv) }
func (r retryLogger) Warn(msg string, kv ...any)  { r.debug(msg, kv) }

func (r retryLogger) debug(msg string, kv []any) {
	args := make([]any, len(kv))
	for i, v := range kv {
		switch v := v.(type) {
		case string:
			args[i] = RedactText(v)
		case error:
			args[i] = RedactText(v.Error())
		case fmt.Stringer:
			args[i] = RedactText(v.String())
		default:
			args[i] = v
		}
	}
	r.log.Debug("https: "+RedactText(msg), args...)
}

// urlSecretRE matches a URL's user info and its query and fragment.
var urlSecretRE = regexp.MustCompile(`(?i)(https?://)(?:[^/\s"'<>@]*@)?([^\s"'<>?#]*)(?:[?#][^\s"'<>]*)?`)

// RedactText removes the user info, query strings and fragments of the URLs
// in s (a presigned URL's query string is a credential).
func RedactText(s string) string {
	return urlSecretRE.ReplaceAllString(s, "$1$2")
}

// Redact returns u without user info, query string or fragment.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		s, _, _ := strings.Cut(RedactText(u), "?")
		return s
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// redactedError is err with URLs' secrets removed from its message; errors.Is
// and errors.As still see err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactErr returns err with RedactText applied to its message.
func RedactErr(err error) error { return &redactedError{msg: RedactText(err.Error()), err: err} }
