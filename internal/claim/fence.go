package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Fence is the fence of a holder before a takeover (fence: stop).
type Fence struct {
	Instance string        `json:"instance"` // the holder's instance, stopped
	State    string        `json:"state"`    // what EC2 said of it: stopping, stopped, ...
	Took     time.Duration `json:"-"`        // from the StopInstances request to EC2 saying State (JSON: "took": "1.2s")
	Why      string        `json:"why"`      // why it was fenced (decide.Fence)
}

// MarshalJSON writes Took as a duration in words ("took": "1.234s"), as
// a hook run's.
func (f Fence) MarshalJSON() ([]byte, error) {
	type plain Fence
	return json.Marshal(struct {
		plain
		Took string `json:"took,omitempty"`
	}{plain(f), tookText(f.Took)})
}

func tookText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.Round(time.Millisecond).String()
}

// String says the fence in words: "fenced i-0abc (stopped in 1.2s)".
func (f *Fence) String() string {
	if f == nil {
		return ""
	}
	if f.State == "" {
		return "would fence " + f.Instance + " (stop it before the move)"
	}
	return fmt.Sprintf("fenced %s (stopped in %s: EC2 says %s)", f.Instance, f.Took.Round(100*time.Millisecond), f.State)
}

// ErrFenceFailed means the claim did not take the EIP because it could
// not fence its holder (fence: stop) within fence_timeout.
var ErrFenceFailed = errors.New("fence failed")

// fence stops the holder's instance with StopInstances and Force (a hard
// stop: an OS that no longer answers may not shut down) and waits until
// EC2 says it is stopping or stopped (decide.Stopped), all within the
// role's fence_timeout. A fence that fails or runs out of time moves
// nothing: the error says why (exit 1, or 3 when StopInstances is not
// permitted), and one line is logged. In a dry run it only says what it
// would do.
//
// what names the address the fence is for, in messages: "203.0.113.10
// (eipalloc-…)", "private address 10.0.1.50". It returns the fence made.
func (e *Engine) fence(ctx context.Context, log *slog.Logger, req Request, what, holder, why string) (*Fence, error) {
	f := &Fence{Instance: holder, Why: why}
	if req.DryRun {
		log.Info("dry run: would fence the holder (stop its instance) before the move", "holder", holder, "reason", why)
		return f, nil
	}
	timeout := req.Spec.EffectiveFenceTimeout()
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log = log.With("holder", holder)
	log.Info("fencing the holder: stopping its instance before the move", "reason", why, "fence_timeout", timeout.String())
	began := e.clock().Now()
	state, err := e.stop(fctx, holder)
	if err == nil && !decide.Stopped(state) {
		state, err = e.awaitStopped(fctx, holder)
	}
	if err != nil {
		code := exitcode.Failed
		if exitcode.Of(err) == exitcode.Denied {
			code = exitcode.Denied // say what to grant: the IAM statement for fencing
		}
		log.Warn("fence failed: the address is not taken from the holder", "error_code", retry.Code(err), "error", err)
		return nil, exitcode.With(code, fmt.Errorf("%w: stop %s (the holder of %s) within fence_timeout %s: %w; nothing moved: the address stays on %s until it is stopped", ErrFenceFailed, holder, what, timeout, err, holder))
	}
	f.State, f.Took = state, e.clock().Now().Sub(began)
	log.Info("fenced the holder", "state", state, "took", f.Took.Round(time.Millisecond).String())
	return f, nil
}

// stop asks EC2 to stop the instance, forced, and returns the state EC2
// says it is in now (StateGone when EC2 no longer knows it).
func (e *Engine) stop(ctx context.Context, id string) (string, error) {
	var state string
	err := e.retrier().Do(ctx, "ec2:StopInstances", func(ctx context.Context) error {
		out, err := e.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}, Force: aws.Bool(true)})
		if retry.Code(err) == "InvalidInstanceID.NotFound" {
			state = decide.StateGone
			return nil
		}
		if err != nil {
			return err
		}
		for _, s := range out.StoppingInstances {
			if aws.ToString(s.InstanceId) == id && s.CurrentState != nil {
				state = string(s.CurrentState.Name)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("stop the holder %s: %w", id, err)
	}
	return state, nil
}

// awaitStopped reads the instance's state until EC2 says it is stopping
// or stopped (or gone), and returns that state.
func (e *Engine) awaitStopped(ctx context.Context, id string) (string, error) {
	var state string
	err := e.retrier().Do(ctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		out, err := e.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if retry.Code(err) == "InvalidInstanceID.NotFound" {
			state = decide.StateGone
			return nil
		}
		if err != nil {
			return err
		}
		state = ""
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State != nil {
					state = string(i.State.Name)
				}
			}
		}
		if !decide.Stopped(state) {
			return retry.NotVisibleYet("holder " + id + " is still " + state + " after StopInstances")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("wait for the holder %s to stop: %w", id, err)
	}
	return state, nil
}
