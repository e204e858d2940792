package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

const usage = `usage: eipclaim [command] [flags]

Commands (claim is the default):
  claim     claim the role's Elastic IP for this instance, then publish DNS
  status    show each role's EIP, holder, interface, health and DNS
  release   disassociate the role's EIP if this instance holds it
  watch     stay running: hold the role's EIP, or stand by and take it over
            when its holder fails (hooks, epochs, metrics)
  check     preflight: configuration, permissions (EC2 DryRun), DNS zones
  hosts     regenerate the managed block of the hosts file (from EC2, or
            from the role table with --from)
  register  record a service outside the cloud in the role table
  lambda    the off-box controller, as an AWS Lambda function (also as bootstrap)
  version   print the version

Run "eipclaim COMMAND -h" (or "eipclaim help COMMAND") for a command's flags.

Exit codes: 0 done, 1 failed after retries, 2 bad configuration or usage,
3 not permitted, 4 refused (held by a healthy instance), 5 claimed but DNS
publication failed.
`

// common are the flags every command accepts.
type common struct {
	config    string
	role      string
	timeout   time.Duration
	logFormat string
	logLevel  string
	logFile   string
	imdsV1    bool
}

func (c *common) register(fs *flag.FlagSet, defaultTimeout time.Duration) {
	fs.StringVar(&c.config, "config", "", "where the configuration is: s3://bucket/key, https://..., or a file (default: the instance user-data)")
	fs.StringVar(&c.role, "role", "", "the role (default: EIPCLAIM_ROLE, then role: of the configuration)")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "the whole command's deadline, retries included")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFile, "log-file", "", "append the logs to this file instead of stderr (for the Windows task)")
	fs.BoolVar(&c.imdsV1, "imdsv1", false, "allow falling back to IMDSv1 when no IMDSv2 token can be had")
}

// logger builds the logger the flags ask for, and the function that
// closes its file, if any.
func (c *common) logger(stderr io.Writer, getenv env) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, nil, usageError("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, nil, usageError("--log-format %q: want text or json", c.logFormat)
	}
	w, closeFn := stderr, func() {}
	if c.logFile != "" {
		f, err := openLogFile(c.logFile)
		if err != nil {
			return nil, nil, err
		}
		fw := &fallbackWriter{w: f, path: c.logFile, stderr: stderr}
		w, closeFn = fw, func() { fw.closed(f.Close()) }
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.logFile == "" && getenv("JOURNAL_STREAM") != "" {
		// Under systemd, journald stamps every line: no second time.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closeFn, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closeFn, nil
}

func usageError(format string, args ...any) error {
	return exitcode.With(exitcode.Usage, fmt.Errorf(format, args...))
}

// env is the process environment, as a function so that tests can set it.
type env func(string) string

// run is the whole program: args without the program name.
func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	name := "claim"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	switch name {
	case "claim":
		return runClaim(ctx, args, getenv, stdout, stderr)
	case "status":
		return runStatus(ctx, args, getenv, stdout, stderr)
	case "check":
		return runCheck(ctx, args, getenv, stdout, stderr)
	case "hosts":
		return runHosts(ctx, args, getenv, stdout, stderr)
	case "release":
		return runRelease(ctx, args, getenv, stdout, stderr)
	case "register":
		return runRegister(ctx, args, getenv, stdout, stderr)
	case "watch":
		return runWatch(ctx, args, getenv, stdout, stderr)
	case "lambda":
		return runLambda(ctx, args, getenv, stderr)
	case "version":
		if help, err := parseNoArgs("version", args, stderr); help || err != nil {
			return err
		}
		fmt.Fprintf(stdout, "eipclaim %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help":
		switch {
		case len(args) > 1:
			return usageError("unexpected argument %q: eipclaim help takes one command at most", args[1])
		case len(args) == 1 && args[0] != "help" && !strings.HasPrefix(args[0], "-"):
			// "help COMMAND" is "COMMAND -h".
			if !slices.Contains(commands, args[0]) {
				fmt.Fprint(stderr, usage)
				return usageError("unknown command %q", args[0])
			}
			return run(ctx, []string{args[0], "-h"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", name)
}

// commands are the commands run knows.
var commands = []string{"claim", "status", "check", "hosts", "release", "register", "watch", "lambda", "version", "help"}

// parseNoArgs parses the arguments of a command that takes none: only -h.
func parseNoArgs(name string, args []string, stderr io.Writer) (help bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return true, nil
	} else if err != nil {
		return false, exitcode.With(exitcode.Usage, err)
	}
	if fs.NArg() > 0 {
		return false, usageError("unexpected argument %q: eipclaim %s takes no arguments", fs.Arg(0), name)
	}
	return false, nil
}

// parse parses a command's flags; -h prints the usage and is not an error.
func parse(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return false, exitcode.With(exitcode.Usage, err)
	}
	if fs.NArg() > 0 {
		return false, usageError("unexpected argument %q: flags only (see eipclaim %s -h)", fs.Arg(0), fs.Name())
	}
	return false, nil
}

// command is what every subcommand starts from: its flags, the common
// ones registered.
type command struct {
	common
	flags *flag.FlagSet
	// checks validate the command's own flags once parsed; each returns
	// a usage error (exit 2) before anything is read or changed.
	checks []func() error
	// options, when set, adjusts what the command needs once its flags
	// are parsed (hosts --from needs no configuration).
	options func(*openOptions)
}

func newCommand(name string, stderr io.Writer, defaultTimeout time.Duration) *command {
	c := &command{flags: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.flags.SetOutput(stderr)
	c.register(c.flags, defaultTimeout)
	return c
}

// start parses args and opens the session, under the --timeout deadline.
// It returns a nil session when there is nothing more to do: -h, or an
// error. The caller defers s.finish.
func (c *command) start(ctx context.Context, args []string, getenv env, stderr io.Writer, o openOptions) (context.Context, *session, error) {
	if help, err := parse(c.flags, args); help || err != nil {
		return ctx, nil, err
	}
	if c.timeout <= 0 {
		return ctx, nil, usageError("--timeout must be positive, got %s: it is the whole command's deadline, retries included, such as 90s or 5m", c.timeout)
	}
	for _, check := range c.checks {
		if err := check(); err != nil {
			return ctx, nil, err
		}
	}
	if c.options != nil {
		c.options(&o)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	s, err := open(ctx, &c.common, getenv, stderr, o)
	if err != nil {
		cancel()
		return ctx, nil, err
	}
	s.cancel = cancel
	return ctx, s, nil
}

// explicitRole reports whether the role was named by flag or environment,
// not only by the configuration.
func (c *command) explicitRole(getenv env) bool {
	return c.role != "" || getenv("EIPCLAIM_ROLE") != ""
}

// The default deadlines: a claim at boot waits for the network and for
// eventual consistency; status is for people and scripts.
const (
	defaultTimeout       = 5 * time.Minute
	defaultStatusTimeout = time.Minute
)
