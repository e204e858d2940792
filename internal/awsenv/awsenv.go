// Package awsenv is the AWS environment every entry point starts from (the
// CLI's commands and the Lambda controller): the SDK's configuration,
// loaded in one place, and this instance's identity read from the instance
// metadata service.
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	awsimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/imds"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Env is the AWS configuration and the instance metadata client that goes
// with it (the instance profile's credentials are read through it).
type Env struct {
	Config aws.Config
	IMDS   *imds.Client
}

// Options say how to load the environment.
type Options struct {
	// IMDSv1 allows falling back to IMDSv1 when IMDS gives no token.
	IMDSv1 bool
}

// Load loads the AWS configuration from the environment (variables,
// profiles, the instance profile): the SDK's standard retryer for
// throttling and 5xx, HTTP timeouts that give up on an answer that does not
// come, and a credential chain whose "no credentials at all" is an error
// that says what to do (exit 3). An error loading it is exit 2.
func Load(ctx context.Context, o Options) (*Env, error) {
	e := &Env{}
	// The instance profile's credentials come from IMDS through the same
	// client as everything else read there; it exists once the
	// configuration is loaded, before any credential is asked for.
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRetryer(func() aws.Retryer {
			// The SDK's standard retryer handles throttling and 5xx first; its
			// client-side retry quota is off, since one run's own retries
			// cannot overload anything and the claim loop owns the deadline.
			return awsretry.NewStandard(func(o *awsretry.StandardOptions) { o.RateLimiter = ratelimit.None })
		}),
		awsconfig.WithHTTPClient(httpClient()),
		awsconfig.WithEC2RoleCredentialOptions(func(o *ec2rolecreds.Options) {
			o.Client = metadataFunc(func(ctx context.Context, in *awsimds.GetMetadataInput, optFns ...func(*awsimds.Options)) (*awsimds.GetMetadataOutput, error) {
				return e.IMDS.GetMetadata(ctx, in, optFns...)
			})
		}),
	)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("load the AWS configuration: %w", err))
	}
	e.Config = cfg
	e.IMDS = imds.New(cfg, o.IMDSv1)
	if e.Config.Credentials != nil {
		e.Config.Credentials = &credentialsProvider{inner: e.Config.Credentials, imds: e.IMDS}
	}
	return e, nil
}

// metadataFunc is a function as ec2rolecreds' IMDS client.
type metadataFunc func(ctx context.Context, in *awsimds.GetMetadataInput, optFns ...func(*awsimds.Options)) (*awsimds.GetMetadataOutput, error)

func (f metadataFunc) GetMetadata(ctx context.Context, in *awsimds.GetMetadataInput, optFns ...func(*awsimds.Options)) (*awsimds.GetMetadataOutput, error) {
	return f(ctx, in, optFns...)
}

// The AWS services' (EC2, S3, Route 53) HTTP timeouts: a connection or an
// answer that does not come is given up on, and the attempt retried within
// the command's deadline, rather than waited for until the deadline.
const (
	dialTimeout   = 10 * time.Second
	headerTimeout = 30 * time.Second
)

func httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(tr *http.Transport) { tr.ResponseHeaderTimeout = headerTimeout })
}

// Identity is this instance's, as IMDS says.
type Identity struct {
	InstanceID string
	Region     string
}

// Identify reads this instance's id and region from IMDS, the two at once,
// each retried by r, and makes the instance's region the configuration's
// (warning on log when the environment names another). A failed read is an
// error naming it; when ctx's deadline expired first, a *DeadlineError.
func (e *Env) Identify(ctx context.Context, r *retry.Retrier, log *slog.Logger) (Identity, error) {
	var id Identity
	var regionErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		regionErr = r.Do(ctx, "imds:region", func(ctx context.Context) error {
			out, err := e.IMDS.GetRegion(ctx, &awsimds.GetRegionInput{})
			if err == nil {
				id.Region = out.Region
			}
			return err
		})
	})
	err := r.Do(ctx, "imds:instance-id", func(ctx context.Context) error {
		var err error
		id.InstanceID, err = e.IMDS.Metadata(ctx, "instance-id")
		return err
	})
	wg.Wait()
	if err != nil {
		return Identity{}, identityError(ctx, "read this instance's id from the instance metadata service", err)
	}
	if regionErr != nil {
		return Identity{}, identityError(ctx, "read the region from the instance metadata service", regionErr)
	}
	if e.Config.Region != "" && e.Config.Region != id.Region {
		log.Warn("AWS_REGION differs from this instance's region; using the instance's", "aws_region", e.Config.Region, "region", id.Region)
	}
	e.Config.Region = id.Region
	return id, nil
}

// DeadlineError is an identity read cut short by the caller's deadline:
// the deadline, not IMDS, is what to change (exit code 1).
type DeadlineError struct {
	What string // what was being read, such as "read this instance's id from the instance metadata service"
	Err  error
}

func (e *DeadlineError) Error() string {
	return "the deadline expired while trying to " + e.What + ": " + e.Err.Error()
}
func (e *DeadlineError) Unwrap() error { return e.Err }

// identityError says which IMDS read failed. An error that says what to
// do itself (IMDS disabled, or refusing tokens) is not given the generic
// advice.
func identityError(ctx context.Context, what string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return exitcode.With(exitcode.Failed, &DeadlineError{What: what, Err: err})
	}
	var classed retry.Classed
	if errors.As(err, &classed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s (run on EC2 with IMDS enabled; if in a container, raise the IMDSv2 hop limit to 2): %w", what, err)
}
