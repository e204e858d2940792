package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/fetch"
)

// MaxDocument caps the size of a document read from IMDS, S3, https or a
// file: internal/fetch's cap, the one for every document.
const MaxDocument = fetch.MaxSize

// IMDSAPI is the part of the instance metadata client that Load uses;
// *imds.Client satisfies it.
type IMDSAPI interface {
	GetUserData(ctx context.Context, in *imds.GetUserDataInput, optFns ...func(*imds.Options)) (*imds.GetUserDataOutput, error)
}

// S3API is the part of the S3 client that Load uses; *s3.Client satisfies
// it.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Loader loads the configuration from user-data and the document it points
// at.
type Loader struct {
	IMDS IMDSAPI // nil: user-data is not read
	S3   S3API   // nil: an s3:// source is an error
	// HTTP fetches https:// sources; nil means fetch.NewHTTPClient(Log). Give it
	// the settings fetch.NewHTTPClient gives (its Logger above all: the default
	// one prints URLs with their query strings, a presigned URL's
	// credentials).
	HTTP *retryablehttp.Client
	Log  *slog.Logger // nil: no logs
	// Retry runs an IMDS call until it succeeds, fails for good or the
	// deadline comes (retry.Retrier.Do); nil calls it once. The SDK's own
	// three attempts span two seconds, less than IMDS may take at boot.
	Retry func(ctx context.Context, op string, fn func(context.Context) error) error
}

// Request says where the configuration may come from: what the flags and
// the environment say, and what the command can use. Load alone decides
// what to read and what wins.
type Request struct {
	Role, Config       string // from flags (--role, --config); win over everything
	EnvRole, EnvConfig string // EIPCLAIM_ROLE, EIPCLAIM_CONFIG
	UserData           bool   // the instance user-data may be read
	// TableOnly: the command uses the whole roles table, never this
	// instance's role (hosts, on clients that need not be EC2 instances).
	TableOnly bool
}

// ReadsUserData reports whether Load reads the instance user-data for
// req: not when it could add nothing the command uses (an explicit
// document with the role named by flag or environment, or an explicit
// document for a command that uses only the table). A caller may read it
// ahead (Prefetch), alongside its other IMDS reads.
func (req Request) ReadsUserData() bool {
	if !req.UserData {
		return false
	}
	explicit := req.Config != "" || req.EnvConfig != ""
	role := req.Role != "" || req.EnvRole != ""
	return !(explicit && (role || req.TableOnly))
}

// Prefetch starts reading the user-data from md at once, and returns an
// IMDSAPI whose first GetUserData answers with that read (a retry asks md
// again): the read overlaps whatever the caller does until Load.
func Prefetch(ctx context.Context, md IMDSAPI) IMDSAPI {
	p := &prefetched{md: md, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.out, p.err = md.GetUserData(ctx, &imds.GetUserDataInput{})
	}()
	return p
}

type prefetched struct {
	md   IMDSAPI
	done chan struct{}
	used atomic.Bool
	out  *imds.GetUserDataOutput
	err  error
}

func (p *prefetched) GetUserData(ctx context.Context, in *imds.GetUserDataInput, optFns ...func(*imds.Options)) (*imds.GetUserDataOutput, error) {
	if p.used.Swap(true) {
		return p.md.GetUserData(ctx, in, optFns...)
	}
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Loaded is the effective configuration.
type Loaded struct {
	Config *config.Config // merged; Role is the effective role, Source the document read
	// Sources are where it came from, highest precedence first, such as
	// "user-data part 1 (text/cloud-config)" and "s3://bucket/key"; never
	// content, never a URL's query string.
	Sources []string
}

// Load returns the effective configuration.
//
// Precedence, highest first: flags (--role, --config), the environment
// (EIPCLAIM_ROLE, EIPCLAIM_CONFIG), user-data, the document that
// user-data's source: points at. A document named by --config or
// EIPCLAIM_CONFIG (explicit) stands where the flag or variable stands: it
// replaces user-data's source:, and where it and user-data both say
// something (role:, a role of the same name) it wins; user-data only fills
// in what it alone says (role: when neither the flags, the environment nor
// the document give one; roles the document does not define). User-data is
// not read at all when it could add nothing the command uses: an explicit
// document with the role named by flag or environment, or an explicit
// document for a command that uses only the table (Request.TableOnly).
// Without an explicit document, user-data wins over the document its
// source: points at (its roles replace that document's roles of the same
// name). Every error carries an exit code (internal/exitcode).
func (l *Loader) Load(ctx context.Context, req Request) (*Loaded, error) {
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	explicit, explicitName := req.Config, "--config"
	if explicit == "" {
		explicit, explicitName = req.EnvConfig, "EIPCLAIM_CONFIG"
	}
	if explicit != "" {
		if err := config.CheckSource(explicit); err != nil {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s %q: %w", explicitName, fetch.Redact(explicit), err))
		}
	}
	role := req.Role
	if role == "" {
		role = req.EnvRole
	}
	readUserData := req.ReadsUserData() && l.IMDS != nil

	var (
		ud      *config.Config
		udName  string
		sources []string
	)
	if readUserData {
		raw, err := l.userData(ctx)
		switch {
		case errors.Is(err, errNoUserData):
			if explicit == "" {
				return nil, exitcode.With(exitcode.Usage, errors.New("no user-data and no --config: this instance was started without user-data; "+
					"put eipclaim's configuration in its user-data, or pass --config SRC (or set EIPCLAIM_CONFIG)"))
			}
			log.Debug("the instance has no user-data")
		case err != nil:
			return nil, err
		default:
			c, origin, err := decode(raw)
			switch {
			case errors.Is(err, ErrNoConfig) && explicit != "":
				log.Debug("user-data holds no eipclaim configuration", "error", err)
			case err != nil:
				return nil, err
			default:
				ud, udName = c, origin
			}
		}
	}

	var merged *config.Config
	switch {
	case explicit != "":
		doc, name, err := l.fetchPointed(ctx, explicitName, explicit)
		if err != nil {
			return nil, err
		}
		sources = append(sources, name)
		merged = doc
		if ud != nil {
			if ud.Source != "" && ud.Source != explicit {
				log.Debug("user-data's source: is replaced by "+explicitName, "user_data_source", fetch.Redact(ud.Source))
			}
			merged = config.Merge(ud, doc)
			sources = append(sources, udName)
		}
		merged.Source = explicit
	case ud != nil && ud.Source != "":
		doc, name, err := l.fetchPointed(ctx, "user-data's source:", ud.Source)
		if err != nil {
			return nil, err
		}
		merged = config.Merge(doc, ud)
		merged.Source = ud.Source
		sources = append(sources, udName, name)
	case ud != nil:
		merged = ud
		sources = append(sources, udName)
	default:
		return nil, exitcode.With(exitcode.Usage, errors.New("no configuration: pass --config SRC (s3://bucket/key, https://… or a file) or set EIPCLAIM_CONFIG"))
	}
	if role != "" {
		merged.Role = role
	}
	// Each document was validated alone; their roles together must not
	// share a name or an EIP either, and an overlay role needs
	// repository:, which another document may give.
	if err := merged.CheckMerged(strings.Join(sources, " merged with ")); err != nil {
		return nil, exitcode.With(exitcode.Usage, err)
	}
	log.Info("configuration loaded", "role", merged.Role, "sources", sources)
	return &Loaded{Config: merged, Sources: sources}, nil
}

// fetchPointed reads the document that --config, EIPCLAIM_CONFIG or
// user-data's source: (key) names, which must not point further.
func (l *Loader) fetchPointed(ctx context.Context, key, source string) (*config.Config, string, error) {
	doc, name, err := l.fetchRetried(ctx, key, source)
	if err != nil {
		return nil, "", err
	}
	if doc.Source != "" {
		return nil, "", exitcode.With(exitcode.Usage, fmt.Errorf(
			"%s (line %d): source: is not allowed in the document that user-data or --config points at (one level only): "+
				"move the roles table into it, or point --config at %s", name, doc.Line("source"), fetch.Redact(doc.Source)))
	}
	return doc, name, nil
}

// fetchRetried is fetchConfig, with an S3 or https:// read that failed for
// a reason other than the configuration's (exit code 1: a timeout, a
// network error, a 5xx after the client's own retries, no credentials)
// given to l.Retry, which retries what is transient within the deadline.
func (l *Loader) fetchRetried(ctx context.Context, key, source string) (*config.Config, string, error) {
	if l.Retry == nil || !(strings.HasPrefix(source, "s3://") || strings.HasPrefix(source, "https://")) {
		return l.fetchConfig(ctx, key, source)
	}
	var (
		doc   *config.Config
		name  string
		final error
	)
	op := "s3:GetObject"
	if strings.HasPrefix(source, "https://") {
		op = "http:GET"
	}
	err := l.Retry(ctx, op, func(ctx context.Context) error {
		var err error
		doc, name, err = l.fetchConfig(ctx, key, source)
		if err != nil && exitcode.Of(err) != exitcode.Failed {
			final = err // the configuration's fault, or not permitted: as it is
			return nil
		}
		return err
	})
	switch {
	case final != nil:
		return nil, "", final
	case err != nil:
		return nil, "", err
	}
	return doc, name, nil
}

var errNoUserData = errors.New("no user-data")

// userData reads the instance user-data; errNoUserData when there is none.
func (l *Loader) userData(ctx context.Context) ([]byte, error) {
	var (
		out      *imds.GetUserDataOutput
		notFound bool
	)
	call := func(ctx context.Context) error {
		var err error
		out, err = l.IMDS.GetUserData(ctx, &imds.GetUserDataInput{})
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotFound {
			notFound = true
			return nil
		}
		return err
	}
	var err error
	if l.Retry != nil {
		err = l.Retry(ctx, "imds:user-data", call)
	} else {
		err = call(ctx)
	}
	if notFound {
		return nil, errNoUserData
	}
	if err != nil {
		if c := exitcode.Of(err); c == exitcode.Usage || c == exitcode.Denied {
			// It says what to do (IMDS disabled, or refusing tokens).
			return nil, exitcode.With(c, fmt.Errorf("read user-data: %w", err))
		}
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) {
			code := status.HTTPStatusCode()
			if code == http.StatusNotFound {
				return nil, errNoUserData
			}
			return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read user-data: the instance metadata service answered %d %s: %w",
				code, http.StatusText(code), err))
		}
		if ctx.Err() != nil {
			return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read user-data: %w", err))
		}
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("instance metadata service unreachable at %s: %w; "+
			"run on EC2 with the metadata service enabled (aws ec2 modify-instance-metadata-options --http-endpoint enabled), "+
			"or pass --config SRC and --role R", imdsEndpoint(err), err))
	}
	defer out.Content.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Content, MaxDocument+1))
	if err != nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read user-data: %w", err))
	}
	if len(raw) > MaxDocument {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("user-data is larger than %d bytes: that is not EC2 user-data (16 KiB at most)", MaxDocument))
	}
	return raw, nil
}

// imdsEndpoint names the endpoint a failed IMDS request went to.
func imdsEndpoint(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return "169.254.169.254 (or AWS_EC2_METADATA_SERVICE_ENDPOINT)"
}
