package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Reader reads a table from where `hosts --from` says: s3://bucket/key,
// https://… or a file.
type Reader struct {
	S3    S3API                 // for s3:// (s3:GetObject only)
	HTTP  *retryablehttp.Client // for https:// (source.NewHTTPClient)
	Retry RetryFunc
}

// Redact returns src without a URL's user info, query and fragment (a
// presigned URL's query string is a credential).
func Redact(src string) string {
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		return src
	}
	u, err := url.Parse(src)
	if err != nil {
		s, _, _ := strings.Cut(src, "?")
		if i := strings.LastIndex(s, "@"); i >= 0 {
			s = s[:strings.Index(s, "://")+3] + s[i+1:]
		}
		return s
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// Read returns the table at src, whole and valid, or an error with an exit
// code: 2 for a table that is not one (Parse) or a source that does not
// exist, 3 when reading it is not permitted, 1 for a failed or partial read.
func (r *Reader) Read(ctx context.Context, src string) (*Document, error) {
	name := Redact(src)
	var (
		data []byte
		err  error
	)
	switch {
	case strings.HasPrefix(src, "s3://"):
		if r.S3 == nil {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s: no S3 client", name))
		}
		bucket, key, perr := ParseS3(src)
		if perr != nil {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--from: %w", perr))
		}
		st := &Store{API: r.S3, Bucket: bucket, Key: key, Retry: r.Retry}
		data, _, err = st.Get(ctx)
		if errors.Is(err, ErrNotFound) {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("no role table at %s: check the bucket and key, or publish one first (a claim with repository: set, or eipclaim register)", name))
		}
	case strings.HasPrefix(src, "https://"):
		data, err = r.https(ctx, src, name)
	case strings.Contains(src, "://"):
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--from %s: want s3://BUCKET/KEY, https://… or a file path", name))
	default:
		data, err = readFile(src)
	}
	if err != nil {
		return nil, err
	}
	return Parse(data, name)
}

func (r *Reader) https(ctx context.Context, src, name string) ([]byte, error) {
	client := r.HTTP
	if client == nil {
		client = retryablehttp.NewClient()
		client.Logger = nil
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s: not a valid URL", name))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %s; check the URL and the network", name, redactURLs(err.Error())))
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusNotFound || code == http.StatusGone:
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("fetch %s: %s: check the URL", name, resp.Status))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, exitcode.With(exitcode.Denied, fmt.Errorf("fetch %s: %s: the server refused; check the URL's credentials (a presigned URL expires) and the server's policy", name, resp.Status))
	case code == http.StatusTooManyRequests || code >= 500:
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %s: try again later, or check the server", name, resp.Status))
	default:
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: %s: want 200 OK", name, resp.Status))
	}
	if resp.ContentLength > MaxSize {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("role table %s: %d bytes, larger than %d: not a role table", name, resp.ContentLength, MaxSize))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		// A body cut short (fewer bytes than Content-Length) ends here:
		// never parsed, never written.
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("fetch %s: the answer was cut short after %d bytes: %s", name, len(data), redactURLs(err.Error())))
	}
	return data, nil
}

// redactURLs removes query strings from the URLs in an error's text.
func redactURLs(s string) string {
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.Contains(f, "://") {
			q := strings.Trim(f, `"':,`)
			fields[i] = strings.Replace(f, q, Redact(q), 1)
		}
	}
	return strings.Join(fields, " ")
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("read %s: no such file: check the path", path))
	case errors.Is(err, fs.ErrPermission):
		return nil, exitcode.With(exitcode.Denied, fmt.Errorf("read %s: permission denied: run as a user that may read it, or fix its mode", path))
	case err != nil:
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: %w", path, err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("read %s: a directory: want the table's file", path))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read %s: %w", path, err))
	}
	return data, nil
}
