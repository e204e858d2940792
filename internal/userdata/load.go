package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// MaxDocument caps the size of a document read from IMDS, S3, https or a
// file.
const MaxDocument = 1 << 20

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
	// HTTP fetches https:// sources; nil means NewHTTPClient(Log). Give it
	// the settings NewHTTPClient gives (its Logger above all: the default
	// one prints URLs with their query strings, a presigned URL's
	// credentials).
	HTTP *retryablehttp.Client
	Log  *slog.Logger // nil: no logs
	// Retry runs an IMDS call until it succeeds, fails for good or the
	// deadline comes (claim.Retrier.Do); nil calls it once. The SDK's own
	// three attempts span two seconds, less than IMDS may take at boot.
	Retry func(ctx context.Context, op string, fn func(context.Context) error) error
}

// Request says where the configuration may come from.
type Request struct {
	Role, Config       string // from flags (--role, --config); win over everything
	EnvRole, EnvConfig string // EIPCLAIM_ROLE, EIPCLAIM_CONFIG
	UserData           bool   // read the instance user-data
}

// Loaded is the effective configuration.
type Loaded struct {
	Config *config.Config // merged; Role is the effective role, Source the document read
	// Sources are where it came from, highest precedence first, such as
	// "user-data part 1 (text/cloud-config)" and "s3://bucket/key"; never
	// content, never a URL's query string.
	Sources []string
}

// Load returns the effective configuration. Precedence: flags > environment
// > user-data > the document that user-data's source: (or --config, or
// EIPCLAIM_CONFIG, which replace it) points at. The pointed document gives
// the roles table; user-data's own roles replace its roles of the same name.
// Every error carries an exit code (internal/exitcode).
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
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%s %q: %w", explicitName, redactURL(explicit), err))
		}
	}

	var (
		ud      *config.Config
		sources []string
	)
	if req.UserData && l.IMDS != nil {
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
				ud = c
				sources = append(sources, origin)
			}
		}
	}

	source := explicit
	if source == "" && ud != nil {
		source = ud.Source
	}
	merged := ud
	if source != "" {
		pointed, name, err := l.fetchConfig(ctx, source)
		if err != nil {
			return nil, err
		}
		if pointed.Source != "" {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf(
				"%s (line %d): source: is not allowed in the document that user-data or --config points at (one level only): "+
					"move the roles table into it, or point --config at %s", name, pointed.Line("source"), redactURL(pointed.Source)))
		}
		sources = append(sources, name)
		if ud != nil {
			merged = config.Merge(pointed, ud)
		} else {
			merged = pointed
		}
		merged.Source = source
	}
	if merged == nil {
		return nil, exitcode.With(exitcode.Usage, errors.New("no configuration: pass --config SRC (s3://bucket/key, https://… or a file) or set EIPCLAIM_CONFIG"))
	}
	for _, r := range []string{req.Role, req.EnvRole} {
		if r != "" {
			merged.Role = r
			break
		}
	}
	log.Info("configuration loaded", "role", merged.Role, "sources", sources)
	return &Loaded{Config: merged, Sources: sources}, nil
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
		err = l.Retry(ctx, "IMDS user-data", call)
	} else {
		err = call(ctx)
	}
	if notFound {
		return nil, errNoUserData
	}
	if err != nil {
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
