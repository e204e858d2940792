package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// S3API is the part of the S3 client the table uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// RetryFunc runs fn until it succeeds, fails for good or the deadline
// comes (retry.Retrier.Do).
type RetryFunc func(ctx context.Context, op string, fn func(context.Context) error) error

// Store is the table's S3 object.
type Store struct {
	API         S3API
	Bucket, Key string
	Retry       RetryFunc // nil: each call once
	Log         *slog.Logger
}

// ParseS3 splits s3://bucket/key.
func ParseS3(src string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(src, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return "", "", fmt.Errorf("%q is not s3://BUCKET/KEY", src)
	}
	return bucket, key, nil
}

// NewStore returns the store of the object at src (s3://bucket/key).
func NewStore(api S3API, src string, r RetryFunc, log *slog.Logger) (*Store, error) {
	bucket, key, err := ParseS3(src)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("repository: %w", err))
	}
	return &Store{API: api, Bucket: bucket, Key: key, Retry: r, Log: log}, nil
}

// URL is the store's s3:// address.
func (s *Store) URL() string { return "s3://" + s.Bucket + "/" + s.Key }

func (s *Store) do(ctx context.Context, op string, fn func(context.Context) error) error {
	if s.Retry == nil {
		return fn(ctx)
	}
	return s.Retry(ctx, op, fn)
}

func (s *Store) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// ErrNotFound: the table's object does not exist yet.
var ErrNotFound = errors.New("no role table yet")

// errAccessDenied: GetObject answered 403 AccessDenied. S3 answers so both
// when reading the object is not permitted and, to a caller without
// s3:ListBucket on the bucket (the shipped policies grant none), when the
// object does not exist: Update then tries to create it (see Update).
var errAccessDenied = errors.New("S3 answered AccessDenied: reading it is not permitted, or, for a caller without s3:ListBucket on the bucket, it does not exist")

// errConflict: a conditional write lost to another writer.
var errConflict = errors.New("the table changed since it was read")

// Get reads the object: its bytes (at most MaxSize+1, for Parse to refuse)
// and its ETag; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context) (data []byte, etag string, err error) {
	err = s.do(ctx, "s3:GetObject", func(ctx context.Context) error {
		out, err := s.API.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &s.Key})
		if err != nil {
			if notFound(err) {
				return exitcode.With(exitcode.Usage, ErrNotFound) // not retried; handled below
			}
			if retry.Code(err) == "AccessDenied" {
				return exitcode.With(exitcode.Denied, fmt.Errorf("%w (s3:GetObject: %w)", errAccessDenied, err))
			}
			return err
		}
		defer out.Body.Close()
		data, err = io.ReadAll(io.LimitReader(out.Body, MaxSize+1))
		if err != nil {
			return err // a read cut short is retried, never parsed
		}
		if out.ContentLength != nil && *out.ContentLength >= 0 && int64(len(data)) < *out.ContentLength && len(data) <= MaxSize {
			return fmt.Errorf("read %d of %d bytes: %w", len(data), *out.ContentLength, io.ErrUnexpectedEOF)
		}
		etag = aws.ToString(out.ETag)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the role table %s: %w", s.URL(), err)
	}
	return data, etag, nil
}

// put writes data if the object's ETag is still etag (If-Match), or, with
// etag "", if there is no object yet (If-None-Match: *). It returns
// errConflict when another writer came first.
func (s *Store) put(ctx context.Context, data []byte, etag string) error {
	in := &s3.PutObjectInput{
		Bucket:      &s.Bucket,
		Key:         &s.Key,
		Body:        bytes.NewReader(data),
		ContentType: aws.String("application/json"),
		// Clients read the newest table: no cache in between may keep an old one.
		CacheControl: aws.String("no-cache"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	err := s.do(ctx, "s3:PutObject", func(ctx context.Context) error {
		in.Body = bytes.NewReader(data)
		_, err := s.API.PutObject(ctx, in)
		if err != nil && conflict(err) {
			return exitcode.With(exitcode.Failed, errConflict) // not retried as it is: re-read first
		}
		return err
	})
	if errors.Is(err, errConflict) {
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("write the role table %s: %w", s.URL(), err)
	}
	return nil
}

// notFound reports whether err says the object does not exist.
func notFound(err error) bool {
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return true
	}
	switch retry.Code(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// conflict reports whether a conditional PutObject lost: 412
// PreconditionFailed (the ETag moved, or the object now exists), 409
// ConditionalRequestConflict (a concurrent conditional write), or NoSuchKey
// (the object was deleted since it was read).
func conflict(err error) bool {
	switch retry.Code(err) {
	case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
		return true
	}
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode() == http.StatusPreconditionFailed || sc.HTTPStatusCode() == http.StatusConflict
	}
	return false
}

// read returns the stored document and its ETag, a new empty one and ""
// when there is none yet.
func (s *Store) read(ctx context.Context) (*Document, string, error) {
	d, etag, err := s.readForWrite(ctx)
	if err != nil {
		return nil, "", err
	}
	return d, etag, nil
}

// readForWrite is read for a writer: an entry that is not valid is kept
// as it is, with a warning naming it, so that it stops no writer of
// another role (a writer replaces its own role's entry).
func (s *Store) readForWrite(ctx context.Context) (*Document, string, error) {
	data, etag, err := s.Get(ctx)
	if errors.Is(err, ErrNotFound) {
		return New(), "", nil
	}
	if err != nil {
		return nil, "", err
	}
	d, err := decode(data, s.URL())
	if err != nil {
		// Never overwrite a table that cannot be read: the entries of
		// the other roles would be lost.
		return nil, "", fmt.Errorf("%w; nothing was written", err)
	}
	for _, p := range d.Skipped() {
		s.log().Warn("role table: an entry is not valid; kept as it is (fix it with eipclaim register, or rerun eipclaim on its holder)", "table", s.URL(), "problem", p)
	}
	return d, etag, nil
}

// Snapshot is the stored table as read, with its ETag: the first read of a
// write (UpdateFrom) when it was made ahead.
type Snapshot struct {
	Doc  *Document
	ETag string
	// denied: the read answered 403 AccessDenied, and Doc is empty (see
	// UpdateFrom): the table may be missing, or not readable.
	denied bool
}

// Clone returns a copy of the snapshot a writer may change (UpdateFrom's
// change edits the document it is given): one read shared by several
// writers, each with its own copy.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	d := *s.Doc
	d.Roles = maps.Clone(s.Doc.Roles)
	d.skipped = maps.Clone(s.Doc.skipped)
	c.Doc = &d
	return &c
}

// ReadSnapshot reads the stored table as a writer does (readForWrite), for
// UpdateFrom.
func (s *Store) ReadSnapshot(ctx context.Context) (*Snapshot, error) {
	d, etag, err := s.readForWrite(ctx)
	if errors.Is(err, errAccessDenied) {
		// Missing, for a caller without s3:ListBucket, or not readable:
		// UpdateFrom tells which by creating it.
		return &Snapshot{Doc: New(), denied: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Snapshot{Doc: d, ETag: etag}, nil
}

// Read returns the stored table (an empty one when there is none yet).
func (s *Store) Read(ctx context.Context) (*Document, error) {
	d, _, err := s.read(ctx)
	return d, err
}

// maxConflicts bounds how often Update re-reads after losing a race: each
// loss means another writer succeeded, so this many in a row is a storm.
const maxConflicts = 50

// Update applies change to the stored table and writes it back, compare-
// and-swap on the ETag: when another writer came first, it reads the new
// table and applies change again, so that no writer's entry is lost.
// change reports whether it changed the document; when it did not, nothing
// is written. After writing, Update reads the table back and applies change
// again: it must find nothing to do (else the write was lost, and it goes
// round again). Update reports whether it wrote.
//
// A read answered 403 AccessDenied is taken for a missing object (as S3
// answers a caller without s3:ListBucket): Update creates the table with
// If-None-Match: *. If that answers 412, the object exists (another
// writer may just have created it): Update reads it again, and a 403 then
// means reading it is truly not permitted: exit 3, saying so.
func (s *Store) Update(ctx context.Context, change func(*Document) (bool, error)) (wrote bool, err error) {
	return s.UpdateFrom(ctx, nil, change)
}

// UpdateFrom is Update starting from first, a read made ahead
// (ReadSnapshot), when it is not nil: if the table changed since, the
// compare-and-swap fails and the table is read again.
func (s *Store) UpdateFrom(ctx context.Context, first *Snapshot, change func(*Document) (bool, error)) (wrote bool, err error) {
	exists := false // a create answered 412 after a read answered 403
	for attempt := 0; ; attempt++ {
		var d *Document
		var etag string
		denied := false
		if attempt == 0 && first != nil {
			d, etag, denied = first.Doc, first.ETag, first.denied
		} else {
			d, etag, err = s.readForWrite(ctx)
			denied = errors.Is(err, errAccessDenied)
			if denied && exists {
				return wrote, exitcode.With(exitcode.Denied, fmt.Errorf("read the role table %s: S3 answered AccessDenied, and the object exists (a create with If-None-Match: * answered that it does): reading it is not permitted; allow s3:GetObject on arn:aws:s3:::%s/%s to this caller (docs/iam.md)", s.URL(), s.Bucket, s.Key))
			}
			if denied {
				d, etag = New(), ""
			} else if err != nil {
				return wrote, err
			}
		}
		changed, cerr := change(d)
		if denied && cerr == nil && !changed {
			// Nothing to create: whether the table exists is unknown.
			return wrote, exitcode.With(exitcode.Denied, fmt.Errorf("read the role table %s: %w", s.URL(), errAccessDenied))
		}
		if cerr != nil || !changed {
			return wrote, cerr
		}
		if attempt >= maxConflicts {
			return wrote, exitcode.With(exitcode.Failed, fmt.Errorf("write the role table %s: lost the race to other writers %d times in a row; try again", s.URL(), attempt))
		}
		data, err := d.Marshal()
		if err != nil {
			return wrote, err
		}
		err = s.put(ctx, data, etag)
		if errors.Is(err, errConflict) {
			exists = exists || denied
			delay := time.Duration(rand.Int64N(int64(min(20*time.Millisecond<<min(attempt, 6), time.Second)) + 1))
			s.log().Debug("role table: another writer came first; reading it again", "table", s.URL(), "attempt", attempt+1, "delay", delay)
			select {
			case <-ctx.Done():
				return wrote, exitcode.With(exitcode.Failed, fmt.Errorf("write the role table %s: %w (after %d lost races)", s.URL(), ctx.Err(), attempt+1))
			case <-time.After(delay):
			}
			continue
		}
		if err != nil {
			return wrote, err
		}
		wrote = true
	}
}

// notModified reports whether a conditional GetObject answered 304 Not
// Modified: the object's ETag is still the one given (If-None-Match).
func notModified(err error) bool {
	if retry.Code(err) == "NotModified" {
		return true
	}
	var sc interface{ HTTPStatusCode() int }
	return errors.As(err, &sc) && sc.HTTPStatusCode() == http.StatusNotModified
}

// ReadIfChanged reads the stored table unless its ETag is still etag: a
// conditional GetObject (If-None-Match), which S3 answers 304 Not
// Modified without a body when the object did not change. It returns the
// new snapshot and true when the table changed (or etag is ""), nil and
// false when it did not. A missing table reads as an empty one with ETag
// "". It is one GetObject, never retried (the caller looks again later):
// a watcher's look at the overlay's arbiter. Entries that are not valid
// are left out, without a warning (a writer warns).
func (s *Store) ReadIfChanged(ctx context.Context, etag string) (*Snapshot, bool, error) {
	in := &s3.GetObjectInput{Bucket: &s.Bucket, Key: &s.Key}
	if etag != "" {
		in.IfNoneMatch = aws.String(etag)
	}
	out, err := s.API.GetObject(ctx, in)
	switch {
	case err != nil && etag != "" && notModified(err):
		return nil, false, nil
	case err != nil && notFound(err):
		return &Snapshot{Doc: New()}, etag != "", nil
	case err != nil:
		return nil, false, fmt.Errorf("read the role table %s: %w", s.URL(), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxSize+1))
	if err == nil && out.ContentLength != nil && *out.ContentLength >= 0 && int64(len(data)) < *out.ContentLength && len(data) <= MaxSize {
		err = fmt.Errorf("read %d of %d bytes: %w", len(data), *out.ContentLength, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the role table %s: %w", s.URL(), err)
	}
	d, err := decode(data, s.URL())
	if err != nil {
		return nil, false, err
	}
	return &Snapshot{Doc: d, ETag: aws.ToString(out.ETag)}, true, nil
}
