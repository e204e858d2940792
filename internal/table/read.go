package table

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/fetch"
)

// Reader reads a table from where `hosts --from` says: s3://bucket/key,
// https://… or a file.
type Reader struct {
	S3    S3API                 // for s3:// (s3:GetObject only)
	HTTP  *retryablehttp.Client // for https:// (fetch.NewHTTPClient)
	Retry RetryFunc
}

// Redact returns src without a URL's user info, query and fragment (a
// presigned URL's query string is a credential).
func Redact(src string) string {
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		return src
	}
	return fetch.Redact(src)
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
		data, err = fetch.HTTPS(ctx, r.HTTP, nil, src, "application/json")
	case strings.Contains(src, "://"):
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--from %s: want s3://BUCKET/KEY, https://… or a file path", name))
	default:
		data, err = fetch.File("--from", src)
	}
	if err != nil {
		return nil, err
	}
	return Parse(data, name)
}
