// Package controller is the off-box controller: a driver of the failover
// step (internal/failover) that runs outside the role's instances, on AWS
// Lambda (`eipclaim lambda`), when EventBridge says an instance changed
// state, when an Auto Scaling lifecycle hook waits, or on a schedule. It
// runs the step on behalf of a candidate instance: claim.Engine's
// InstanceID is the candidate, not the machine the code runs on.
//
// Every invocation observes (internal/observe: the whole fleet in batched
// reads for the schedule, the event's role for an event), decides each
// role in memory (decide.Plan), and moves or publishes only where
// something must change, concurrently (Workers at once), each role's work
// bounded by its share of the invocation's time, so that a role that
// cannot be served is reported without holding up the others. Every move
// is the engine's compare-and-swap, which judges the holder again on fresh
// facts; events that arrive twice or out of order change nothing more
// than one event would. Each decision is one log line (msg "decision")
// and one Decision in the invocation's Result.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/observe"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/table"
)

// TagRole is the instance tag that makes an instance a candidate of a
// role: its value is the role's name.
const TagRole = observe.TagRole

// AutoScalingAPI is the part of the Auto Scaling API the controller uses;
// *autoscaling.Client has it.
type AutoScalingAPI interface {
	CompleteLifecycleAction(ctx context.Context, in *autoscaling.CompleteLifecycleActionInput, optFns ...func(*autoscaling.Options)) (*autoscaling.CompleteLifecycleActionOutput, error)
}

// Observer reads the state of roles (internal/observe's Observer).
type Observer interface {
	// Fleet observes the roles named, in batched reads.
	Fleet(ctx context.Context, roles map[string]*config.Role) (*observe.Fleet, error)
	// RoleOf returns the role an instance is tagged with, "" for none.
	RoleOf(ctx context.Context, instance string) (string, error)
}

// Mover changes where an EIP is: the failover step on behalf of an
// instance (the engine's compare-and-swap, then the publications).
type Mover interface {
	// Step runs the failover step for the request's role on behalf of
	// instance.
	Step(ctx context.Context, instance string, req failover.Request) (*failover.Outcome, error)
	// Keep publishes where the EIP already is: held, as held says, by a
	// healthy instance whose audit tags are right.
	Keep(ctx context.Context, req failover.Request, held *claim.Result) (*failover.Outcome, error)
	// Release frees the role's addresses from instance (req's
	// publishers: the role table an overlay's release writes).
	Release(ctx context.Context, instance string, req failover.Request) (string, error)
}

// Publishing builds the publishers of the roles of one invocation.
type Publishing interface {
	// Prepare reads, once, what the publications of roles share (each
	// Route 53 zone, whole); a failure there is only a read to do again
	// at each publication.
	Prepare(ctx context.Context, roles map[string]*config.Role)
	// Publishers returns a role's publishers.
	Publishers(role string, spec *config.Role) ([]publish.Publisher, error)
}

// Controller decides, for each event, which role's EIP goes where, and
// runs the failover step for the chosen candidate.
type Controller struct {
	EC2         claim.EC2API
	AutoScaling AutoScalingAPI
	Route53     publish.Route53API
	// S3 writes the role table when the configuration has a repository:.
	S3 table.S3API
	// Config loads the configuration (the roles table) afresh: once per
	// invocation, so that a change in S3 takes effect at the next event.
	Config func(ctx context.Context) (*config.Config, error)
	Region string
	Log    *slog.Logger
	// Dial probes health_check, of holders and of candidates; nil dials.
	Dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	HealthTimeout time.Duration // one probe; 3s when zero
	Clock         retry.Clock   // retry.RealClock when nil
	Backoff       retry.Backoff // retry.DefaultBackoff when zero
	// FinishTimeout bounds the finishing of a move (claim.Engine's),
	// claim.DefaultFinishTimeout when zero. Handle shortens it to fit the
	// time the invocation has left (see budget).
	FinishTimeout time.Duration
	// Workers bounds the roles whose moves and publications run at once;
	// DefaultWorkers when zero.
	Workers int

	// Observe, Move and Publish are what the controller observes, moves
	// and publishes with; nil: internal/observe, the failover step and
	// internal/publish on the clients above. Tests give in-memory ones.
	Observe Observer
	Move    Mover
	Publish func(cfg *config.Config) Publishing
}

// DefaultWorkers is how many roles a schedule run works on at once: with
// the retrier's backoff on throttling, enough to keep EC2's mutating
// bucket (5 requests a second) busy while others wait on reads.
const DefaultWorkers = 16

// Decision is what the controller decided for one role (or one event that
// concerns no role), and what came of it.
type Decision struct {
	Event    string `json:"event"`              // state-change, launching, terminating, schedule
	EventID  string `json:"event_id,omitempty"` // EventBridge's id
	Instance string `json:"instance_id,omitempty"`
	State    string `json:"state,omitempty"` // of a state-change event
	Role     string `json:"role,omitempty"`
	// Action: "claimed", "taken over", "handed over", "released",
	// "already held", "nothing to do", "ignored", "refused", "failed".
	Action    string            `json:"action"`
	Reason    string            `json:"reason"`
	Candidate string            `json:"candidate,omitempty"` // the instance the step ran for
	Outcome   *failover.Outcome `json:"outcome,omitempty"`
	Error     string            `json:"error,omitempty"`
	// Lifecycle says how the lifecycle action was completed.
	Lifecycle string `json:"lifecycle,omitempty"`
}

// Result is what one invocation did.
type Result struct {
	Decisions []Decision `json:"decisions"`
}

// Handle runs the controller for one event (the raw JSON Lambda gives).
// The error is the first decision's that failed, with its exit code, so
// that Lambda reports the invocation failed and EventBridge retries it
// (which is safe: decisions are re-made on fresh state).
//
// Lambda ends the invocation at its context's deadline, whatever runs: a
// move cut off there would leave the EIP on nobody, unreported. So the
// invocation's work gets a deadline that leaves, before Lambda's, the
// finishing window of a move and a margin to log the decisions and return
// them (see budget).
func (c *Controller) Handle(ctx context.Context, raw []byte) (*Result, error) {
	ctx, c, cancel := c.budget(ctx)
	defer cancel()
	ev, err := parse(raw)
	if err != nil {
		return nil, err
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the configuration: %w", err)
	}
	res := &Result{}
	var errs []error
	add := func(d Decision, err error) {
		d.Event, d.EventID = string(ev.kind), ev.id
		if err != nil {
			d.Error = err.Error()
			if d.Action == "" {
				d.Action = "failed"
			}
			if !errors.Is(err, claim.ErrRefused) {
				errs = append(errs, err)
			}
		}
		c.logDecision(d, err)
		res.Decisions = append(res.Decisions, d)
	}
	r := c.newRun(cfg)
	switch ev.kind {
	case kindSchedule:
		r.schedule(ctx, add)
	case kindStateChange:
		r.forSubject(ctx, decide.Situation{Subject: ev.state.InstanceID, State: ev.state.State}, add)
	case kindLaunching:
		r.forSubject(ctx, decide.Situation{Subject: ev.lifecycle.InstanceID, Launching: true}, add)
		c.complete(ctx, ev.lifecycle, res)
	case kindTerminating:
		r.forSubject(ctx, decide.Situation{Subject: ev.lifecycle.InstanceID, Terminating: true}, add)
		c.complete(ctx, ev.lifecycle, res)
	}
	if len(errs) > 0 {
		return res, errs[0]
	}
	return res, nil
}

// The margin an invocation keeps before Lambda's deadline to log its
// decisions and return them: a tenth of the time it has, within these.
const (
	minMargin = 500 * time.Millisecond
	maxMargin = 3 * time.Second
)

// budget fits the invocation's work in the time ctx has left (Lambda's
// deadline, when ctx has one): it returns the context of the work, whose
// deadline comes a margin and a finishing window before Lambda's, and the
// controller for this invocation, whose FinishTimeout is that window (at
// most a third of the time left after the margin). The claim engine
// finishes a move within its window after the work's deadline (see
// claim.Engine.Finishing), the failover step publishes it there, so all
// of it ends, and is logged, before Lambda ends the invocation.
func (c *Controller) budget(ctx context.Context) (context.Context, *Controller, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, c, func() {}
	}
	inv := *c
	finish := cmp.Or(c.FinishTimeout, claim.DefaultFinishTimeout)
	left := time.Until(dl)
	margin := min(max(left/10, minMargin), maxMargin)
	finish = max(min(finish, (left-margin)/3), 0)
	inv.FinishTimeout = max(finish, time.Millisecond) // 0 would mean the default
	wctx, cancel := context.WithDeadline(ctx, dl.Add(-margin-finish))
	inv.log().Debug("invocation budget", "time_left", left.String(), "finish_window", finish.String(), "margin", margin.String())
	return wctx, &inv, cancel
}

// complete completes the lifecycle action with CONTINUE, whatever was
// decided: the instance launches or terminates anyway, and a hook left
// waiting only delays it until the hook's timeout. A second completion
// (the event came twice) is answered ValidationError by Auto Scaling: the
// action is no longer pending, which is what was wanted.
func (c *Controller) complete(ctx context.Context, l *Lifecycle, res *Result) {
	in := &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName:  aws.String(l.Group),
		LifecycleHookName:     aws.String(l.Hook),
		LifecycleActionResult: aws.String("CONTINUE"),
		InstanceId:            aws.String(l.InstanceID),
	}
	if l.Token != "" {
		in.LifecycleActionToken = aws.String(l.Token)
	}
	var state string
	err := c.retrier().Do(ctx, "autoscaling:CompleteLifecycleAction", func(ctx context.Context) error {
		_, err := c.AutoScaling.CompleteLifecycleAction(ctx, in)
		if retry.Code(err) == "ValidationError" {
			state = "no longer pending (completed before, or expired)"
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		state = "not completed: " + err.Error() + " (Auto Scaling goes on at the hook's timeout, with its default result)"
		c.log().Warn("could not complete the lifecycle action", "group", l.Group, "hook", l.Hook, "instance_id", l.InstanceID, "error_code", retry.Code(err), "error", err)
	case state == "":
		state = "completed: CONTINUE"
	}
	for i := range res.Decisions {
		res.Decisions[i].Lifecycle = state
	}
	c.log().Info("lifecycle action", "group", l.Group, "hook", l.Hook, "instance_id", l.InstanceID, "lifecycle", state)
}

// engine is the claim engine acting on behalf of instance.
func (c *Controller) engine(instance string) *claim.Engine {
	return &claim.Engine{EC2: c.EC2, InstanceID: instance, Log: c.log(), Region: c.Region,
		Dial: c.Dial, HealthTimeout: c.HealthTimeout, Clock: c.Clock, Backoff: c.Backoff, FinishTimeout: c.FinishTimeout}
}

func (c *Controller) retrier() *retry.Retrier {
	return &retry.Retrier{Clock: c.Clock, Backoff: c.Backoff, Log: c.log()}
}

func (c *Controller) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// logDecision writes the decision's one line.
func (c *Controller) logDecision(d Decision, err error) {
	attrs := []any{"event", d.Event, "event_id", d.EventID, "role", d.Role, "action", d.Action, "reason", d.Reason}
	if d.Instance != "" {
		attrs = append(attrs, "instance_id", d.Instance)
	}
	if d.State != "" {
		attrs = append(attrs, "state", d.State)
	}
	if d.Candidate != "" {
		attrs = append(attrs, "candidate", d.Candidate)
	}
	if o := d.Outcome; o != nil {
		attrs = append(attrs, "allocation_id", o.AllocationID, "public_ip", o.PublicIP, "epoch", o.Epoch, "previous_holder", o.PreviousHolder)
		if o.PrivateAddress != "" {
			attrs = append(attrs, "private_address", o.PrivateAddress, "private_address_action", o.PrivateAddressAction)
		}
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		if errors.Is(err, claim.ErrRefused) {
			level = slog.LevelWarn
		}
		attrs = append(attrs, "error", err.Error(), "exit_code", exitcode.Of(err))
	}
	c.log().Log(context.Background(), level, "decision", attrs...)
}

// Actions are the IAM actions the controller calls: the claim engine's
// EC2 actions (its secondary private IP's too), the Route 53 publisher's, the configuration's S3 read, the
// role table's read and write, and the lifecycle completion. deploy/eipclaim-controller.yaml grants exactly
// these (and the Lambda log actions); a test keeps the two in step.
var Actions = append(append(append(append([]string{}, claim.Actions...), claim.SecondaryActions...), claim.OverlayActions...),
	"route53:GetHostedZone",
	"route53:ListHostedZonesByName",
	"route53:ListResourceRecordSets",
	"route53:ChangeResourceRecordSets",
	"route53:GetChange",
	"s3:GetObject",
	"s3:PutObject",
	"autoscaling:CompleteLifecycleAction",
)
