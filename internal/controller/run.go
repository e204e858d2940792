package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// run is one invocation's work: its configuration, and what it observes,
// moves and publishes with.
type run struct {
	c     *Controller
	cfg   *config.Config
	obs   Observer
	mover Mover
	pub   Publishing
	// table is the role table as the observation read it (nil when it
	// did not): the keeps' table publishers compare on it.
	table *table.Snapshot
}

func (c *Controller) newRun(cfg *config.Config) *run {
	r := &run{c: c, cfg: cfg, obs: c.Observe, mover: c.Move}
	if r.obs == nil {
		ob := &observe.Observer{EC2: c.EC2, Retry: c.retrier().Do, Dial: c.Dial, HealthTimeout: c.HealthTimeout, Log: c.log()}
		if cfg.Repository != "" && c.S3 != nil {
			// The overlay roles' entries, read once per observation.
			if st, err := table.NewStore(c.S3, cfg.Repository, c.retrier().Do, c.log()); err == nil {
				ob.Table = st
			} else {
				c.log().Warn("the role table cannot be read: overlay roles cannot be observed", "error", err)
			}
		}
		r.obs = ob
	}
	if r.mover == nil {
		r.mover = engineMover{c}
	}
	if c.Publish != nil {
		r.pub = c.Publish(cfg)
	} else {
		r.pub = &awsPublishing{c: c, cfg: cfg, zones: publish.NewZones()}
	}
	return r
}

// roles are the configuration's roles (a role with no body left out, and
// a role the controller does not serve yet: notYet).
func (r *run) roles() map[string]*config.Role {
	roles := map[string]*config.Role{}
	for n, spec := range r.cfg.Roles {
		if spec != nil && notYet(n, spec) == nil {
			roles[n] = spec
		}
	}
	return roles
}

// notYet says why the controller does not serve a role (exit 2), nil
// when it does: it serves a role's EIP (or pool), its secondary private
// IP (private_address) and its overlay address (overlay); a role with
// none of them has nothing to move.
func notYet(name string, spec *config.Role) error {
	if spec == nil || spec.HasEIP() || spec.PrivateKind() != "" {
		return nil
	}
	return exitcode.With(exitcode.Usage, fmt.Errorf("role %s has no EIP, no private_address and no overlay: the controller has nothing to move for it; "+
		"give it an address, or remove the role from the controller's configuration", name))
}

// job is one role's plan, carried out by a worker.
type job struct {
	role  *observe.Role
	s     decide.Situation
	moves []decide.Move
	out   []Decision
	errs  []error
}

// moving is 1 when the plan moves or frees an address (or repairs its
// tags through the step), 0 when it only publishes or does nothing.
func (j *job) moving() int {
	if slices.ContainsFunc(j.moves, func(m decide.Move) bool {
		return m.Action != decide.Nothing && m.Action != decide.Failed && (m.Action != decide.Keep || m.Repair) || m.Private.Moves()
	}) {
		return 1
	}
	return 0
}

// work reports whether the plan changes or publishes anything.
func (j *job) work() bool {
	return slices.ContainsFunc(j.moves, func(m decide.Move) bool {
		return m.Action != decide.Nothing && m.Action != decide.Failed || m.Private.Moves()
	})
}

// schedule observes every role at once, plans each, and carries out the
// plans that change or publish something, Workers at a time.
func (r *run) schedule(ctx context.Context, add func(Decision, error)) {
	for _, n := range slices.Sorted(maps.Keys(r.cfg.Roles)) {
		if err := notYet(n, r.cfg.Roles[n]); err != nil {
			add(Decision{Role: n, Action: "failed", Reason: "not served by the controller yet"}, err)
		}
	}
	roles := r.roles()
	fleet, err := r.obs.Fleet(ctx, roles)
	if err != nil {
		add(Decision{Action: "failed", Reason: fmt.Sprintf("could not observe the %d roles", len(roles))}, err)
		return
	}
	r.table = fleet.Table
	var jobs, busy []*job
	publishing := map[string]*config.Role{}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		j := &job{role: fleet.Roles[name]}
		if j.role == nil {
			j.role = &observe.Role{Name: name, Spec: roles[name], Err: errors.New("not observed")}
		}
		j.moves = decide.Plan(j.role.Observed(), j.s)
		jobs = append(jobs, j)
		if j.work() {
			busy = append(busy, j)
			publishing[name] = roles[name]
		}
	}
	r.pub.Prepare(ctx, publishing)
	r.workOn(ctx, busy)
	for _, j := range jobs {
		if !j.work() {
			r.carryOut(ctx, j)
		}
		for i, d := range j.out {
			add(d, j.errs[i])
		}
	}
}

// workOn carries out the jobs, Workers at once: the ones that move an
// EIP first, then the ones that only publish. Each job gets its share of
// the time ctx has left when it starts: that time times Workers over the
// jobs of its kind not finished yet, at least minShare, so that a role
// that cannot be served (a call throttled until its deadline, a step that
// waits) holds up no other past its share.
func (r *run) workOn(ctx context.Context, jobs []*job) {
	workers := cmp.Or(r.c.Workers, DefaultWorkers)
	slices.SortStableFunc(jobs, func(a, b *job) int { return cmp.Compare(b.moving(), a.moving()) })
	var unfinished [2]atomic.Int64 // keeping, moving
	for _, j := range jobs {
		unfinished[j.moving()].Add(1)
	}
	next := make(chan *job)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Go(func() {
			for j := range next {
				jctx, cancel := ctx, context.CancelFunc(func() {})
				if dl, ok := ctx.Deadline(); ok {
					left := time.Until(dl)
					share := left * time.Duration(workers) / time.Duration(max(unfinished[j.moving()].Load(), int64(workers)))
					jctx, cancel = context.WithTimeout(ctx, max(share, min(left, minShare)))
				}
				r.carryOut(jctx, j)
				cancel()
				unfinished[j.moving()].Add(-1)
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
}

// minShare is the least time a role's work gets when the invocation has
// it: a move (two reads, the two calls of the compare-and-swap, a read
// back) and its publication, throttled a few times. (A variable for the
// tests.)
var minShare = 20 * time.Second

// forSubject plans the role of the event's instance, found by its
// eipclaim:role tag, read now.
func (r *run) forSubject(ctx context.Context, s decide.Situation, add func(Decision, error)) {
	d := Decision{Instance: s.Subject, State: s.State}
	role, err := r.obs.RoleOf(ctx, s.Subject)
	if err != nil {
		add(d, err)
		return
	}
	if role == "" {
		// A terminated instance long gone, or one of no role: the schedule
		// repairs what its EIP needs.
		d.Action, d.Reason = "ignored", "instance "+s.Subject+" has no "+TagRole+" tag (or no longer exists): it is no candidate of any role"
		add(d, nil)
		return
	}
	spec := r.cfg.Roles[role]
	if spec == nil {
		d.Role, d.Action, d.Reason = role, "ignored", "instance "+s.Subject+" is tagged "+TagRole+"="+role+", a role the configuration does not define: add it to the roles table or fix the tag"
		add(d, nil)
		return
	}
	if err := notYet(role, spec); err != nil {
		d.Role, d.Action, d.Reason = role, "failed", "not served by the controller yet"
		add(d, err)
		return
	}
	one := map[string]*config.Role{role: spec}
	fleet, err := r.obs.Fleet(ctx, one)
	if err != nil {
		d.Role = role
		add(d, err)
		return
	}
	o := fleet.Roles[role]
	r.table = fleet.Table
	if heldUpBy(o, s) {
		// EC2's event says the holder is stopping or stopped, the read says
		// it serves: the read may be older than the event (EC2's eventual
		// consistency). The API decides, once it has caught up.
		if o, err = r.confirmDown(ctx, role, spec, s); err != nil {
			d.Role = role
			add(d, err)
			return
		}
	}
	j := &job{role: o, s: s, moves: decide.Plan(o.Observed(), s)}
	r.carryOut(ctx, j)
	for i, d := range j.out {
		d.Instance, d.State = s.Subject, s.State
		add(d, j.errs[i])
	}
}

// heldUpBy reports whether the event says an instance is stopping or
// stopped that the observation shows holding an EIP or the private address
// of the role and not down.
func heldUpBy(o *observe.Role, s decide.Situation) bool {
	if o == nil || s.Subject == "" || !decide.Stopped(s.State) {
		return false
	}
	if p := o.Private; p != nil && p.Holder.Instance == s.Subject && !decide.Judge(p.Holder).Down {
		return true
	}
	if v := o.Overlay; v != nil && v.Holder.Instance == s.Subject && !decide.Judge(v.Holder).Down {
		return true
	}
	return slices.ContainsFunc(o.Addresses, func(a observe.Address) bool {
		return a.Holder.Instance == s.Subject && !decide.Judge(a.Holder).Down
	})
}

// eventConfirm bounds how long the holder's health is read again when an
// event says it is down and the API does not show it yet.
const eventConfirm = 10 * time.Second

// confirmDown observes the role again, with backoff, until the API shows
// the holder the event says is stopping or stopped down too, for at most
// eventConfirm: EC2 documents that a read after a change may show the
// state before it. It returns the last observation: the holder still up
// when the API never showed the change (an event delivered late, the
// instance started again since: EventBridge may deliver an event late or
// twice), and the plan is then made on it.
func (r *run) confirmDown(ctx context.Context, role string, spec *config.Role, s decide.Situation) (*observe.Role, error) {
	var o *observe.Role
	cctx, cancel := context.WithTimeout(ctx, eventConfirm)
	defer cancel()
	err := r.c.retrier().Do(cctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		fleet, err := r.obs.Fleet(ctx, map[string]*config.Role{role: spec})
		if err != nil {
			return err
		}
		if o = fleet.Roles[role]; heldUpBy(o, s) {
			return retry.NotVisibleYet("holder " + s.Subject + " serves in the API, " + s.State + " in EC2's event")
		}
		return nil
	})
	if err != nil && (ctx.Err() != nil || o == nil) {
		return nil, err
	}
	if err != nil {
		r.c.log().Info("the event says the holder is down, the API still says otherwise: deciding on the API's answer", "role", role, "holder", s.Subject, "error", err)
	}
	return o, nil
}

// carryOut carries out a role's moves in order (a pool's releases before
// its claims), each one decision.
func (r *run) carryOut(ctx context.Context, j *job) {
	for _, m := range j.moves {
		d, err := r.do(ctx, j.role, m)
		j.out = append(j.out, d)
		j.errs = append(j.errs, err)
	}
}

// do carries out one move.
func (r *run) do(ctx context.Context, o *observe.Role, m decide.Move) (Decision, error) {
	d := Decision{Role: o.Name, Reason: m.Why}
	switch m.Action {
	case decide.Failed:
		d.Action = "failed"
		err := fmt.Errorf("role %s: %s", o.Name, m.Why)
		if o.Err != nil {
			err = fmt.Errorf("role %s: %w", o.Name, o.Err)
		}
		if errors.Is(o.Err, observe.ErrNotFound) {
			err = exitcode.With(exitcode.Usage, err)
		}
		return d, err
	case decide.Nothing:
		if p := m.Private; p.Moves() {
			// The EIP stays on its healthy holder (an event about
			// another instance); the private address joins it.
			d.Reason = p.Why
			return r.step(ctx, d, o, p.Candidate, false, "", p.Why, p.Force)
		}
		d.Action, d.Candidate = "nothing to do", m.Candidate
		return d, nil
	case decide.Release:
		req := failover.Request{Role: o.Name, Spec: o.Spec}
		if o.Spec.Overlay != nil {
			// The overlay's release marks its entry free in the role table.
			var err error
			if req.Publishers, err = r.pub.Publishers(o.Name, o.Spec); err != nil {
				return d, err
			}
		}
		msg, err := r.mover.Release(ctx, m.Holder, req)
		if err != nil {
			return d, err
		}
		d.Action, d.Reason = "released", m.Why+": "+msg
		return d, nil
	case decide.Keep:
		if p := m.Private; p.Moves() {
			// The EIP stays; the private address joins it (or its tags
			// are repaired).
			return r.step(ctx, d, o, m.Candidate, false, "", p.Why, p.Force)
		}
		if !m.Repair {
			return r.keep(ctx, d, o, m)
		}
		return r.step(ctx, d, o, m.Candidate, false, "", "", false)
	case decide.HandOver:
		return r.step(ctx, d, o, m.Candidate, true, "handed over", m.Why, false)
	}
	return r.step(ctx, d, o, m.Candidate, false, "", m.Why, m.Private != nil && m.Private.Force) // Claim, TakeOver
}

// keep publishes where the role's addresses are, as observed: held by a
// healthy holder whose tags are right (no claim, no change). A role's
// private address is published with its EIP when it is on the EIP's
// holder (the plan keeps it there), alone when the role has no EIP.
func (r *run) keep(ctx context.Context, d Decision, o *observe.Role, m decide.Move) (Decision, error) {
	var held *claim.Result
	if o.Spec.HasEIP() {
		i := slices.IndexFunc(o.Addresses, func(a observe.Address) bool { return a.AllocationID == m.AllocationID })
		if i < 0 {
			return d, fmt.Errorf("role %s: EIP %s not in the observation", o.Name, m.AllocationID)
		}
		a := o.Addresses[i]
		held = &claim.Result{Role: o.Name, AllocationID: a.AllocationID, PublicIP: a.PublicIP, AssociationID: a.AssociationID,
			InstanceID: a.Holder.Instance, ENI: a.ENI, PrivateIP: a.PrivateIP, Action: "already held", Epoch: a.Epoch}
	}
	if p := o.Private; p != nil && p.ENI != "" && p.Holder.Instance == m.Candidate {
		if held == nil {
			held = &claim.Result{Role: o.Name, InstanceID: p.Holder.Instance, ENI: p.ENI, Action: "already held", Epoch: p.Epoch}
		}
		held.PrivateAddress, held.PrivateAddressENI = p.Address, p.ENI
	}
	if v := o.Overlay; v != nil && v.ENI != "" && v.Holder.Instance == m.Candidate {
		if held == nil {
			held = &claim.Result{Role: o.Name, InstanceID: v.Holder.Instance, ENI: v.ENI, Action: "already held", Epoch: v.Entry.Epoch}
		}
		held.OverlayAddress = v.Address
	}
	if held == nil {
		return d, fmt.Errorf("role %s: the %s is not on %s in the observation", o.Name, what(o.Spec), m.Candidate)
	}
	d.Candidate = m.Candidate
	pubs, err := r.pub.Publishers(o.Name, o.Spec)
	if err != nil {
		return d, err
	}
	// The role table read once for the run: the entry is compared on it.
	publish.Seed(pubs, r.table)
	out, err := r.mover.Keep(ctx, failover.Request{Role: o.Name, Spec: o.Spec, Publishers: pubs}, held)
	d.Outcome, d.Action = out, "already held"
	if err != nil {
		return d, exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: held by %s, but DNS publication failed: %w", o.Name, held.InstanceID, err))
	}
	return d, nil
}

// step runs the failover step on behalf of instance; forcePrivate takes
// the role's private address by force (to join the EIP).
func (r *run) step(ctx context.Context, d Decision, o *observe.Role, instance string, force bool, action, why string, forcePrivate bool) (Decision, error) {
	d.Candidate = instance
	var pubs []publish.Publisher
	if o.Spec.Pool == nil {
		// A pool's names are its instances' own (each instance publishes
		// the EIP it holds): the controller publishes none.
		var err error
		if pubs, err = r.pub.Publishers(o.Name, o.Spec); err != nil {
			return d, err
		}
	}
	out, err := r.mover.Step(ctx, instance, failover.Request{Role: o.Name, Spec: o.Spec, Publishers: pubs, Force: force, ForcePrivate: forcePrivate})
	d.Outcome = out
	switch {
	case errors.Is(err, claim.ErrRefused):
		d.Action, d.Reason = "refused", "another instance took the "+what(o.Spec)+" first, and it is healthy"
		return d, err
	case out == nil:
		return d, err
	}
	d.Action, d.Reason = out.Action, why
	if action != "" && out.Action != "already held" {
		d.Action = action
	}
	if d.Reason == "" || out.Action == "already held" {
		d.Reason = out.Reason
		if out.Action == "already held" {
			d.Reason = "held by " + instance + "; DNS kept true"
			if len(out.OverlayRepaired) > 0 {
				d.Reason += "; the overlay address's routes in " + strings.Join(out.OverlayRepaired, ", ") + " repaired"
			}
		}
	}
	if pa := cmp.Or(out.PrivateAddressAction, out.OverlayAction); out.Action == "already held" && pa != "" && pa != "already held" && o.Spec.HasEIP() {
		// The EIP stayed; its private-kind address moved to join it.
		d.Action, d.Reason = pa, "the EIP is held by "+instance+"; "+why
	}
	if err != nil {
		return d, exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: claimed for %s, but DNS publication failed: %w", d.Role, instance, err))
	}
	return d, nil
}

// engineMover moves with the claim engine and the failover step.
type engineMover struct{ c *Controller }

func (m engineMover) failoverStep(instance string) *failover.Step {
	return &failover.Step{Engine: m.c.engine(instance), Region: m.c.Region, Log: m.c.log()}
}

func (m engineMover) Step(ctx context.Context, instance string, req failover.Request) (*failover.Outcome, error) {
	return m.failoverStep(instance).Run(ctx, req)
}

func (m engineMover) Keep(ctx context.Context, req failover.Request, held *claim.Result) (*failover.Outcome, error) {
	return m.failoverStep(held.InstanceID).Keep(ctx, req, held)
}

// Release frees the role's EIP and its private-kind address from
// instance (each only where instance holds it): an overlay's with the
// role table of req's publishers.
func (m engineMover) Release(ctx context.Context, instance string, req failover.Request) (string, error) {
	role, spec := req.Role, req.Spec
	var done []string
	if spec.HasEIP() {
		msg, err := m.c.engine(instance).Release(ctx, role, spec, false)
		if err != nil {
			return "", err
		}
		done = append(done, msg)
	}
	if spec.PrivateAddress != "" {
		msg, err := m.c.engine(instance).ReleaseSecondary(ctx, role, spec, false)
		if err != nil {
			return strings.Join(done, "; "), fmt.Errorf("release the private address of role %s from %s: %w", role, instance, err)
		}
		done = append(done, msg)
	}
	if spec.Overlay != nil {
		var tbl claim.RoleTable
		if st := publish.Table(req.Publishers); st != nil {
			tbl = st
		}
		msg, err := m.c.engine(instance).ReleaseOverlay(ctx, role, spec, tbl, false)
		if err != nil {
			return strings.Join(done, "; "), fmt.Errorf("release the overlay address of role %s from %s: %w", role, instance, err)
		}
		done = append(done, msg)
	}
	return strings.Join(done, "; "), nil
}

// what names a role's address in reasons: "EIP", or "private address" or
// "overlay address" for a role without one.
func what(spec *config.Role) string {
	switch {
	case spec.HasEIP():
		return "EIP"
	case spec.Overlay != nil:
		return "overlay address"
	}
	return "private address"
}

// awsPublishing builds the roles' publishers on the controller's clients,
// each Route 53 zone read once per invocation.
type awsPublishing struct {
	c     *Controller
	cfg   *config.Config
	zones *publish.Zones
}

func (p *awsPublishing) Prepare(ctx context.Context, roles map[string]*config.Role) {
	var cs []*config.Route53
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		if spec := roles[name]; spec.Pool == nil && spec.DNS != nil && spec.DNS.Route53 != nil {
			cs = append(cs, spec.DNS.Route53)
		}
	}
	if len(cs) == 0 {
		return
	}
	rp := &publish.Route53{API: p.c.Route53, Log: p.c.log(), Retry: p.c.retrier().Do}
	for _, err := range p.zones.Load(ctx, rp, cs) {
		p.c.log().Warn("could not read a Route 53 zone whole: its names are read one by one", "error", err)
	}
}

func (p *awsPublishing) Publishers(role string, spec *config.Role) ([]publish.Publisher, error) {
	deps := publish.Deps{Route53: p.c.Route53, Log: p.c.log(), Retry: p.c.retrier().Do, Zones: p.zones}
	if p.cfg.Repository != "" && p.c.S3 != nil {
		// The role table is written like every other publication.
		st, err := table.NewStore(p.c.S3, p.cfg.Repository, p.c.retrier().Do, p.c.log())
		if err != nil {
			return nil, err
		}
		deps.Table = st
	}
	return publish.For(role, spec, deps), nil
}
