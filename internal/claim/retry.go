package claim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Class is what to do with an error.
type Class int

// The classes of errors.
const (
	Fatal   Class = iota // fail now: the error will not go away by itself
	Retry                // transient: try again after a delay
	Denied               // not permitted: fail now, exit 3
	Invalid              // a request the configuration made wrong: fail now, exit 2
)

func (c Class) String() string {
	return [...]string{"fatal", "retry", "denied", "invalid"}[c]
}

// codes classifies EC2 error codes. Codes not listed are Fatal, unless the
// HTTP status says the service failed (5xx), which is Retry.
var codes = map[string]Class{
	// Throttling and service trouble (the SDK's retryer handles these first).
	"RequestLimitExceeded": Retry,
	"Throttling":           Retry,
	"ThrottlingException":  Retry,
	"InternalError":        Retry,
	"InternalFailure":      Retry,
	"ServiceUnavailable":   Retry,
	"Unavailable":          Retry,
	"RequestTimeout":       Retry,
	// Eventual consistency: a resource just created is not visible yet.
	"InvalidInstanceID.NotFound":         Retry,
	"InvalidNetworkInterfaceID.NotFound": Retry,
	"InvalidAllocationID.NotFound":       Retry,
	"IncorrectInstanceState":             Retry,
	// Permissions.
	"UnauthorizedOperation": Denied,
	"AuthFailure":           Denied,
	"AccessDenied":          Denied,
	"OptInRequired":         Denied,
	"Blocked":               Denied,
	"SignatureDoesNotMatch": Denied,
	"InvalidClientTokenId":  Denied,
	"ExpiredToken":          Denied,
	// Requests that are wrong and will stay wrong.
	"Gateway.NotAttached":                 Fatal,
	"InvalidParameterValue":               Invalid,
	"InvalidParameterCombination":         Invalid,
	"InvalidParameter":                    Invalid,
	"MissingParameter":                    Invalid,
	"InvalidAllocationID.Malformed":       Invalid,
	"InvalidAddress.NotFound":             Invalid,
	"InvalidAddress.Malformed":            Invalid,
	"InvalidNetworkInterfaceID.Malformed": Invalid,
	"InvalidInstanceID.Malformed":         Invalid,
	"InvalidIPAddress.InUse":              Fatal,
	"Resource.AlreadyAssociated":          Fatal,
}

// hints say what to do about a code.
var hints = map[string]string{
	"UnauthorizedOperation":   "grant this action to the instance role (see docs/iam-policy.json)",
	"AuthFailure":             "check the credentials: the instance profile, AWS_PROFILE or the AWS_* variables",
	"AccessDenied":            "grant this action to the instance role (see docs/iam-policy.json)",
	"Gateway.NotAttached":     "attach an internet gateway to the instance's VPC: an EIP needs one",
	"InvalidAddress.NotFound": "check public_ip: no EIP with this address exists in this account and region",
	"InvalidParameterValue":   "check the configuration values named in the message",
}

// Classed is an error that knows its class: errors that eipclaim itself
// makes from what it found out about a failure (the instance metadata
// service refused a token, no credentials at all). Classify asks it first.
// Its message says what to do; Do adds no hint to it.
type Classed interface {
	error
	// RetryClass returns the class and the code to log and report.
	RetryClass() (Class, string)
}

// statusCoder is an error that carries an HTTP answer's status: the SDK's
// response errors (smithyhttp.ResponseError, awshttp.ResponseError).
type statusCoder interface{ HTTPStatusCode() int }

// Classify returns the class and the code of err. The code is "" for errors
// that carry none (network errors, timeouts).
//
// A transport timeout is Retry, whatever its form: a net.Error whose
// Timeout() is true (a dial or TLS timeout, the transport's
// ResponseHeaderTimeout, an http.Client Timeout, which *url.Error reports),
// or context.DeadlineExceeded from a per-request or per-operation deadline.
// Classify cannot tell the latter from the caller's own deadline having
// passed: Do asks the caller's context first and stops when it is done.
// context.Canceled is Fatal: someone chose to stop.
func Classify(err error) (Class, string) {
	if err == nil {
		return Fatal, ""
	}
	var classed Classed
	if errors.As(err, &classed) {
		return classed.RetryClass()
	}
	var t *transient
	if errors.As(err, &t) {
		return Retry, "NotVisibleYet"
	}
	var sc statusCoder
	hasStatus := errors.As(err, &sc) && sc.HTTPStatusCode() != 0
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if c, ok := codes[code]; ok {
			return c, code
		}
		if hasStatus && sc.HTTPStatusCode() >= 500 {
			return Retry, code
		}
		return Fatal, code
	}
	if hasStatus {
		if sc.HTTPStatusCode() >= 500 || sc.HTTPStatusCode() == http.StatusTooManyRequests {
			return Retry, ""
		}
		return Fatal, ""
	}
	if errors.Is(err, context.Canceled) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// An http.Client Timeout cancels its request; the error says
			// both.
			return Retry, ""
		}
		return Fatal, ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Retry, ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && !ue.Timeout() && ue.Err != nil {
		// *url.Error is a net.Error whatever it wraps: what it wraps
		// decides (a refused connection is retried, a certificate that
		// does not verify or a refused redirect is not).
		return Classify(ue.Err)
	}
	var ne net.Error
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &maxAttempts) {
		return Retry, ""
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Retry, ""
	}
	return Fatal, ""
}

// Clock is the passage of time, injected so that tests run instantly.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, whichever comes first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Backoff is exponential backoff with full jitter.
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a number in [0, n); math/rand/v2 when nil.
	Rand func(n int64) int64
}

// DefaultBackoff starts at half a second and waits at most 20 seconds.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 20 * time.Second}

// Delay returns the wait before attempt+1 (attempt counts from 1): a random
// duration in [0, min(Max, Base·2^(attempt-1))].
func (b Backoff) Delay(attempt int) time.Duration {
	ceil := b.Max
	if attempt < 32 {
		if d := b.Base << (attempt - 1); d > 0 && d < b.Max {
			ceil = d
		}
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceil) + 1))
}

// Retrier runs an operation until it succeeds, fails for good, or the
// context's deadline comes.
type Retrier struct {
	Clock   Clock   // RealClock when nil
	Backoff Backoff // DefaultBackoff when zero
	Log     *slog.Logger
}

// Do runs fn, retrying errors of class Retry, with one log line per failed
// attempt (its error code and the next delay). It returns fn's last error,
// wrapped with the exit code its class implies and, after retries, how many
// attempts there were. op names the API action, for messages.
func (r *Retrier) Do(ctx context.Context, op string, fn func(context.Context) error) error {
	r = (&Retrier{Clock: r.Clock, Backoff: r.Backoff, Log: r.Log}).withDefaults()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		class, code := Classify(err)
		if class == Retry && ctx.Err() != nil {
			// The command's own deadline came, or it was stopped: a
			// timeout now is not the request's, and there is no time for
			// another attempt.
			return exitcode.With(exitcode.Failed, fmt.Errorf("%s: gave up after %d attempts, %s: %w", op, attempt, stopped(ctx), err))
		}
		if class != Retry {
			r.Log.Debug("attempt failed", "op", op, "attempt", attempt, "error_code", code, "class", class.String())
			return classified(class, code, op, err)
		}
		delay := r.Backoff.Delay(attempt)
		if dl, ok := ctx.Deadline(); ok && r.Clock.Now().Add(delay).After(dl) {
			return exitcode.With(exitcode.Failed, fmt.Errorf("%s: gave up after %d attempts, the deadline is near: %w", op, attempt, err))
		}
		r.Log.Warn("attempt failed, will retry", "op", op, "attempt", attempt, "error_code", codeOr(code, err), "next_delay", delay.Round(time.Millisecond).String())
		if serr := r.Clock.Sleep(ctx, delay); serr != nil {
			return exitcode.With(exitcode.Failed, fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err))
		}
	}
}

// stopped says why ctx is done.
func stopped(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "the deadline (--timeout) passed"
	}
	return "stopped"
}

func codeOr(code string, err error) string {
	if code != "" {
		return code
	}
	var sc statusCoder
	if errors.As(err, &sc) && sc.HTTPStatusCode() != 0 {
		return fmt.Sprintf("HTTP %d", sc.HTTPStatusCode())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}

// classified wraps err with the exit code of its class and a hint.
func classified(class Class, code, op string, err error) error {
	var classed Classed
	if errors.As(err, &classed) {
		// Its message says what to do.
		return exitcode.With(exitCodes[class], fmt.Errorf("%s: %w", op, err))
	}
	hint := ""
	if h, ok := hints[code]; ok {
		hint = " (" + h + ")"
	}
	switch class {
	case Denied:
		if hint == "" {
			hint = " (grant ec2:" + op + " to the instance role, see docs/iam-policy.json)"
		}
		return exitcode.With(exitcode.Denied, fmt.Errorf("%s not permitted%s: %w", op, hint, err))
	case Invalid:
		return exitcode.With(exitcode.Usage, fmt.Errorf("%s rejected%s: %w", op, hint, err))
	}
	if hint != "" {
		return fmt.Errorf("%s%s: %w", op, hint, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// exitCodes are the exit codes of the classes.
var exitCodes = [...]int{Fatal: exitcode.Failed, Retry: exitcode.Failed, Denied: exitcode.Denied, Invalid: exitcode.Usage}

// transient is an answer that is expected to change soon: a resource or an
// association the API does not show yet (eventual consistency).
type transient struct{ what string }

func (t *transient) Error() string { return t.what }

func (r *Retrier) withDefaults() *Retrier {
	if r.Clock == nil {
		r.Clock = RealClock
	}
	if r.Backoff.Base == 0 {
		r.Backoff = DefaultBackoff
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	return r
}
