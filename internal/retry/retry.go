// Package retry runs the calls eipclaim makes (EC2, Route 53, S3, the
// instance metadata service, https) until they succeed, fail for good, or
// the command's deadline comes: exponential backoff with full jitter, one
// log line per failed attempt. Errors are classified by service and error
// code, never by message text, and a final error carries the exit code its
// class means (internal/exitcode) and a hint that names the service and
// the IAM action to grant.
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

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

// DefaultBackoff starts at half a second and waits at most 5 seconds. The
// cap is short because AWS's rate limits are token buckets shared by the
// account: in a boot storm the last claimers, sleeping up to 20 s with full
// jitter, left the Route 53 bucket idle at the tail (tools/bench's storm:
// 1.17x to 1.30x the bucket-limited minimum with 20 s, 1.06x to 1.10x with
// 5 s, for 7 to 15% more requests, all throttled ones).
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second}

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
// attempts there were. op names the operation as "service:Action" (the IAM
// action where there is one): it picks the service's error table and names
// the action in hints. An error that already carries an exit code comes
// back as it is: whoever gave it the code said what to do.
func (r *Retrier) Do(ctx context.Context, op string, fn func(context.Context) error) error {
	r = r.withDefaults()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		class, code := Classify(op, err)
		if class == Retry && ctx.Err() != nil {
			// The command's own deadline came, or it was stopped: a
			// timeout now is not the request's, and there is no time for
			// another attempt.
			return exitcode.With(exitcode.Failed, fmt.Errorf("%s: gave up after %d attempts, %s: %w", op, attempt, stopped(ctx), err))
		}
		if class != Retry {
			r.Log.Debug("attempt failed", "op", op, "attempt", attempt, "error_code", code, "class", class.String())
			return classified(op, class, code, err)
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

func (r *Retrier) withDefaults() *Retrier {
	out := &Retrier{Clock: r.Clock, Backoff: r.Backoff, Log: r.Log}
	if out.Clock == nil {
		out.Clock = RealClock
	}
	if out.Backoff.Base == 0 {
		out.Backoff = DefaultBackoff
	}
	if out.Log == nil {
		out.Log = slog.New(slog.DiscardHandler)
	}
	return out
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

// classified wraps a final error with the exit code of its class and, once,
// a hint.
func classified(op string, class Class, code string, err error) error {
	var coded *exitcode.Error
	if errors.As(err, &coded) {
		return err
	}
	var classed Classed
	if errors.As(err, &classed) {
		// Its message says what to do.
		return exitcode.With(exitCodes[class], fmt.Errorf("%s: %w", op, err))
	}
	h := Hint(op, class, code)
	if h != "" {
		h = " (" + h + ")"
	}
	switch class {
	case Denied:
		return exitcode.With(exitcode.Denied, fmt.Errorf("%s not permitted%s: %w", op, h, err))
	case Invalid:
		return exitcode.With(exitcode.Usage, fmt.Errorf("%s rejected%s: %w", op, h, err))
	}
	return fmt.Errorf("%s%s: %w", op, h, err)
}

// exitCodes are the exit codes of the classes.
var exitCodes = [...]int{Fatal: exitcode.Failed, Retry: exitcode.Failed, Denied: exitcode.Denied, Invalid: exitcode.Usage}

// NotVisibleYet returns an error for an answer that is expected to change
// soon: a resource or an association the API does not show yet (eventual
// consistency). It is retried.
func NotVisibleYet(what string) error { return &transient{what: what} }

type transient struct{ what string }

func (t *transient) Error() string { return t.what }
