package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/fetch"
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
		name = fetch.Redact(source)
		data, err = l.fetchHTTPS(ctx, source, name)
	default:
		name = source
		data, err = fetch.File(key, source)
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
	return fetch.Capped(out.Body, source)
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
	return fetch.HTTPS(ctx, l.HTTP, l.Log, source, "application/yaml, application/json, text/yaml, text/plain, */*")
}
