package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/observe"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/table"
)

// The unit tests of the controller's decisions: an in-memory fleet
// (memObserver), mover (memMover) and publishing (memPublishing). The
// integration tests (lambda_test.go) run the same code on moto and the
// Lambda runtime emulator.

// memObserver serves a fleet kept in memory. views, when set, are the
// fleets of successive observations (the last one repeated).
type memObserver struct {
	mu     sync.Mutex
	roles  map[string]*observe.Role
	views  []map[string]*observe.Role
	tags   map[string]string // instance -> its eipclaim:role
	fleets int               // observations made
	asked  []int             // roles asked at each observation
	err    error
}

var _ Observer = (*memObserver)(nil)

func (m *memObserver) Fleet(ctx context.Context, roles map[string]*config.Role) (*observe.Fleet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fleets++
	m.asked = append(m.asked, len(roles))
	if m.err != nil {
		return nil, m.err
	}
	src := m.roles
	if len(m.views) > 0 {
		src = m.views[min(m.fleets, len(m.views))-1]
	}
	f := &observe.Fleet{Roles: map[string]*observe.Role{}}
	for name, spec := range roles {
		r, ok := src[name]
		if !ok {
			r = &observe.Role{Err: fmt.Errorf("EIP: %w", observe.ErrNotFound)}
		}
		c := *r
		c.Name, c.Spec = name, spec
		f.Roles[name] = &c
	}
	return f, nil
}

func (m *memObserver) RoleOf(ctx context.Context, instance string) (string, error) {
	return m.tags[instance], nil
}

// memMover records what it is asked and answers as the step would; a role
// in block waits for its context to end.
type memMover struct {
	mu       sync.Mutex
	calls    []string
	block    map[string]bool
	refuse   map[string]bool
	failDNS  map[string]bool
	running  int
	maxAtOne int
}

var _ Mover = (*memMover)(nil)

func (m *memMover) record(s string) func() {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.running++
	m.maxAtOne = max(m.maxAtOne, m.running)
	m.mu.Unlock()
	return func() { m.mu.Lock(); m.running--; m.mu.Unlock() }
}

func (m *memMover) Step(ctx context.Context, instance string, req failover.Request) (*failover.Outcome, error) {
	defer m.record(fmt.Sprintf("step %s for %s force=%v pubs=%d", req.Role, instance, req.Force, len(req.Publishers)))()
	if m.block[req.Role] {
		<-ctx.Done()
		return nil, fmt.Errorf("associate for role %s: %w", req.Role, ctx.Err())
	}
	time.Sleep(time.Millisecond)
	if m.refuse[req.Role] {
		return nil, exitcode.With(exitcode.Refused, fmt.Errorf("%w: held by i-other", claim.ErrRefused))
	}
	o := &failover.Outcome{Role: req.Role, Action: "claimed", Reason: "the EIP was free", InstanceID: instance, Epoch: 2}
	if req.Force {
		o.Action = "taken over"
	}
	if m.failDNS[req.Role] {
		return o, errors.New("route53: throttled")
	}
	return o, nil
}

func (m *memMover) Keep(ctx context.Context, req failover.Request, held *claim.Result) (*failover.Outcome, error) {
	defer m.record(fmt.Sprintf("keep %s on %s epoch %d pubs=%d", req.Role, held.InstanceID, held.Epoch, len(req.Publishers)))()
	time.Sleep(time.Millisecond)
	var err error
	if m.failDNS[req.Role] {
		err = errors.New("route53: throttled")
	}
	return &failover.Outcome{Role: req.Role, Action: "already held", InstanceID: held.InstanceID, Epoch: held.Epoch}, err
}

func (m *memMover) Release(ctx context.Context, instance string, req failover.Request) (string, error) {
	call := fmt.Sprintf("release %s from %s", req.Role, instance)
	if len(req.Publishers) > 0 {
		call += fmt.Sprintf(" pubs=%d", len(req.Publishers))
	}
	defer m.record(call)()
	return "released 203.0.113.1 from eni-" + instance, nil
}

func (m *memMover) sorted() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(slices.Values(m.calls))
}

// memPublishing gives each role one in-memory publisher.
type memPublishing struct {
	mu       sync.Mutex
	prepared []map[string]*config.Role
}

func (p *memPublishing) Prepare(ctx context.Context, roles map[string]*config.Role) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared = append(p.prepared, roles)
}

func (p *memPublishing) Publishers(role string, spec *config.Role) ([]publish.Publisher, error) {
	if spec.DNS == nil {
		return nil, nil
	}
	return []publish.Publisher{memPublisher{name: role}}, nil
}

type memPublisher struct{ name string }

func (p memPublisher) Kind() string { return "mem" }
func (p memPublisher) Name() string { return p.name }
func (p memPublisher) Publish(context.Context, placement.Placement) (publish.Result, error) {
	return publish.Result{}, nil
}
func (p memPublisher) Check(context.Context) (string, error)   { return "", nil }
func (p memPublisher) Current(context.Context) (string, error) { return "", nil }

// The in-memory fleet's pieces.
func healthy(id string) decide.Holder {
	return decide.Holder{Instance: id, State: "running", InstanceStatus: "ok", SystemStatus: "ok"}
}

func candidate(id string, minute int) decide.Candidate {
	return decide.Candidate{Instance: id, State: "running", InstanceStatus: "ok", SystemStatus: "ok", LaunchTime: time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)}
}

func heldBy(n int, h decide.Holder) observe.Address {
	return observe.Address{AllocationID: fmt.Sprintf("eipalloc-%d", n), PublicIP: fmt.Sprintf("203.0.113.%d", n), ENI: "eni-" + h.Instance,
		AssociationID: fmt.Sprintf("eipassoc-%d", n), PrivateIP: "10.0.0.1", Holder: h, Epoch: 1,
		Tags: map[string]string{claim.TagHolder: h.Instance, claim.TagEpoch: "1"}}
}

func freeAddress(n int) observe.Address {
	return observe.Address{AllocationID: fmt.Sprintf("eipalloc-%d", n), PublicIP: fmt.Sprintf("203.0.113.%d", n), Tags: map[string]string{}}
}

func roleSpec(n int, policy config.Takeover) *config.Role {
	return &config.Role{AllocationID: fmt.Sprintf("eipalloc-%d", n), Takeover: policy,
		DNS: &config.DNS{Route53: &config.Route53{ZoneID: "Z1", Name: fmt.Sprintf("r%d.example.internal", n)}}}
}

type world struct {
	cfg *config.Config
	obs *memObserver
	mov *memMover
	pub *memPublishing
	c   *Controller
}

func newWorld() *world {
	w := &world{cfg: &config.Config{Roles: map[string]*config.Role{}}, obs: &memObserver{roles: map[string]*observe.Role{}, tags: map[string]string{}},
		mov: &memMover{block: map[string]bool{}, refuse: map[string]bool{}, failDNS: map[string]bool{}}, pub: &memPublishing{}}
	w.c = &Controller{Observe: w.obs, Move: w.mov, Publish: func(*config.Config) Publishing { return w.pub },
		Config: func(context.Context) (*config.Config, error) { return w.cfg, nil }, Clock: &fastClock{now: time.Now()}}
	return w
}

// role adds a role with its observation; candidates are tagged with it.
func (w *world) role(name string, spec *config.Role, addrs []observe.Address, cands ...decide.Candidate) {
	w.cfg.Roles[name] = spec
	w.obs.roles[name] = &observe.Role{Addresses: addrs, Candidates: cands}
	for _, c := range cands {
		w.obs.tags[c.Instance] = name
	}
}

// fastClock sleeps no time: the retrier's backoff passes at once (its
// time runs ahead of the real deadline, which ends the retries).
type fastClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fastClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fastClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

const scheduleEvent = `{"id":"ev-1","source":"aws.events","detail-type":"Scheduled Event","detail":{}}`

func stateEvent(id, state string) string {
	return fmt.Sprintf(`{"id":"ev-2","source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"instance-id":%q,"state":%q}}`, id, state)
}

func actions(res *Result) string {
	var s []string
	for _, d := range res.Decisions {
		s = append(s, d.Role+": "+d.Action)
	}
	return strings.Join(s, "; ")
}

// A steady fleet: one observation, one Prepare of the publications, one
// Keep per role (no step: nothing moves), every decision "already held".
func TestScheduleSteady(t *testing.T) {
	w := newWorld()
	for i := range 40 {
		h := fmt.Sprintf("i-h%02d", i)
		w.role(fmt.Sprintf("r%02d", i), roleSpec(i, ""), []observe.Address{heldBy(i, healthy(h))}, candidate(h, 0), candidate(fmt.Sprintf("i-s%02d", i), 1))
	}
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err != nil {
		t.Fatal(err)
	}
	if w.obs.fleets != 1 || w.obs.asked[0] != 40 {
		t.Errorf("%d observations (%v roles), want one of 40", w.obs.fleets, w.obs.asked)
	}
	calls := w.mov.sorted()
	if len(calls) != 40 || !strings.HasPrefix(calls[0], "keep r00 on i-h00 epoch 1 pubs=1") {
		t.Errorf("mover calls %q, want 40 keeps", calls)
	}
	for _, c := range calls {
		if !strings.HasPrefix(c, "keep ") {
			t.Errorf("a steady run called %q", c)
		}
	}
	if len(w.pub.prepared) != 1 || len(w.pub.prepared[0]) != 40 {
		t.Errorf("Prepare called %d times, want once for 40 roles", len(w.pub.prepared))
	}
	if len(res.Decisions) != 40 {
		t.Fatalf("%d decisions, want 40", len(res.Decisions))
	}
	for _, d := range res.Decisions {
		if d.Action != "already held" || d.Event != "schedule" || d.Candidate == "" || !strings.Contains(d.Reason, "healthy") {
			t.Errorf("decision %+v", d)
		}
	}
	if w.mov.maxAtOne < 2 {
		t.Errorf("at most %d roles worked on at once, want them concurrent", w.mov.maxAtOne)
	}
}

// A mixed fleet: each role planned and carried out as its plan says; a
// missing EIP is failed at once (exit 2) and the others are served; the
// invocation's error is the first failure.
func TestScheduleMixed(t *testing.T) {
	w := newWorld()
	w.role("a-kept", roleSpec(1, ""), []observe.Address{heldBy(1, healthy("i-1"))}, candidate("i-1", 0))
	w.role("b-free", roleSpec(2, ""), []observe.Address{freeAddress(2)}, candidate("i-2b", 2), candidate("i-2a", 1))
	w.role("c-down", roleSpec(3, ""), []observe.Address{heldBy(3, decide.Holder{Instance: "i-3", State: "stopped"})}, candidate("i-3s", 0))
	w.role("d-never", roleSpec(4, config.TakeoverNever), []observe.Address{heldBy(4, decide.Holder{Instance: "i-4", State: "stopped"})}, candidate("i-4s", 0))
	w.cfg.Roles["e-missing"] = roleSpec(5, "") // not in the fleet: not found
	w.role("f-alone", roleSpec(6, ""), []observe.Address{freeAddress(6)})
	w.role("g-untagged", roleSpec(7, ""), []observe.Address{func() observe.Address { a := heldBy(7, healthy("i-7")); a.Tags[claim.TagHolder] = "i-old"; return a }()})
	w.role("h-refused", roleSpec(8, ""), []observe.Address{freeAddress(8)}, candidate("i-8", 0))
	w.mov.refuse["h-refused"] = true
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err == nil || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "e-missing") {
		t.Errorf("error %v (exit %d), want the missing EIP's, exit 2", err, exitcode.Of(err))
	}
	want := "a-kept: already held; b-free: claimed; c-down: claimed; d-never: nothing to do; e-missing: failed; f-alone: nothing to do; g-untagged: claimed; h-refused: refused"
	if got := actions(res); got != want {
		t.Errorf("decisions\n  %s\nwant\n  %s", got, want)
	}
	wantCalls := []string{
		"keep a-kept on i-1 epoch 1 pubs=1",
		"step b-free for i-2a force=false pubs=1",
		"step c-down for i-3s force=false pubs=1",
		"step g-untagged for i-7 force=false pubs=1",
		"step h-refused for i-8 force=false pubs=1",
	}
	if got := w.mov.sorted(); !slices.Equal(got, wantCalls) {
		t.Errorf("mover calls\n  %q\nwant\n  %q", got, wantCalls)
	}
	if d := res.Decisions[2]; d.Reason != "holder i-3 is stopped" || d.Candidate != "i-3s" {
		t.Errorf("c-down decision %+v", d)
	}
	if d := res.Decisions[4]; !strings.Contains(d.Error, "not found") {
		t.Errorf("e-missing decision %+v", d)
	}
}

// One role that cannot be served (its step waits until its deadline)
// delays none of the others past its share of the invocation: with one
// worker and r0 first, r0 gets a sixth of the time left, then the others
// run.
func TestScheduleStuckRoleBounded(t *testing.T) {
	defer func(m time.Duration) { minShare = m }(minShare)
	minShare = 100 * time.Millisecond
	w := newWorld()
	w.c.Workers = 1
	for i := range 6 {
		w.role(fmt.Sprintf("r%d", i), roleSpec(i, ""), []observe.Address{freeAddress(i)}, candidate(fmt.Sprintf("i-%d", i), 0))
	}
	w.mov.block["r0"] = true
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Second)
	defer cancel()
	began := time.Now()
	res, err := w.c.Handle(ctx, []byte(scheduleEvent))
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "r0") || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error %v, want r0's deadline", err)
	}
	if got := actions(res); got != "r0: failed; r1: claimed; r2: claimed; r3: claimed; r4: claimed; r5: claimed" {
		t.Errorf("decisions %s", got)
	}
	// r0's share: a sixth of the time left after the budget's margin.
	if took < 500*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %s, want about a sixth of 6s", took)
	}
}

// A failed observation fails the run, with one decision saying so.
func TestScheduleObserveFails(t *testing.T) {
	w := newWorld()
	w.role("r1", roleSpec(1, ""), []observe.Address{freeAddress(1)})
	w.obs.err = errors.New("describe the EIPs: RequestLimitExceeded")
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err == nil || len(res.Decisions) != 1 || res.Decisions[0].Action != "failed" || len(w.mov.calls) != 0 {
		t.Errorf("Handle = %+v, %v", res, err)
	}
}

// State-change events: the event's role alone observed; the event ahead of
// the API confirmed by observing again; an instance of no role ignored.
func TestStateChange(t *testing.T) {
	stopped := decide.Holder{Instance: "i-h", State: "stopped"}
	tests := []struct {
		name    string
		views   [][]observe.Address // successive observations of db's EIP
		event   string
		want    string
		calls   []string
		fleets  int
		reason  string
		wantErr bool
	}{
		{"holder stopped", [][]observe.Address{{heldBy(1, stopped)}}, stateEvent("i-h", "stopped"),
			"db: claimed", []string{"step db for i-s force=false pubs=1"}, 1, "holder i-h is stopped", false},
		{"holder stopped, the API catching up", [][]observe.Address{{heldBy(1, healthy("i-h"))}, {heldBy(1, healthy("i-h"))}, {heldBy(1, stopped)}}, stateEvent("i-h", "stopping"),
			"db: claimed", []string{"step db for i-s force=false pubs=1"}, 3, "holder i-h is stopped", false},
		{"a late event: the holder runs again", [][]observe.Address{{heldBy(1, healthy("i-h"))}}, stateEvent("i-h", "stopped"),
			"db: nothing to do", nil, 0, "which is healthy", false},
		{"a candidate running, the EIP free", [][]observe.Address{{freeAddress(1)}}, stateEvent("i-s", "running"),
			"db: claimed", []string{"step db for i-s force=false pubs=1"}, 1, "the EIP was free", false},
		{"a candidate running, healthy holder", [][]observe.Address{{heldBy(1, healthy("i-h"))}}, stateEvent("i-s", "running"),
			"db: nothing to do", nil, 1, "which is healthy", false},
		{"an instance of no role", [][]observe.Address{{freeAddress(1)}}, stateEvent("i-x", "running"),
			": ignored", nil, 0, "no eipclaim:role tag", false},
		{"an instance of an unknown role", [][]observe.Address{{freeAddress(1)}}, stateEvent("i-y", "running"),
			"web: ignored", nil, 0, "a role the configuration does not define", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.role("db", roleSpec(1, ""), tt.views[0], candidate("i-h", 0), candidate("i-s", 1))
			w.role("other", roleSpec(2, ""), []observe.Address{freeAddress(2)}, candidate("i-o", 0))
			w.obs.tags["i-y"] = "web"
			for _, v := range tt.views {
				w.obs.views = append(w.obs.views, map[string]*observe.Role{"db": {Addresses: v, Candidates: w.obs.roles["db"].Candidates}})
			}
			res, err := w.c.Handle(t.Context(), []byte(tt.event))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v", err)
			}
			if got := actions(res); got != tt.want {
				t.Errorf("decisions %s, want %s", got, tt.want)
			}
			if d := res.Decisions[0]; !strings.Contains(d.Reason, tt.reason) || d.Event != "state-change" || d.Instance == "" || d.State == "" {
				t.Errorf("decision %+v, want the reason %q", d, tt.reason)
			}
			if got := w.mov.sorted(); !slices.Equal(got, tt.calls) {
				t.Errorf("mover calls %q, want %q", got, tt.calls)
			}
			if tt.fleets > 0 && w.obs.fleets != tt.fleets {
				t.Errorf("%d observations, want %d", w.obs.fleets, tt.fleets)
			}
			for _, n := range w.obs.asked {
				if n != 1 {
					t.Errorf("an event observed %d roles, want its own alone", n)
				}
			}
		})
	}
}

// Lifecycle events: a terminating holder's EIP handed over by force, or
// released when no candidate is left; a launching instance claims a free
// EIP. (The lifecycle completion is proven on the emulators.)
func TestLifecycle(t *testing.T) {
	term := func(id string) string {
		return fmt.Sprintf(`{"id":"ev-3","detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{"EC2InstanceId":%q,"AutoScalingGroupName":"g","LifecycleHookName":"h","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}`, id)
	}
	launch := func(id string) string {
		return fmt.Sprintf(`{"id":"ev-4","detail-type":"EC2 Instance-launch Lifecycle Action","detail":{"EC2InstanceId":%q,"AutoScalingGroupName":"g","LifecycleHookName":"h","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING"}}`, id)
	}
	initializing := candidate("i-n", 5)
	initializing.InstanceStatus, initializing.SystemStatus = "initializing", "initializing"
	tests := []struct {
		name  string
		addr  observe.Address
		cands []decide.Candidate
		event string
		want  string
		calls []string
	}{
		{"terminating holder handed over", heldBy(1, healthy("i-h")), []decide.Candidate{candidate("i-h", 0), candidate("i-s", 1)}, term("i-h"),
			"db: handed over", []string{"step db for i-s force=true pubs=1"}},
		{"terminating holder, no other: released", heldBy(1, healthy("i-h")), []decide.Candidate{candidate("i-h", 0)}, term("i-h"),
			"db: released", []string{"release db from i-h"}},
		{"launching instance claims the free EIP", freeAddress(1), []decide.Candidate{candidate("i-s", 1), initializing}, launch("i-n"),
			"db: claimed", []string{"step db for i-n force=false pubs=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.c.AutoScaling = &memAutoScaling{}
			w.role("db", roleSpec(1, config.TakeoverNever), []observe.Address{tt.addr}, tt.cands...)
			res, err := w.c.Handle(t.Context(), []byte(tt.event))
			if err != nil {
				t.Fatal(err)
			}
			if got := actions(res); got != tt.want {
				t.Errorf("decisions %s, want %s", got, tt.want)
			}
			if got := w.mov.sorted(); !slices.Equal(got, tt.calls) {
				t.Errorf("mover calls %q, want %q", got, tt.calls)
			}
			if res.Decisions[0].Lifecycle != "completed: CONTINUE" {
				t.Errorf("lifecycle %q", res.Decisions[0].Lifecycle)
			}
		})
	}
}

// Pool roles: the EIP of a down holder released, the free EIPs claimed by
// the candidates that hold none; no publishers (a pool's names are its
// instances').
func TestSchedulePool(t *testing.T) {
	w := newWorld()
	spec := &config.Role{Pool: &config.Pool{Tags: map[string]string{"eip-pool": "web"}},
		DNS: &config.DNS{Route53: &config.Route53{ZoneID: "Z1", Name: "web.example.internal"}}}
	w.role("web", spec, []observe.Address{heldBy(1, healthy("i-a")), heldBy(2, decide.Holder{Instance: "i-b", State: "stopped"}), freeAddress(3)},
		candidate("i-a", 0), candidate("i-c", 2), candidate("i-d", 3), candidate("i-e", 4))
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res); got != "web: released; web: claimed; web: claimed; web: nothing to do" {
		t.Errorf("decisions %s", got)
	}
	want := []string{"release web from i-b", "step web for i-c force=false pubs=0", "step web for i-d force=false pubs=0"}
	if got := w.mov.calls; !slices.Equal(got, want) {
		t.Errorf("mover calls (in order) %q, want %q", got, want)
	}
	if len(w.pub.prepared) != 1 || len(w.pub.prepared[0]) != 1 {
		t.Errorf("prepared %v", w.pub.prepared)
	}
	if !strings.Contains(res.Decisions[3].Reason, "exhausted") || res.Decisions[3].Candidate != "i-e" {
		t.Errorf("the last decision %+v, want i-e waiting", res.Decisions[3])
	}
}

// A publication that fails after a claim is exit 5; a keep's too.
func TestPublicationFails(t *testing.T) {
	w := newWorld()
	w.role("a", roleSpec(1, ""), []observe.Address{heldBy(1, healthy("i-1"))}, candidate("i-1", 0))
	w.role("b", roleSpec(2, ""), []observe.Address{freeAddress(2)}, candidate("i-2", 0))
	w.mov.failDNS["a"], w.mov.failDNS["b"] = true, true
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if exitcode.Of(err) != exitcode.DNSFailed {
		t.Errorf("error %v (exit %d), want exit 5", err, exitcode.Of(err))
	}
	if got := actions(res); got != "a: already held; b: claimed" {
		t.Errorf("decisions %s", got)
	}
	for _, d := range res.Decisions {
		if d.Error == "" || d.Outcome == nil {
			t.Errorf("decision %+v, want the error and the outcome", d)
		}
	}
}

type memAutoScaling struct{ AutoScalingAPI }

func (memAutoScaling) CompleteLifecycleAction(context.Context, *autoscaling.CompleteLifecycleActionInput, ...func(*autoscaling.Options)) (*autoscaling.CompleteLifecycleActionOutput, error) {
	return &autoscaling.CompleteLifecycleActionOutput{}, nil
}

// A role with no address (neither an EIP nor a private-kind address) is
// not served: it is failed with exit 2, named, and the other roles are
// served.
func TestScheduleNoAddressNotYet(t *testing.T) {
	w := newWorld()
	w.role("a-kept", roleSpec(1, ""), []observe.Address{heldBy(1, healthy("i-1"))}, candidate("i-1", 0))
	w.cfg.Roles["b-other"] = &config.Role{}
	w.obs.tags["i-b"] = "b-other"
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "role b-other has no EIP, no private_address and no overlay") {
		t.Errorf("error %v (exit %d), want b-other's, exit 2", err, exitcode.Of(err))
	}
	if got := actions(res); !strings.Contains(got, "b-other: failed") || !strings.Contains(got, "a-kept: already held") {
		t.Errorf("decisions %s, want b-other failed and a-kept served", got)
	}
	if w.obs.asked[0] != 1 {
		t.Errorf("observed %d roles, want 1 (not b-other)", w.obs.asked[0])
	}
	res, err = w.c.Handle(t.Context(), []byte(stateEvent("i-b", "stopped")))
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(actions(res), "b-other: failed") {
		t.Errorf("state change of b-other's instance: %v (exit %d), %s; want failed, exit 2", err, exitcode.Of(err), actions(res))
	}
}

// privateOn is a role's private address 10.0.1.<n> on h's interface
// (tagged for the role), or free when h is the zero Holder.
func privateOn(role string, n int, h decide.Holder) *observe.Private {
	p := &observe.Private{Address: fmt.Sprintf("10.0.1.%d", n)}
	if h.Instance != "" {
		p.ENI, p.HolderIP, p.HolderTag, p.EpochTag, p.Epoch, p.Holder = "eni-"+h.Instance, "10.0.0.1", h.Instance, "3", 3, h
	}
	return p
}

// Roles with a private address: kept where it is (published with the
// private address), claimed when free, taken over from a stopped holder,
// moved to the EIP's holder when held apart from it (by force), released
// with the EIP from a terminating holder; the step gets ForcePrivate only
// for the move that joins the EIP.
func TestSchedulePrivateAddresses(t *testing.T) {
	w := newWorld()
	mov := &forceMover{memMover: w.mov}
	w.c.Move = mov
	only := func(n int) *config.Role {
		return &config.Role{PrivateAddress: fmt.Sprintf("10.0.1.%d", n), DNS: &config.DNS{Route53: &config.Route53{ZoneID: "Z1", Name: fmt.Sprintf("p%d.example.internal", n)}}}
	}
	withEIP := func(n int) *config.Role {
		s := roleSpec(n, "")
		s.PrivateAddress = fmt.Sprintf("10.0.1.%d", n)
		return s
	}
	add := func(name string, spec *config.Role, addrs []observe.Address, p *observe.Private, cands ...decide.Candidate) {
		w.role(name, spec, addrs, cands...)
		w.obs.roles[name].Private = p
	}
	stopped := decide.Holder{Instance: "i-c", State: "stopped"}
	add("a-kept", only(10), nil, privateOn("a-kept", 10, healthy("i-a")), candidate("i-a", 0), candidate("i-a2", 1))
	add("b-free", only(11), nil, privateOn("b-free", 11, decide.Holder{}), candidate("i-b", 0))
	add("c-down", only(12), nil, privateOn("c-down", 12, stopped), candidate("i-c", 0), candidate("i-c2", 1))
	add("d-both-kept", withEIP(13), []observe.Address{heldBy(13, healthy("i-d"))}, privateOn("d-both-kept", 13, healthy("i-d")), candidate("i-d", 0))
	add("e-split", withEIP(14), []observe.Address{heldBy(14, healthy("i-e"))}, privateOn("e-split", 14, healthy("i-e2")), candidate("i-e", 0), candidate("i-e2", 1))
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err != nil {
		t.Fatal(err, actions(res))
	}
	got := w.mov.sorted()
	wantSorted := []string{
		"keep a-kept on i-a epoch 3 pubs=1",
		"keep d-both-kept on i-d epoch 1 pubs=1",
		"step b-free for i-b force=false pubs=1",
		"step c-down for i-c2 force=false pubs=1",
		"step e-split for i-e force=false pubs=1",
	}
	if !slices.Equal(got, wantSorted) {
		t.Errorf("calls\n  %v\nwant\n  %v", got, wantSorted)
	}
	if !slices.Equal(mov.forcedPrivate, []string{"e-split"}) {
		t.Errorf("private addresses taken by force: %v, want e-split's only", mov.forcedPrivate)
	}
	if mov.kept["a-kept"] != "10.0.1.10 on eni-i-a" || mov.kept["d-both-kept"] != "10.0.1.13 on eni-i-d" {
		t.Errorf("kept placements %v: want the private addresses on their holders' interfaces", mov.kept)
	}
	// Auto Scaling terminates d's holder with no other candidate: both
	// addresses are released from it.
	w.mov.calls = nil
	w.c.AutoScaling = memAutoScaling{}
	res, err = w.c.Handle(t.Context(), []byte(`{"id":"ev-3","source":"aws.autoscaling","detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{"LifecycleActionToken":"t","AutoScalingGroupName":"g","LifecycleHookName":"h","EC2InstanceId":"i-d","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}`))
	if err != nil {
		t.Fatal(err, actions(res))
	}
	if got := w.mov.sorted(); !slices.Equal(got, []string{"release d-both-kept from i-d"}) {
		t.Errorf("terminating holder: %v, want the role released from i-d", got)
	}
}

// forceMover is a memMover that records the private addresses the step is
// asked to take by force and the private placement of each Keep.
type forceMover struct {
	*memMover
	forcedPrivate []string
	kept          map[string]string
	keptOverlay   map[string]string
}

func (m *forceMover) Step(ctx context.Context, instance string, req failover.Request) (*failover.Outcome, error) {
	if req.ForcePrivate {
		m.mu.Lock()
		m.forcedPrivate = append(m.forcedPrivate, req.Role)
		m.mu.Unlock()
	}
	return m.memMover.Step(ctx, instance, req)
}

func (m *forceMover) Keep(ctx context.Context, req failover.Request, held *claim.Result) (*failover.Outcome, error) {
	m.mu.Lock()
	if m.kept == nil {
		m.kept = map[string]string{}
	}
	m.kept[req.Role] = held.PrivateAddress + " on " + held.PrivateAddressENI
	if held.OverlayAddress != "" {
		if m.keptOverlay == nil {
			m.keptOverlay = map[string]string{}
		}
		m.keptOverlay[req.Role] = held.OverlayAddress + " via " + held.ENI
	}
	m.mu.Unlock()
	return m.memMover.Keep(ctx, req, held)
}

// overlayOn is a role's overlay address 192.168.100.<n> routed in two
// tables to h's interface, the role table's entry naming h (epoch 5), the
// tables in drift pointing at another interface; free when h is the zero
// Holder.
func overlayOn(n int, h decide.Holder, drift ...string) *observe.Overlay {
	v := &observe.Overlay{Address: fmt.Sprintf("192.168.100.%d", n)}
	for _, t := range []string{"rtb-1", "rtb-2"} {
		r := claim.TableRoute{RouteTable: t}
		if h.Instance != "" {
			r.ENI, r.Instance, r.Here = "eni-"+h.Instance, h.Instance, true
		}
		if slices.Contains(drift, t) {
			r.ENI, r.Instance, r.Here = "eni-other", "i-other", false
		}
		v.Routes = append(v.Routes, r)
	}
	if h.Instance != "" {
		v.Entry = table.Entry{Holder: h.Instance, Epoch: 5}
		v.Holder, v.ENI, v.Drift = h, "eni-"+h.Instance, drift
	}
	return v
}

// Roles with an overlay address: kept where the role table and every
// route say (published with the overlay address, the entry's epoch),
// routes drifted from a healthy holder repaired by the step on its behalf,
// claimed when free, taken over from a stopped holder, moved to the EIP's
// holder by force when routed apart from it; a terminating holder with no
// other candidate releases it with the role's publishers (the role table).
func TestScheduleOverlayAddresses(t *testing.T) {
	w := newWorld()
	mov := &forceMover{memMover: w.mov}
	w.c.Move = mov
	only := func(n int) *config.Role {
		return &config.Role{Overlay: &config.Overlay{Address: fmt.Sprintf("192.168.100.%d", n), RouteTables: []string{"rtb-1", "rtb-2"}},
			DNS: &config.DNS{Route53: &config.Route53{ZoneID: "Z1", Name: fmt.Sprintf("o%d.example.internal", n)}}}
	}
	withEIP := func(n int) *config.Role {
		s := roleSpec(n, "")
		s.Overlay = only(n).Overlay
		return s
	}
	add := func(name string, spec *config.Role, addrs []observe.Address, v *observe.Overlay, cands ...decide.Candidate) {
		w.role(name, spec, addrs, cands...)
		w.obs.roles[name].Overlay = v
	}
	stopped := decide.Holder{Instance: "i-c", State: "stopped"}
	add("a-kept", only(10), nil, overlayOn(10, healthy("i-a")), candidate("i-a", 0), candidate("i-a2", 1))
	add("b-free", only(11), nil, overlayOn(11, decide.Holder{}), candidate("i-b", 0))
	add("c-down", only(12), nil, overlayOn(12, stopped), candidate("i-c", 0), candidate("i-c2", 1))
	add("d-drift", only(13), nil, overlayOn(13, healthy("i-d"), "rtb-2"), candidate("i-d", 0), candidate("i-d2", 1))
	add("e-split", withEIP(14), []observe.Address{heldBy(14, healthy("i-e"))}, overlayOn(14, healthy("i-e2")), candidate("i-e", 0), candidate("i-e2", 1))
	add("f-both-kept", withEIP(15), []observe.Address{heldBy(15, healthy("i-f"))}, overlayOn(15, healthy("i-f")), candidate("i-f", 0))
	res, err := w.c.Handle(t.Context(), []byte(scheduleEvent))
	if err != nil {
		t.Fatal(err, actions(res))
	}
	want := []string{
		"keep a-kept on i-a epoch 5 pubs=1",
		"keep f-both-kept on i-f epoch 1 pubs=1",
		"step b-free for i-b force=false pubs=1",
		"step c-down for i-c2 force=false pubs=1",
		"step d-drift for i-d force=false pubs=1",
		"step e-split for i-e force=false pubs=1",
	}
	if got := w.mov.sorted(); !slices.Equal(got, want) {
		t.Errorf("calls\n  %v\nwant\n  %v", got, want)
	}
	if !slices.Equal(mov.forcedPrivate, []string{"e-split"}) {
		t.Errorf("overlay addresses taken by force: %v, want e-split's only", mov.forcedPrivate)
	}
	if mov.keptOverlay["a-kept"] != "192.168.100.10 via eni-i-a" || mov.keptOverlay["f-both-kept"] != "192.168.100.15 via eni-i-f" {
		t.Errorf("kept placements %v: want the overlay addresses routed to their holders' interfaces", mov.keptOverlay)
	}
	if got := actions(res); !strings.Contains(got, "d-drift: claimed") {
		t.Errorf("decisions %s: want d-drift's step run", got)
	}
	// Auto Scaling terminates f's holder, with no other candidate: both
	// addresses are released, with the role table.
	w.mov.calls = nil
	w.c.AutoScaling = memAutoScaling{}
	res, err = w.c.Handle(t.Context(), []byte(`{"id":"ev-3","source":"aws.autoscaling","detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{"LifecycleActionToken":"t","AutoScalingGroupName":"g","LifecycleHookName":"h","EC2InstanceId":"i-f","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}`))
	if err != nil {
		t.Fatal(err, actions(res))
	}
	if got := w.mov.sorted(); !slices.Equal(got, []string{"release f-both-kept from i-f pubs=1"}) {
		t.Errorf("terminating holder: %v, want the role released from i-f with its publishers", got)
	}
	// An EC2 event: d's holder stopped; the API says so too.
	w.mov.calls = nil
	w.obs.tags["i-d"] = "d-drift"
	w.obs.roles["d-drift"].Overlay = overlayOn(13, decide.Holder{Instance: "i-d", State: "stopped"})
	if _, err := w.c.Handle(t.Context(), []byte(stateEvent("i-d", "stopped"))); err != nil {
		t.Fatal(err)
	}
	if got := w.mov.sorted(); !slices.Equal(got, []string{"step d-drift for i-d2 force=false pubs=1"}) {
		t.Errorf("d's holder stopped: %v, want the overlay taken for i-d2", got)
	}
}
