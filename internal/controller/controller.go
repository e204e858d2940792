// Package controller is the off-box controller: a driver of the failover
// step (internal/failover) that runs outside the role's instances, on AWS
// Lambda (`eipclaim lambda`), when EventBridge says an instance changed
// state, when an Auto Scaling lifecycle hook waits, or on a schedule. It
// runs the step on behalf of a candidate instance: claim.Engine's
// InstanceID is the candidate, not the machine the code runs on.
//
// Every decision reads the state again (the EIP, the holder, the
// candidates), so events that arrive twice or out of order change nothing
// more than one event would; every move is the engine's compare-and-swap.
// Each decision is one log line (msg "decision") and one Decision in the
// invocation's Result.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/table"
)

// TagRole is the instance tag that makes an instance a candidate of a
// role: its value is the role's name.
const TagRole = "eipclaim:role"

// AutoScalingAPI is the part of the Auto Scaling API the controller uses;
// *autoscaling.Client has it.
type AutoScalingAPI interface {
	CompleteLifecycleAction(ctx context.Context, in *autoscaling.CompleteLifecycleActionInput, optFns ...func(*autoscaling.Options)) (*autoscaling.CompleteLifecycleActionOutput, error)
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
}

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
	switch ev.kind {
	case kindSchedule:
		for _, role := range sortedRoles(cfg) {
			add(c.reconcile(ctx, cfg, role, situation{}))
		}
	case kindStateChange:
		s := situation{subject: ev.state.InstanceID, state: ev.state.State}
		if decide.Stopped(ev.state.State) {
			s.down = ev.state.InstanceID
		}
		c.forSubject(ctx, cfg, s, add)
	case kindLaunching:
		c.forSubject(ctx, cfg, situation{subject: ev.lifecycle.InstanceID, launching: true}, add)
		c.complete(ctx, ev.lifecycle, res)
	case kindTerminating:
		id := ev.lifecycle.InstanceID
		c.forSubject(ctx, cfg, situation{subject: id, down: id, leaving: true}, add)
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

// situation is what an event says: the instance it is about, and how.
type situation struct {
	subject   string // the instance of the event, "" for the schedule
	state     string // its state, for a state-change event
	down      string // an instance that must not hold the EIP (stopping, terminating)
	leaving   bool   // down is being terminated by Auto Scaling: hand over even if healthy
	launching bool   // subject is being launched by Auto Scaling (status checks still initializing)
}

// forSubject reconciles the role of the event's instance, found by its
// eipclaim:role tag, read now.
func (c *Controller) forSubject(ctx context.Context, cfg *config.Config, s situation, add func(Decision, error)) {
	d := Decision{Instance: s.subject, State: s.state}
	inst, err := c.instance(ctx, s.subject)
	if err != nil {
		add(d, err)
		return
	}
	role := ""
	if inst != nil {
		role = tag(inst.Tags, TagRole)
	}
	if role == "" {
		// A terminated instance long gone, or one of no role: the schedule
		// repairs what its EIP needs.
		d.Action, d.Reason = "ignored", "instance "+s.subject+" has no "+TagRole+" tag (or no longer exists): it is no candidate of any role"
		add(d, nil)
		return
	}
	if _, ok := cfg.Roles[role]; !ok {
		d.Role, d.Action, d.Reason = role, "ignored", "instance "+s.subject+" is tagged "+TagRole+"="+role+", a role the configuration does not define: add it to the roles table or fix the tag"
		add(d, nil)
		return
	}
	d2, err := c.reconcile(ctx, cfg, role, s)
	d2.Instance, d2.State = s.subject, s.state
	add(d2, err)
}

// reconcile makes one role's EIP true: on a healthy holder, else on the
// best healthy candidate, and its DNS published.
func (c *Controller) reconcile(ctx context.Context, cfg *config.Config, role string, s situation) (Decision, error) {
	d := Decision{Role: role}
	spec := cfg.Roles[role]
	if spec.Pool != nil {
		d.Action, d.Reason = "ignored", "the role's EIP is a pool: the controller drives roles with one EIP (allocation_id or public_ip); run eipclaim on the pool's instances"
		return d, nil
	}
	addrs, err := c.engine("").Addresses(ctx, spec, true)
	if err != nil {
		return d, err
	}
	a := addrs[0]
	if !a.Free() && a.Holder == s.down && !s.leaving && !a.Health.Down {
		// EC2's event says the holder is stopping or stopped, the read says
		// it runs: the read may be older than the event (EC2's eventual
		// consistency). The API decides, once it has caught up.
		if a.Health, err = c.confirmDown(ctx, spec, a); err != nil {
			return d, err
		}
	}
	switch {
	case !a.Free() && a.Holder == s.down && s.leaving:
		// Auto Scaling terminates the holder: it is healthy until the
		// hook completes, so the move is forced (still a compare-and-swap).
		cands, err := c.candidates(ctx, role, spec, s)
		if err != nil {
			return d, err
		}
		if len(cands) == 0 {
			msg, err := c.engine(a.Holder).Release(ctx, role, spec, false)
			if err != nil {
				return d, err
			}
			d.Action, d.Reason = "released", "holder "+a.Holder+" is terminating and no other candidate is healthy: "+msg
			return d, nil
		}
		return c.step(ctx, cfg, d, cands[0], spec, true, "handed over", "holder "+a.Holder+" is terminating")
	case !a.Free() && !a.Health.Down:
		if s.subject == "" {
			// The schedule: keep the holder's DNS true (the step changes
			// no association when the EIP is already held).
			return c.step(ctx, cfg, d, a.Holder, spec, false, "", "")
		}
		d.Action, d.Reason = "nothing to do", fmt.Sprintf("%s (%s) is held by %s, which is healthy (%s)", a.PublicIP, a.AllocationID, a.Holder, a.Health.Why)
		return d, nil
	}
	why := "the EIP was free"
	if !a.Free() {
		why = a.Health.Why
	}
	cands, err := c.candidates(ctx, role, spec, s)
	if err != nil {
		return d, err
	}
	if len(cands) == 0 {
		d.Action, d.Reason = "nothing to do", fmt.Sprintf("%s (%s) needs a holder (%s) but no instance tagged %s=%s is running, passes its status checks and its health check", a.PublicIP, a.AllocationID, why, TagRole, role)
		return d, nil
	}
	return c.step(ctx, cfg, d, cands[0], spec, false, "", why)
}

// eventConfirm bounds how long the holder's health is read again when an
// event says it is down and the API does not show it yet.
const eventConfirm = 10 * time.Second

// confirmDown reads the health of a's holder, which an event says is
// stopping or stopped, again with backoff until the API shows it down too,
// for at most eventConfirm: EC2 documents that a read after a change may
// show the state before it. It returns the last health read: still up
// when the API never showed the change (an event delivered late, the
// instance started again since: EventBridge may deliver an event late or
// twice), and the decision is then made on it.
func (c *Controller) confirmDown(ctx context.Context, spec *config.Role, a claim.Address) (*claim.Health, error) {
	h := a.Health
	cctx, cancel := context.WithTimeout(ctx, eventConfirm)
	defer cancel()
	err := c.retrier().Do(cctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		got, err := c.engine("").Health(ctx, a.Holder, a.PrivateIP, spec.HealthCheck)
		if err != nil {
			return err
		}
		if h = got; !h.Down {
			return retry.NotVisibleYet("holder " + a.Holder + " is " + h.State + " in the API, stopping or stopped in EC2's event")
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		c.log().Info("the event says the holder is down, the API still says otherwise: deciding on the API's answer", "holder", a.Holder, "state", h.State, "error", err)
	}
	return h, nil
}

// step runs the failover step on behalf of instance.
func (c *Controller) step(ctx context.Context, cfg *config.Config, d Decision, instance string, spec *config.Role, force bool, action, why string) (Decision, error) {
	d.Candidate = instance
	st := &failover.Step{Engine: c.engine(instance), Region: c.Region, Log: c.log()}
	deps := publish.Deps{Route53: c.Route53, Log: c.log(), Retry: c.retrier().Do}
	if cfg.Repository != "" && c.S3 != nil {
		// The role table is written like every other publication.
		st, err := table.NewStore(c.S3, cfg.Repository, c.retrier().Do, c.log())
		if err != nil {
			return d, err
		}
		deps.Table = st
	}
	pubs := publish.For(d.Role, spec, deps)
	o, err := st.Run(ctx, failover.Request{Role: d.Role, Spec: spec, Publishers: pubs, Force: force})
	d.Outcome = o
	switch {
	case errors.Is(err, claim.ErrRefused):
		d.Action, d.Reason = "refused", "another instance took the EIP first, and it is healthy"
		return d, err
	case o == nil:
		return d, err
	}
	d.Action, d.Reason = o.Action, why
	if action != "" && o.Action != "already held" {
		d.Action = action
	}
	if d.Reason == "" || o.Action == "already held" {
		d.Reason = o.Reason
		if o.Action == "already held" {
			d.Reason = "held by " + instance + "; DNS kept true"
		}
	}
	if err != nil {
		return d, exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: claimed for %s, but DNS publication failed: %w", d.Role, instance, err))
	}
	return d, nil
}

// candidates lists the instances that may hold the role's EIP, best first:
// tagged eipclaim:role=role, running, status checks ok (or initializing,
// for the instance Auto Scaling is launching), health_check passing; the
// event's instance first, then by launch time and id.
func (c *Controller) candidates(ctx context.Context, role string, spec *config.Role, s situation) ([]string, error) {
	var insts []types.Instance
	err := c.retrier().Do(ctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		insts = nil
		p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("tag:" + TagRole), Values: []string{role}},
			{Name: aws.String("instance-state-name"), Values: []string{string(types.InstanceStateNameRunning)}},
		}})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, r := range out.Reservations {
				insts = append(insts, r.Instances...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the candidates of role %s (instances tagged %s=%s): %w", role, TagRole, role, err)
	}
	// Filters treat * and ? as wildcards: keep the exact tag only.
	insts = slices.DeleteFunc(insts, func(i types.Instance) bool {
		id := aws.ToString(i.InstanceId)
		return tag(i.Tags, TagRole) != role || id == s.down || i.State == nil || i.State.Name != types.InstanceStateNameRunning
	})
	if len(insts) == 0 {
		return nil, nil
	}
	ids := make([]string, len(insts))
	for i := range insts {
		ids[i] = aws.ToString(insts[i].InstanceId)
	}
	status := map[string][2]string{}
	err = c.retrier().Do(ctx, "ec2:DescribeInstanceStatus", func(ctx context.Context) error {
		out, err := c.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids, IncludeAllInstances: aws.Bool(true)})
		if err != nil {
			return err
		}
		for _, st := range out.InstanceStatuses {
			status[aws.ToString(st.InstanceId)] = [2]string{claim.StatusSummary(st.InstanceStatus), claim.StatusSummary(st.SystemStatus)}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the status checks of the candidates of role %s: %w", role, err)
	}
	slices.SortFunc(insts, func(a, b types.Instance) int {
		ai, bi := aws.ToString(a.InstanceId), aws.ToString(b.InstanceId)
		if (ai == s.subject) != (bi == s.subject) {
			if ai == s.subject {
				return -1
			}
			return 1
		}
		return cmp.Or(aws.ToTime(a.LaunchTime).Compare(aws.ToTime(b.LaunchTime)), cmp.Compare(ai, bi))
	})
	var ok []string
	for _, i := range insts {
		id := aws.ToString(i.InstanceId)
		st := status[id]
		passes := st[0] == "ok" && st[1] == "ok"
		if s.launching && id == s.subject {
			passes = st[0] != "impaired" && st[1] != "impaired"
		}
		if !passes {
			c.log().Debug("not a candidate: status checks", "role", role, "instance_id", id, "instance_status", st[0], "system_status", st[1])
			continue
		}
		if spec.HealthCheck.Set() {
			if good, result := c.probe(ctx, aws.ToString(i.PrivateIpAddress), spec.HealthCheck); !good {
				c.log().Debug("not a candidate: health check", "role", role, "instance_id", id, "check", result)
				continue
			}
		}
		ok = append(ok, id)
	}
	return ok, nil
}

// probe runs the role's health_check against a candidate, as the claim
// engine probes a holder (through Dial).
func (c *Controller) probe(ctx context.Context, ip string, healthCheck config.HealthCheck) (bool, string) {
	if ip == "" {
		return false, "no private IP"
	}
	return (&claim.Engine{Dial: c.Dial, HealthTimeout: c.HealthTimeout}).Probe(ctx, ip, healthCheck)
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

// instance reads one instance; nil when EC2 no longer knows it.
func (c *Controller) instance(ctx context.Context, id string) (*types.Instance, error) {
	inst, err := c.engine(id).Instance(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("describe instance %s: %w", id, err)
	}
	return inst, nil
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

func sortedRoles(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Roles))
	for n, r := range cfg.Roles {
		if r != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Actions are the IAM actions the controller calls: the claim engine's
// EC2 actions, the Route 53 publisher's, the configuration's S3 read, the
// role table's read and write, and the lifecycle completion. deploy/eipclaim-controller.yaml grants exactly
// these (and the Lambda log actions); a test keeps the two in step.
var Actions = append(append([]string{}, claim.Actions...),
	"route53:GetHostedZone",
	"route53:ListHostedZonesByName",
	"route53:ListResourceRecordSets",
	"route53:ChangeResourceRecordSets",
	"route53:GetChange",
	"s3:GetObject",
	"s3:PutObject",
	"autoscaling:CompleteLifecycleAction",
)
