package claim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

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

// Classify returns the class and the code of err. The code is "" for errors
// that carry none (network errors, timeouts).
func Classify(err error) (Class, string) {
	if err == nil {
		return Fatal, ""
	}
	var t *transient
	if errors.As(err, &t) {
		return Retry, "NotVisibleYet"
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if c, ok := codes[code]; ok {
			return c, code
		}
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			return Retry, code
		}
		return Fatal, code
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
		return Retry, ""
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Fatal, ""
	}
	// The SDK's IMDS client hides the cause of a failed token request in an
	// error without Unwrap: an IMDS failure other than an answer (404, 401)
	// is the service not being up yet, as at boot.
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) && opErr.ServiceID == "ec2imds" && !errors.As(err, &re) {
		return Retry, ""
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

func codeOr(code string, err error) string {
	if code != "" {
		return code
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	return "network"
}

// classified wraps err with the exit code of its class and a hint.
func classified(class Class, code, op string, err error) error {
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
