package source

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

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/localfile"
)

// fetchConfig reads and parses the document at source, which key (a flag,
// a variable, a key) named, returning it and the name to show for source
// (a URL without its query string).
func (l *Loader) fetchConfig(ctx context.Context, key, source string) (*config.Config, string, error) {
	var (
		data []byte
		name string
		err  error
	)
	switch {
	case strings.HasPrefix(source, "s3://"):
		name = source
		data, err = l.fetchS3(ctx, source)
	case strings.HasPrefix(source, "https://"):
		name = redactURL(source)
		data, err = l.fetchHTTPS(ctx, source, name)
	default:
		name = source
		data, err = ReadFile(key, source)
	}
	if err != nil {
		return nil, "", err
	}
	if isGzip(data) {
		if data, err = gunzipLimit(data, MaxDecompressed); err != nil {
			return nil, "", exitcode.With(exitcode.Usage, fmt.Errorf("%s: %w", name, err))
		}
	}
	c, err := config.Parse(data, name)
	if err != nil {
		return nil, "", exitcode.With(exitcode.Usage, err)
	}
	return c, name, nil
}

// readCapped reads at most MaxDocument bytes of r.
func readCapped(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocument+1))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// Fewer bytes than Content-Length: never parsed, never used.
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: the answer was cut short after %d bytes: %w", name, len(data), redactErr(err)))
	}
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: %w", name, redactErr(err)))
	}
	if len(data) > MaxDocument {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s is larger than %d bytes: refused (eipclaim's documents are smaller)", name, MaxDocument))
	}
	return data, nil
}

func (l *Loader) fetchS3(ctx context.Context, source string) ([]byte, error) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(source, "s3://"), "/")
	if l.S3 == nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("read %s: no S3 client here: use an https:// or file source", source))
	}
	out, err := l.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, s3Error(err, bucket, key)
	}
	defer out.Body.Close()
	return readCapped(out.Body, source)
}

// s3Error classifies a GetObject error by its code, and says what to do.
func s3Error(err error, bucket, key string) error {
	src := "s3://" + bucket + "/" + key
	var (
		noKey    *types.NoSuchKey
		noBucket *types.NoSuchBucket
		apiErr   smithy.APIError
		code     string
	)
	switch {
	case errors.As(err, &noKey):
		code = "NoSuchKey"
	case errors.As(err, &noBucket):
		code = "NoSuchBucket"
	case errors.As(err, &apiErr):
		code = apiErr.ErrorCode()
	}
	switch code {
	case "NoSuchKey", "NotFound":
		return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: bucket %s has no key %s: check the key name (aws s3 ls s3://%s/): %w", src, bucket, key, bucket, err))
	case "NoSuchBucket":
		return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: no bucket %s: check the bucket name: %w", src, bucket, err))
	case "InvalidBucketName":
		return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: %q is not a valid bucket name: check it: %w", src, bucket, err))
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: bucket %s is in another region: set AWS_REGION to its region: %w", src, bucket, err))
	case "InvalidObjectState":
		return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: the object is archived: restore it, or copy it to a storage class that GetObject can read: %w", src, err))
	case "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return exitcode.With(exitcode.Denied, fmt.Errorf("read %s: %s: grant s3:GetObject on arn:aws:s3:::%s/%s to the instance's role "+
			"(and kms:Decrypt when the object is KMS-encrypted; without s3:ListBucket S3 also answers AccessDenied for a missing key): %w",
			src, code, bucket, key, err))
	}
	var status interface{ HTTPStatusCode() int }
	if code == "" && errors.As(err, &status) {
		switch status.HTTPStatusCode() {
		case http.StatusNotFound:
			return exitcode.With(exitcode.Usage, fmt.Errorf("read %s: not found: check the bucket and key names: %w", src, err))
		case http.StatusForbidden:
			return exitcode.With(exitcode.Denied, fmt.Errorf("read %s: forbidden: grant s3:GetObject on arn:aws:s3:::%s/%s to the instance's role: %w", src, bucket, key, err))
		}
	}
	return exitcode.With(exitcode.Failed, fmt.Errorf("read %s: %w", src, err))
}

func (l *Loader) fetchHTTPS(ctx context.Context, source, _ string) ([]byte, error) {
	return GetHTTPS(ctx, l.HTTP, l.Log, source, "application/yaml, application/json, text/yaml, text/plain, */*")
}

// GetHTTPS reads the document at an https:// URL through client
// (NewHTTPClient(log) when nil): at most MaxDocument bytes, a body cut
// short is an error, and an error names the problem, what to check and its
// exit code (404 → 2, 401/403 → 3, 429/5xx after retries → 1). The URL's
// query string (a presigned URL's credentials) never appears in an error.
// It serves every document eipclaim reads over https: the configuration,
// the role table.
func GetHTTPS(ctx context.Context, client *retryablehttp.Client, log *slog.Logger, url, accept string) ([]byte, error) {
	if client == nil {
		client = NewHTTPClient(log)
	}
	name := redactURL(url)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s: not a valid URL: %w", name, redactErr(err)))
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %w; check the URL and the network (a proxy, the VPC's route to the internet)", name, redactErr(err)))
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
	if resp.ContentLength > MaxDocument {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s is %d bytes, larger than %d: refused", name, resp.ContentLength, MaxDocument))
	}
	return readCapped(resp.Body, name)
}

// ReadFile reads a local document (the configuration, the role table): at
// most MaxDocument bytes of a regular file, opened without waiting
// (internal/localfile: a named pipe or a device is refused at once), with
// an error that names key (the flag or key that gave the path), says what
// to fix and carries its exit code (missing or not a regular file → 2,
// not permitted → 3).
func ReadFile(key, path string) ([]byte, error) {
	data, more, err := localfile.Read(path, MaxDocument)
	if err != nil {
		return nil, localfile.Describe(key, path, err)
	}
	if more {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s %s is larger than %d bytes: refused (eipclaim's documents are smaller)", key, path, MaxDocument))
	}
	return data, nil
}

// NewHTTPClient returns the client Load uses for https:// sources when
// Loader.HTTP is nil: 4 retries of connection errors, 429 and 5xx with
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
			args[i] = redactText(v)
		case error:
			args[i] = redactText(v.Error())
		case fmt.Stringer:
			args[i] = redactText(v.String())
		default:
			args[i] = v
		}
	}
	r.log.Debug("https: "+redactText(msg), args...)
}

// urlSecretRE matches a URL's user info and its query and fragment.
var urlSecretRE = regexp.MustCompile(`(?i)(https?://)(?:[^/\s"'<>@]*@)?([^\s"'<>?#]*)(?:[?#][^\s"'<>]*)?`)

// redactText removes the user info, query strings and fragments of the URLs
// in s (a presigned URL's query string is a credential).
func redactText(s string) string {
	return urlSecretRE.ReplaceAllString(s, "$1$2")
}

// redactURL returns u without user info, query string or fragment.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		s, _, _ := strings.Cut(redactText(u), "?")
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

func redactErr(err error) error { return &redactedError{msg: redactText(err.Error()), err: err} }
