package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/awsenv"
	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/imds"
	"github.com/eipclaim/eipclaim/internal/localaddr"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/source"
	"github.com/eipclaim/eipclaim/internal/table"
)

// session is what every command starts from: the logger, the AWS
// configuration, this instance's identity and the configuration.
type session struct {
	log        *slog.Logger
	aws        aws.Config
	instanceID string
	region     string
	cfg        *config.Config
	role       string       // the effective role, "" if none was given
	ec2API     claim.EC2API // set when the command prefetched this instance (claim)
	imds       *imds.Client // this instance's metadata (watch's looks)
	// closeLog closes the log file, if any.
	closeLog func()
	logFile  bool
	cancel   func() // ends the command's deadline context
	// reload reads the configuration again from where it came from,
	// quietly (watch compares it with cfg).
	reload func(context.Context) (*config.Config, error)
}

// finish ends the session: with --log-file, the command's error goes to
// the log too (main prints it to stderr, which a scheduled task loses),
// then the log file is closed.
func (s *session) finish(err *error) {
	if *err != nil && s.logFile {
		s.log.Error("failed", "error", (*err).Error(), "exit_code", exitcode.Of(*err))
	}
	s.closeLog()
	if s.cancel != nil {
		s.cancel()
	}
}

// openOptions say what a command needs.
type openOptions struct {
	instance bool // the instance id and region from IMDS
	userData bool // the configuration may come from user-data
	// tableOnly: the command uses the whole roles table, never a role of
	// this instance (hosts, on clients that need not be on EC2).
	tableOnly bool
	// noConfig: the command reads no configuration (hosts --from); it
	// needs the AWS configuration only when aws is set.
	noConfig bool
	aws      bool
	// prefetchSelf: the command claims, so this instance's
	// DescribeInstances is sent while the configuration loads.
	prefetchSelf bool
}

// open builds the session: logger, AWS configuration, identity from IMDS,
// and the configuration from its sources.
func open(ctx context.Context, c *common, getenv env, stderr io.Writer, o openOptions) (_ *session, err error) {
	log, closeLog, err := c.logger(stderr, getenv)
	if err != nil {
		return nil, err
	}
	s := &session{log: log, closeLog: closeLog, logFile: c.logFile != ""}
	defer func() {
		if err != nil {
			s.finish(&err)
		}
	}()
	if o.noConfig && !o.aws {
		return s, nil
	}
	env, err := awsenv.Load(ctx, awsenv.Options{IMDSv1: c.imdsV1})
	if err != nil {
		return nil, err
	}
	s.aws = env.Config
	md := env.IMDS
	s.imds = md
	retrier := &retry.Retrier{Log: log}
	req := source.Request{
		Role:      c.role,
		Config:    c.config,
		EnvRole:   getenv("EIPCLAIM_ROLE"),
		EnvConfig: getenv("EIPCLAIM_CONFIG"),
		UserData:  o.userData,
		TableOnly: o.tableOnly,
	}
	loader := &source.Loader{Log: log, Retry: retrier.Do}
	if req.ReadsUserData() {
		// The IMDS reads do not depend on each other: the user-data is
		// read while the identity is.
		loader.IMDS = source.Prefetch(ctx, md)
	}
	if o.instance {
		id, err := env.Identify(ctx, retrier, log)
		var late *awsenv.DeadlineError
		if errors.As(err, &late) {
			return nil, exitcode.With(exitcode.Failed, fmt.Errorf("--timeout %s expired while trying to %s: give the command more time: %w", c.timeout, late.What, late.Err))
		}
		if err != nil {
			return nil, err
		}
		s.instanceID, s.region, s.aws = id.InstanceID, id.Region, env.Config
	}
	if s.aws.Region == "" {
		return nil, usageError("no AWS region: set AWS_REGION (off EC2), or run on an instance")
	}
	if o.noConfig {
		return s, nil
	}
	if o.instance && o.prefetchSelf {
		s.ec2API = prefetchSelf(ctx, ec2.NewFromConfig(s.aws), s.instanceID)
	}
	loader.S3 = s3.NewFromConfig(s.aws)
	loaded, err := loader.Load(ctx, req)
	if err != nil {
		return nil, err
	}
	s.cfg = loaded.Config
	s.role = loaded.Config.Role
	s.reload = func(ctx context.Context) (*config.Config, error) {
		quiet := slog.New(slog.DiscardHandler)
		l := &source.Loader{Log: quiet, Retry: (&retry.Retrier{Log: quiet}).Do, S3: loader.S3}
		if req.ReadsUserData() {
			l.IMDS = md
		}
		loaded, err := l.Load(ctx, req)
		if err != nil {
			return nil, err
		}
		return loaded.Config, nil
	}
	return s, nil
}

// retrier is the claim loop's retry policy, for the calls made outside
// the engine (IMDS, DNS).
func (s *session) retrier() *retry.Retrier { return &retry.Retrier{Log: s.log} }

// ec2 returns the EC2 client: the one with this instance's description
// already asked for, when the command prefetched it.
func (s *session) ec2() claim.EC2API {
	if s.ec2API != nil {
		return s.ec2API
	}
	return ec2.NewFromConfig(s.aws)
}

// engine returns the claim engine for this instance.
func (s *session) engine() *claim.Engine {
	return &claim.Engine{EC2: s.ec2(), InstanceID: s.instanceID, Log: s.log, Region: s.aws.Region, Dial: testDial}
}

// step returns the failover step for this instance.
func (s *session) step() *failover.Step {
	return &failover.Step{Engine: s.engine(), Region: s.aws.Region, Log: s.log, Local: s.local()}
}

// local is the wiring of local_interface: the host's interfaces, found
// by MAC through this instance's IMDS.
func (s *session) local() *failover.Local {
	l := &failover.Local{Addr: localaddr.Host(), Log: s.log}
	if s.imds != nil {
		l.IMDS = s.imds
	}
	return l
}

// publishers returns the publishers of a role's dns: block, and the role
// table's when repository: is set.
func (s *session) publishers(spec *config.Role, waitDNS bool) []publish.Publisher {
	return s.publishersFor(s.role, spec, waitDNS)
}

func (s *session) publishersFor(role string, spec *config.Role, waitDNS bool) []publish.Publisher {
	return publish.For(role, spec, publish.Deps{
		Route53: route53.NewFromConfig(s.aws), Log: s.log, Retry: s.retrier().Do, WaitDNS: waitDNS,
		Table: s.tableStore(),
	})
}

// tableStore returns the role table of repository:, nil when none is set
// (or it is not an s3:// address, which validation has refused).
func (s *session) tableStore() *table.Store {
	if s.cfg == nil || s.cfg.Repository == "" {
		return nil
	}
	st, err := table.NewStore(s.s3(), s.cfg.Repository, s.retrier().Do, s.log)
	if err != nil {
		return nil
	}
	return st
}

// roleTable is tableStore as the overlay's arbiter (claim.RoleTable),
// nil when there is none.
func (s *session) roleTable() claim.RoleTable {
	if st := s.tableStore(); st != nil {
		return st
	}
	return nil
}

// spec returns the effective role and its entry of the table.
func (s *session) spec() (*config.Role, error) {
	r, err := s.cfg.Lookup(s.role)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, err)
	}
	if r.LocalInterface != "" {
		if err := localaddr.Supported(); err != nil {
			return nil, fmt.Errorf("role %s: local_interface %s: %w", s.role, r.LocalInterface, err)
		}
	}
	return r, nil
}

// s3 returns an S3 client that does not log, at every read, that S3's
// answer carried no checksum to validate.
func (s *session) s3() *s3.Client {
	return s3.NewFromConfig(s.aws, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
}
