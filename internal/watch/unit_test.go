package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/table"
)

// The unit tests of the watcher's state machine: the watcher runs (Run)
// against an EC2 in memory (world: a Looker), a step that moves the EIP in
// it (memStep: a Stepper), hooks that record what they are told
// (memHooks: a failover.HookRunner) and a clock that does not wait (fakeClock). Each
// test asserts the calls made: which step requests at which look, which
// hook environments with which epoch.

const (
	holderB = "i-00000000000holderb"
	noInst  = "eni-0000000nat0gw"
)

// world is the EC2 the watcher sees: where the EIP is, its tags, the
// instances' states and probes. Before answering look n (1-based), at[n]
// changes it. After last looks, the watch is stopped (the look's read
// fails with the context's error).
type world struct {
	t      *testing.T
	holder string // the instance holding the EIP, "" for none
	eni    string // with no holder: an interface of no instance
	assoc  string
	tags   map[string]string
	states map[string]string // instance state; running when absent
	down   map[string]bool   // the probe against the instance fails
	// apiDown fails the next Addresses reads; healthDown the next Health
	// reads; stale answers the next reads with these holders (EC2's
	// eventual consistency).
	apiDown, healthDown int
	stale               []string
	// IMDS: imdsDown fails the next reads (a timeout); imdsCanned never
	// lists the EIP (the IMDS emulator's canned answers); imdsStale keeps
	// listing it here after it left (IMDS lags). refDown fails the
	// probes of the reference targets.
	imdsDown              int
	imdsCanned, imdsStale bool
	imdsHang              bool // IMDS answers nothing until the caller gives up
	refDown               bool
	imdsCalls             int
	// routesTo, when set, is the instance the overlay's routes point
	// at instead of the table's holder (drift).
	routesTo string
	// tableDown fails the next conditional reads of the role table;
	// tableHang makes them hang until the caller gives up.
	tableDown int
	tableHang bool

	at    map[int]func(*world)
	last  int
	stop  context.CancelFunc
	looks int // Addresses calls, the confirming reads included
	look  int // looks of the watch loop (the reads it began with)
	calls []string
}

func newWorld(t *testing.T, holder string, last int) *world {
	w := &world{t: t, holder: holder, tags: map[string]string{claim.TagEpoch: "4"}, states: map[string]string{}, down: map[string]bool{},
		at: map[int]func(*world){}, last: last}
	if holder != "" {
		w.assoc = "eipassoc-" + holder
		w.tags[claim.TagHolder] = holder
		w.tags[claim.TagClaimedAt] = "2020-01-01T00:00:00Z" // long held
	}
	return w
}

// moveTo moves the EIP to instance id, as another claimer would: a new
// association, the epoch one up, the audit tags.
func (w *world) moveTo(id string) {
	w.holder, w.eni, w.assoc = id, "", "eipassoc-"+id+"-"+strconv.Itoa(w.looks)
	n, _ := strconv.Atoi(w.tags[claim.TagEpoch])
	w.tags[claim.TagEpoch] = strconv.Itoa(n + 1)
	w.tags[claim.TagHolder] = id
	// The audit tags say since when the holder has the EIP, but the
	// watcher believes them only at its start: a move it saw began when
	// it saw it (this tag says long ago: a clock behind).
	w.tags[claim.TagClaimedAt] = "2020-06-01T00:00:00Z"
}

func (w *world) address(holder string) claim.Address {
	a := claim.Address{AllocationID: alloc, PublicIP: "203.0.113.10", Tags: maps.Clone(w.tags)}
	switch {
	case holder != "":
		a.Holder, a.ENI, a.PrivateIP, a.AssociationID = holder, "eni-"+holder, "10.0.1."+strconv.Itoa(len(holder)), w.assoc
		if holder != w.holder {
			a.AssociationID = "eipassoc-stale-" + holder
		}
	case w.eni != "":
		a.ENI, a.PrivateIP, a.AssociationID = w.eni, "10.0.2.1", w.assoc
	}
	return a
}

// privAddr is the private address of the tests' roles that have one.
const privAddr = "10.0.1.50"

// Secondary answers a read of the role's private address from the same
// world: its holder's interface eni-<holder>, whose primary private IP
// is the holder's (10.0.1.<length of its id>).
func (w *world) Secondary(ctx context.Context, role string, spec *config.Role, withHealth bool) (*claim.SecondaryStatus, error) {
	w.looks++
	w.calls = append(w.calls, "secondary")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if withHealth || spec.PrivateAddress != privAddr || spec.HasEIP() || role != "db" {
		w.t.Errorf("Secondary(%s, %+v, withHealth %v): want the role's private address of a role without EIP, without health", role, spec, withHealth)
	}
	if w.apiDown > 0 {
		w.apiDown--
		return nil, errors.New("api error RequestLimitExceeded: Request limit exceeded")
	}
	h := w.holder
	if len(w.stale) > 0 {
		h, w.stale = w.stale[0], w.stale[1:]
	}
	st := &claim.SecondaryStatus{Address: privAddr, Epoch: w.tags[claim.TagEpoch]}
	if h != "" {
		st.Holder, st.ENI, st.HolderIP = h, "eni-"+h, "10.0.1."+strconv.Itoa(len(h))
		if w.tags[claim.TagHolder] == h {
			st.ClaimedAt = w.tags[claim.TagClaimedAt]
		}
	}
	return st, nil
}

func (w *world) Addresses(ctx context.Context, spec *config.Role, withHealth bool) ([]claim.Address, error) {
	w.looks++
	w.calls = append(w.calls, "addresses")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if withHealth || spec.AllocationID != alloc {
		w.t.Errorf("Addresses(%+v, withHealth %v): want the role's EIP, without health", spec, withHealth)
	}
	if w.apiDown > 0 {
		w.apiDown--
		return nil, errors.New("api error RequestLimitExceeded: Request limit exceeded")
	}
	if len(w.stale) > 0 {
		h := w.stale[0]
		w.stale = w.stale[1:]
		return []claim.Address{w.address(h)}, nil
	}
	return []claim.Address{w.address(w.holder)}, nil
}

// beginLook begins the watch loop's next look n: at[n] changes the world;
// after the last look the watch stops.
func (w *world) beginLook() {
	w.look++
	if w.look > w.last {
		w.stop()
		return
	}
	if f := w.at[w.look]; f != nil {
		f(w)
	}
}

func (w *world) Health(ctx context.Context, holder, privateIP string, hc config.HealthCheck) (*claim.Health, error) {
	w.calls = append(w.calls, "health "+holder)
	if hc.Set() {
		w.t.Errorf("Health with a health_check: the watcher reads the state and status checks only")
	}
	if w.healthDown > 0 {
		w.healthDown--
		return nil, errors.New("api error RequestLimitExceeded: Request limit exceeded")
	}
	f := decide.Holder{Instance: holder, State: w.state(holder)}
	if !decide.Stopped(f.State) {
		f.InstanceStatus, f.SystemStatus = decide.StatusOK, decide.StatusOK
	}
	v := decide.Judge(f)
	return &claim.Health{Instance: holder, PrivateIP: "10.0.1." + strconv.Itoa(len(holder)), State: f.State, Down: v.Down, Why: v.Why, Facts: f}, nil
}

// The interfaces of this instance as IMDS lists them: the EIP, when
// here, is on the first; the second has a public IP of its own.
const (
	macEIP   = "0e:00:00:00:00:01"
	macOther = "0e:00:00:00:00:02"
	refIP    = "10.0.9.9" // the reference target (watch.references)
)

// imdsError is IMDS answering with an HTTP status, as the SDK's errors do.
type imdsError int

func (e imdsError) Error() string       { return "imds: HTTP " + strconv.Itoa(int(e)) }
func (e imdsError) HTTPStatusCode() int { return int(e) }

// Metadata is this instance's IMDS on the world.
func (w *world) Metadata(ctx context.Context, path string) (string, error) {
	w.imdsCalls++
	if w.imdsHang {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if w.imdsDown > 0 {
		w.imdsDown--
		return "", errors.New("dial tcp 169.254.169.254:80: i/o timeout")
	}
	switch path {
	case "instance-id":
		return self, nil
	case "network/interfaces/macs/":
		return macEIP + "/\n" + macOther + "/", nil
	case "network/interfaces/macs/" + macOther + "/public-ipv4s":
		return "198.51.100.7", nil
	case "network/interfaces/macs/" + macOther + "/local-ipv4s":
		return "10.0.3.7", nil
	case "network/interfaces/macs/" + macEIP + "/local-ipv4s":
		if (w.holder == self || w.imdsStale) && !w.imdsCanned {
			return "10.0.1.19\n" + privAddr, nil
		}
		return "10.0.1.19", nil
	case "network/interfaces/macs/" + macEIP + "/public-ipv4s":
		if (w.holder == self || w.imdsStale) && !w.imdsCanned {
			return "203.0.113.10", nil
		}
		return "", imdsError(404)
	}
	w.t.Errorf("IMDS path %q: not one the watcher reads", path)
	return "", imdsError(404)
}

func (w *world) state(id string) string {
	if s := w.states[id]; s != "" {
		return s
	}
	return decide.StateRunning
}

// Probe probes an instance by its private IP (10.0.1.<length of its
// id>), or the reference target.
func (w *world) Probe(ctx context.Context, ip string, hc config.HealthCheck) (bool, string) {
	w.calls = append(w.calls, "probe "+ip)
	failed := hc.String() + " on " + ip + " failed: connection refused"
	if ip == refIP {
		if w.refDown {
			return false, failed
		}
		return true, hc.String() + " on " + ip + " answered"
	}
	var id string
	for _, x := range []string{self, other, holderB} {
		if ip == "10.0.1."+strconv.Itoa(len(x)) {
			id = x
		}
	}
	if id == "" || id == self {
		w.t.Errorf("probe of %s: no other instance is there", ip)
	}
	if w.down[id] || decide.Stopped(w.state(id)) {
		return false, failed
	}
	return true, hc.String() + " on " + ip + " answered"
}

// count says how many calls were c.
// countPrefix counts the calls that begin with c.
func (w *world) countPrefix(c string) int {
	n := 0
	for _, x := range w.calls {
		if strings.HasPrefix(x, c) {
			n++
		}
	}
	return n
}

func (w *world) count(c string) int {
	n := 0
	for _, x := range w.calls {
		if x == c {
			n++
		}
	}
	return n
}

// stepCall is one run of the step: its request, at which look.
type stepCall struct {
	req  failover.Request
	look int
}

// memStep is the failover step on the world: it moves the EIP to self
// (claimed, taken over) unless refuse is set, then runs the on_holder hook
// as the real step does; on an EIP held here it repairs (moves nothing).
type memStep struct {
	w      *world
	refuse error
	// repair, when set, answers the runs on an EIP held here (repairs)
	// instead.
	repair func(o *failover.Outcome) (*failover.Outcome, error)
	calls  []stepCall
}

func (s *memStep) Run(ctx context.Context, req failover.Request) (*failover.Outcome, error) {
	s.calls = append(s.calls, stepCall{req, s.w.look})
	if s.refuse != nil {
		return nil, fmt.Errorf("claim %s: %w", req.Role, s.refuse)
	}
	if s.repair != nil && s.w.holder == self {
		return s.repair(&failover.Outcome{Role: req.Role, Action: "already held", AllocationID: alloc, InstanceID: self})
	}
	o := &failover.Outcome{Role: req.Role, Action: "already held", AllocationID: alloc, PublicIP: "203.0.113.10", InstanceID: self}
	if req.Spec.PrivateAddress != "" {
		o.PrivateAddress, o.PrivateAddressENI, o.ENI = privAddr, "eni-"+self, "eni-"+self
		if !req.Spec.HasEIP() {
			o.AllocationID, o.PublicIP = "", ""
		}
	}
	if req.Spec.Overlay != nil {
		o.OverlayAddress, o.ENI = ovAddr, "eni-"+self
		if !req.Spec.HasEIP() {
			o.AllocationID, o.PublicIP = "", ""
		}
		s.w.routesTo = "" // routed here: moved, or repaired
	}
	if s.w.holder != self {
		o.Action, o.PreviousHolder = "taken over", s.w.holder
		if s.w.holder == "" {
			o.Action = "claimed"
		}
		s.w.moveTo(self)
	}
	o.Epoch, _ = strconv.ParseInt(s.w.tags[claim.TagEpoch], 10, 64)
	o.AssociationID = s.w.assoc
	if req.Hooks != nil {
		o.Hook = req.Hooks.Run(ctx, failover.HookEnv{Event: failover.EventHolder, PublicIP: o.PublicIP, AllocationID: o.AllocationID,
			Epoch: o.Epoch, PreviousHolder: cmpOr(o.PreviousHolder, req.PreviousHolder), Holder: self, Reason: req.Reason, PrivateAddress: o.PrivateAddress, OverlayAddress: o.OverlayAddress})
	}
	return o, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// memHooks records the hooks run, at which look.
type memHooks struct {
	w    *world
	envs []failover.HookEnv
	at   []int
	// onRun, when set, is called at every run (what else holds then).
	onRun func(env failover.HookEnv)
}

func (h *memHooks) Run(ctx context.Context, env failover.HookEnv) *failover.HookRun {
	if h.onRun != nil {
		h.onRun(env)
	}
	h.envs = append(h.envs, env)
	h.at = append(h.at, h.w.look)
	return &failover.HookRun{Event: env.Event, Result: "ok"}
}

// fakeClock does not wait: a sleep moves it on, and is recorded.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

// rig is a watcher on a world, and what it was given.
type rig struct {
	w     *Watcher
	world *world
	step  *memStep
	hooks *memHooks
	clock *fakeClock
	logs  *bytes.Buffer
}

// newRig builds a watcher of role db on world, with interval 1s and fall
// 3 unless settings say otherwise (hold_down: as given, 0 by default).
func newRig(t *testing.T, wd *world, spec *config.Role, settings config.WatchSettings) *rig {
	if spec.PrivateAddress == "" && spec.Overlay == nil {
		spec.AllocationID = alloc
	}
	if settings.Interval == 0 {
		settings.Interval = time.Second
	}
	if settings.Fall == 0 {
		settings.Fall = 3
	}
	r := &rig{world: wd, step: &memStep{w: wd}, hooks: &memHooks{w: wd}, logs: &bytes.Buffer{},
		clock: &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	m := NewMetrics()
	m.Role("db")
	// A truth check at every look of a standby (the state machine's tests;
	// the cadence's have theirs), none of a holder's but its first.
	r.w = &Watcher{Role: "db", Spec: spec, Settings: settings, InstanceID: self,
		Engine: wd, Step: r.step, Hooks: r.hooks, Changes: wd, Clock: r.clock, Metrics: m, IMDS: wd,
		Log: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), RepairEvery: 1000, standbyEvery: 1}
	return r
}

// run runs the watcher for the world's looks: each look n begins with
// at[n] (after the wait before it), and after the last one the watch is
// stopped (AfterLook).
func (r *rig) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.world.stop = cancel
	r.world.beginLook()
	r.w.AfterLook = r.world.beginLook
	if err := r.w.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.world.look <= r.world.last {
		t.Fatalf("the watch stopped at look %d, before the world's last, %d\n%s", r.world.look, r.world.last, r.logs)
	}
}

// stepsAt says at which looks the step ran.
func (r *rig) stepsAt() []int {
	var at []int
	for _, c := range r.step.calls {
		at = append(at, c.look)
	}
	return at
}

// logCount is how many times the log says s.
func (r *rig) logCount(s string) int { return strings.Count(r.logs.String(), s) }

var hc5432 = config.HealthCheck{Port: 5432}

// wantEnv checks one hook environment.
func wantEnv(t *testing.T, got failover.HookEnv, want failover.HookEnv) {
	t.Helper()
	want.PublicIP, want.AllocationID = "203.0.113.10", alloc
	if got != want {
		t.Errorf("hook env\n got %+v\nwant %+v", got, want)
	}
}

// wantSteps checks the looks at which the step ran.
func (r *rig) wantSteps(t *testing.T, looks ...int) {
	t.Helper()
	if got := r.stepsAt(); fmt.Sprint(got) != fmt.Sprint(looks) {
		t.Errorf("the step ran at looks %v, want %v\n%s", got, looks, r.logs)
	}
}

func (r *rig) wantState(t *testing.T, state string) {
	t.Helper()
	if r.w.State() != state {
		t.Errorf("state %q, want %q\n%s", r.w.State(), state, r.logs)
	}
}

func TestUnitStartAsHolder(t *testing.T) {
	wd := newWorld(t, self, 3)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.run(t)
	r.wantSteps(t, 1)
	if req := r.step.calls[0].req; req.Reason != "started as the holder" || req.Hooks != failover.HookRunner(r.hooks) || req.PreviousHolder != "" || req.Role != "db" {
		t.Errorf("step request %+v: want the reason, the hooks, no previous holder", req)
	}
	if len(r.hooks.envs) != 1 {
		t.Fatalf("hooks %+v: want on_holder only", r.hooks.envs)
	}
	wantEnv(t, r.hooks.envs[0], failover.HookEnv{Event: failover.EventHolder, Epoch: 4, Holder: self, Reason: "started as the holder"})
	// Look 1 reads EC2; looks 2 and 3 read IMDS only: the interfaces,
	// then the EIP's interface's public addresses (2), then those alone.
	if len(wd.calls) != 1 || wd.imdsCalls != 3 {
		t.Errorf("calls %v, %d IMDS reads: want one read of EC2 (the start), then IMDS only (3 reads)", wd.calls, wd.imdsCalls)
	}
	r.wantState(t, StateHolder)
}

func TestUnitStartAsStandby(t *testing.T) {
	wd := newWorld(t, holderB, 4)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.run(t)
	r.wantSteps(t)
	if len(r.hooks.envs) != 1 || r.hooks.at[0] != 1 {
		t.Fatalf("hooks %+v at looks %v: want on_standby at look 1", r.hooks.envs, r.hooks.at)
	}
	wantEnv(t, r.hooks.envs[0], failover.HookEnv{Event: failover.EventStandby, Epoch: 4, Holder: holderB, Reason: "started as a standby: the EIP is held by " + holderB})
	if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 4 {
		t.Errorf("%d probes of the holder in 4 looks, want 4: %v", n, wd.calls)
	}
	r.wantState(t, StateStandby)
}

func TestUnitStartFree(t *testing.T) {
	wd := newWorld(t, "", 2)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.run(t)
	r.wantSteps(t, 1)
	if req := r.step.calls[0].req; req.Reason != "the EIP was free" || req.PreviousHolder != "" {
		t.Errorf("step request %+v", req)
	}
	if len(r.hooks.envs) != 1 {
		t.Fatalf("hooks %+v: want on_holder only, no on_standby before the claim", r.hooks.envs)
	}
	wantEnv(t, r.hooks.envs[0], failover.HookEnv{Event: failover.EventHolder, Epoch: 5, Holder: self, Reason: "the EIP was free"})
	if r.logCount("the EIP is free: claiming it") != 1 {
		t.Errorf("the log does not say the EIP is claimed because it is free:\n%s", r.logs)
	}
	r.wantState(t, StateHolder)
}

// TestUnitFall: no step before fall failed looks in a row, the step at
// the fall-th; the new holder's hook is told the previous one and the
// epoch of the move.
func TestUnitFall(t *testing.T) {
	for fall := 1; fall <= 3; fall++ {
		t.Run(strconv.Itoa(fall), func(t *testing.T) {
			wd := newWorld(t, holderB, fall+2)
			wd.at[2] = func(w *world) { w.down[holderB] = true }
			r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: fall})
			r.run(t)
			r.wantSteps(t, 1+fall)
			want := fmt.Sprintf("holder %s fails its health check: tcp:5432 on 10.0.1.%d failed: connection refused: failed %d looks of fall %d", holderB, len(holderB), fall, fall)
			if req := r.step.calls[0].req; req.Reason != want || req.PreviousHolder != holderB {
				t.Errorf("step request reason %q previous %q, want %q, %s", req.Reason, req.PreviousHolder, want, holderB)
			}
			if len(r.hooks.envs) != 2 {
				t.Fatalf("hooks %+v: want on_standby, then on_holder", r.hooks.envs)
			}
			wantEnv(t, r.hooks.envs[1], failover.HookEnv{Event: failover.EventHolder, Epoch: 5, Holder: self, PreviousHolder: holderB, Reason: want})
			if n := r.logCount(`msg="the holder failed a look"`); n != fall {
				t.Errorf("%d failed looks logged, want %d", n, fall)
			}
			if v := value(t, r.w.Metrics, "eipclaim_holder_failed_looks_total", "db"); v != float64(fall) {
				t.Errorf("eipclaim_holder_failed_looks_total %v, want %d", v, fall)
			}
			if v := value(t, r.w.Metrics, "eipclaim_takeovers_total", "db"); v != 1 {
				t.Errorf("eipclaim_takeovers_total %v, want 1", v)
			}
			r.wantState(t, StateHolder)
		})
	}
}

// TestUnitFallResets: a look at which the holder answers again starts the
// count over.
func TestUnitFallResets(t *testing.T) {
	wd := newWorld(t, holderB, 8)
	wd.at[2] = func(w *world) { w.down[holderB] = true }
	wd.at[4] = func(w *world) { w.down[holderB] = false }
	wd.at[5] = func(w *world) { w.down[holderB] = true }
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 3})
	r.run(t)
	r.wantSteps(t, 7)
	if r.logCount(`msg="the holder answers again"`) != 1 || r.logCount("after_failed_looks=2") != 1 {
		t.Errorf("the log does not say once that the holder answers again after 2 failed looks:\n%s", r.logs)
	}
}

// TestUnitExamineErrorCountsForNothing: a look at which the holder cannot
// be examined (the API does not answer) neither counts nor resets the
// failed looks.
func TestUnitExamineErrorCountsForNothing(t *testing.T) {
	wd := newWorld(t, holderB, 4)
	wd.states[holderB] = decide.StateStopped
	wd.at[2] = func(w *world) { w.healthDown = 1 }
	r := newRig(t, wd, &config.Role{}, config.WatchSettings{Fall: 2})
	r.run(t)
	r.wantSteps(t, 3)
	if r.logCount("this look counts for nothing") != 1 {
		t.Errorf("the log does not say the look counts for nothing:\n%s", r.logs)
	}
	if want := "holder " + holderB + " is stopped: failed 2 looks of fall 2"; r.step.calls[0].req.Reason != want {
		t.Errorf("reason %q, want %q", r.step.calls[0].req.Reason, want)
	}
	if v := value(t, r.w.Metrics, "eipclaim_holder_stopped", "db"); v != 0 {
		t.Errorf("eipclaim_holder_stopped %v once this instance holds the EIP, want 0", v)
	}
}

// TestUnitHoldDown: a new holder that fails its probes is not taken over
// within hold_down (its state is read through the API), a stopped one is;
// at start, the audit tags say since when the holder has the EIP.
func TestUnitHoldDown(t *testing.T) {
	s := config.WatchSettings{Fall: 2, HoldDown: 10 * time.Second}
	t.Run("new holder running", func(t *testing.T) {
		wd := newWorld(t, holderB, 14)
		wd.at[3] = func(w *world) { w.moveTo(other); w.down[other] = true }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		// other's looks: 3 (held 0s), 4 (1s, fall reached), ... 13 (10s).
		r.wantSteps(t, 13)
		if n := wd.count("health " + other); n != 9 {
			t.Errorf("%d reads of the new holder's state, want 9 (looks 4 to 12): %v", n, wd.calls)
		}
		if n := r.logCount("not taking over within hold_down for failing probes"); n != 9 {
			t.Errorf("the refusal logged %d times, want 9:\n%s", n, r.logs)
		}
		if want := "failed 11 looks of fall 2"; !strings.HasSuffix(r.step.calls[0].req.Reason, want) {
			t.Errorf("reason %q, want ...%q", r.step.calls[0].req.Reason, want)
		}
	})
	t.Run("new holder stopped", func(t *testing.T) {
		wd := newWorld(t, holderB, 5)
		wd.at[3] = func(w *world) { w.moveTo(other); w.states[other] = decide.StateStopped }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 4)
		if want := "holder " + other + " is stopped (taken over within hold_down: a stopped holder does not serve)"; r.step.calls[0].req.Reason != want {
			t.Errorf("reason %q, want %q", r.step.calls[0].req.Reason, want)
		}
	})
	t.Run("new holder, its state unreadable", func(t *testing.T) {
		wd := newWorld(t, holderB, 5)
		wd.at[3] = func(w *world) { w.moveTo(other); w.states[other] = decide.StateStopped; w.healthDown = 1 }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 5)
		if r.logCount("its state could not be read during its hold-down") != 1 {
			t.Errorf("the log does not say the state could not be read:\n%s", r.logs)
		}
	})
	t.Run("deposed, the new holder fails its probes", func(t *testing.T) {
		// This instance held the EIP; at look 3 it sees it on holderB,
		// which fails every probe. holderB's hold_down runs from the look
		// that confirmed the loss, not from some earlier time: within it
		// (looks 4 to 8 are 1 to 5 s later) it is not taken over.
		wd := newWorld(t, self, 8)
		wd.at[3] = func(w *world) { w.moveTo(holderB); w.down[holderB] = true }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 1)
		if n := wd.count("health " + holderB); n != 4 {
			t.Errorf("%d reads of the new holder's state, want 4 (looks 5 to 8): %v", n, wd.calls)
		}
		if n := r.logCount("not taking over within hold_down for failing probes"); n != 4 {
			t.Errorf("the refusal logged %d times, want 4:\n%s", n, r.logs)
		}
		r.wantState(t, StateStandby)
	})
	t.Run("at start, tagged long ago", func(t *testing.T) {
		wd := newWorld(t, holderB, 3)
		wd.down[holderB] = true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 2)
		if wd.count("health "+holderB) != 0 {
			t.Errorf("the state of a holder past its hold_down was read: %v", wd.calls)
		}
	})
	t.Run("at start, untagged", func(t *testing.T) {
		wd := newWorld(t, holderB, 12)
		delete(wd.tags, claim.TagClaimedAt)
		wd.down[holderB] = true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 11)
	})
	t.Run("at start, tagged for another holder", func(t *testing.T) {
		wd := newWorld(t, holderB, 12)
		wd.tags[claim.TagHolder] = other
		wd.down[holderB] = true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, s)
		r.run(t)
		r.wantSteps(t, 11)
	})
}

// TestUnitTakeoverNever: a watcher with takeover: never only watches: it
// never runs the step, says so once, and reports a stopped holder once
// (read every RepairEvery looks).
func TestUnitTakeoverNever(t *testing.T) {
	t.Run("held by a stopped holder", func(t *testing.T) {
		wd := newWorld(t, holderB, 12)
		wd.states[holderB] = decide.StateStopped
		r := newRig(t, wd, &config.Role{Takeover: config.TakeoverNever}, config.WatchSettings{Fall: 1})
		r.w.RepairEvery = 5
		r.run(t)
		r.wantSteps(t)
		if n := wd.count("health " + holderB); n != 3 || len(wd.calls) != 15 {
			t.Errorf("calls %v: want 12 looks and the holder's state read at looks 1, 6, 11", wd.calls)
		}
		if n := r.logCount("the holder is stopped, and this watcher does not take over (takeover: never)"); n != 1 {
			t.Errorf("the stopped holder reported %d times, want once:\n%s", n, r.logs)
		}
		if n := r.logCount("only watching: this watcher does not take over (takeover: never)"); n != 1 {
			t.Errorf("why it only watches said %d times, want once:\n%s", n, r.logs)
		}
		if v := value(t, r.w.Metrics, "eipclaim_holder_stopped", "db"); v != 1 {
			t.Errorf("eipclaim_holder_stopped %v, want 1", v)
		}
		if len(r.hooks.envs) != 1 || r.hooks.envs[0].Event != failover.EventStandby {
			t.Errorf("hooks %+v: want on_standby once", r.hooks.envs)
		}
		r.wantState(t, StateStandby)
	})
	t.Run("free", func(t *testing.T) {
		wd := newWorld(t, "", 3)
		r := newRig(t, wd, &config.Role{Takeover: config.TakeoverNever}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t)
		if len(r.hooks.envs) != 1 {
			t.Fatalf("hooks %+v: want on_standby once", r.hooks.envs)
		}
		wantEnv(t, r.hooks.envs[0], failover.HookEnv{Event: failover.EventStandby, Epoch: 4, Reason: "the EIP is free and takeover is never: this watcher only watches"})
		r.wantState(t, StateStandby)
	})
}

// TestUnitNoInstance: an EIP on an interface of no instance is not taken,
// whatever the policy, and its holder is not examined.
func TestUnitNoInstance(t *testing.T) {
	wd := newWorld(t, "", 5)
	wd.eni, wd.assoc = noInst, "eipassoc-nat"
	r := newRig(t, wd, &config.Role{Takeover: config.TakeoverAlways, HealthCheck: hc5432}, config.WatchSettings{Fall: 1})
	r.run(t)
	r.wantSteps(t)
	if len(wd.calls) != 5 {
		t.Errorf("calls %v: want the 5 looks only", wd.calls)
	}
	if len(r.hooks.envs) != 1 {
		t.Fatalf("hooks %+v: want on_standby once", r.hooks.envs)
	}
	wantEnv(t, r.hooks.envs[0], failover.HookEnv{Event: failover.EventStandby, Epoch: 4, Reason: "started as a standby: the EIP is held by " + noInst})
	if n := r.logCount("only watching: the EIP is " + decide.NoInstance); n != 1 {
		t.Errorf("why it only watches said %d times, want once:\n%s", n, r.logs)
	}
}

// TestUnitAPIBackoff: looks the API does not answer space the next ones
// out, 2, 4, then 8 intervals, and change nothing; the first answer
// brings the interval back.
func TestUnitAPIBackoff(t *testing.T) {
	wd := newWorld(t, holderB, 8)
	wd.apiDown = 5
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Interval: 3 * time.Second})
	r.run(t)
	s := 3 * time.Second
	if got, want := fmt.Sprint(r.clock.sleeps), fmt.Sprint([]time.Duration{2 * s, 4 * s, 8 * s, 8 * s, 8 * s, s, s}); got != want {
		t.Errorf("waits %s, want %s", got, want)
	}
	if n := r.logCount("look failed: nothing changes until the EC2 API answers"); n != 5 {
		t.Errorf("%d failed looks logged, want 5", n)
	}
	r.wantSteps(t)
	if len(r.hooks.at) != 1 || r.hooks.at[0] != 6 || r.w.State() != StateStandby {
		t.Errorf("on_standby at looks %v, state %q: want at look 6, the first answered", r.hooks.at, r.w.State())
	}
}

// TestUnitHolderDeposed: a holder whose IMDS no longer lists the EIP
// reads EC2 at once; when EC2 shows it elsewhere too, the loss is
// confirmed by both and it stands down at that look. When IMDS never
// listed it (canned answers), a look that shows the EIP elsewhere is read
// again (1s, then 2s later) before it stands down; a read that shows the
// EIP here again keeps it holder, and so does EC2 showing it here while
// IMDS does not.
func TestUnitHolderDeposed(t *testing.T) {
	t.Run("deposed: IMDS and EC2 agree", func(t *testing.T) {
		wd := newWorld(t, self, 4)
		wd.at[3] = func(w *world) { w.moveTo(holderB) }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1)
		if got, want := fmt.Sprint(r.clock.sleeps), fmt.Sprint([]time.Duration{time.Second, time.Second, time.Second}); got != want {
			t.Errorf("waits %s, want %s (no confirming delays: two sources agree)", got, want)
		}
		if len(r.hooks.envs) != 2 || r.hooks.at[1] != 3 {
			t.Fatalf("hooks %+v at %v: want on_holder, then on_standby at look 3, the look of the move", r.hooks.envs, r.hooks.at)
		}
		wantEnv(t, r.hooks.envs[1], failover.HookEnv{Event: failover.EventStandby, Epoch: 5, PreviousHolder: self, Holder: holderB, Reason: "the EIP was moved to " + holderB})
		if v := value(t, r.w.Metrics, "eipclaim_losses_total", "db"); v != 1 {
			t.Errorf("eipclaim_losses_total %v, want 1", v)
		}
		// EC2: the start, the read on suspicion at look 3, look 4 (a
		// standby's truth check in this rig).
		if wd.looks != 3 || r.logCount("the loss is confirmed by both") != 1 {
			t.Errorf("%d reads of EC2, want 3 (start, suspicion, look 4); the log:\n%s", wd.looks, r.logs)
		}
		// The new holder is examined from the next look on.
		if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 1 {
			t.Errorf("%d probes of the new holder, want 1 (look 4): %v", n, wd.calls)
		}
		r.wantState(t, StateStandby)
	})
	t.Run("deposed: IMDS canned", func(t *testing.T) {
		wd := newWorld(t, self, 4)
		wd.imdsCanned = true
		wd.at[3] = func(w *world) { w.moveTo(holderB) }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1)
		if got, want := fmt.Sprint(r.clock.sleeps), fmt.Sprint([]time.Duration{time.Second, time.Second, time.Second, 2 * time.Second, time.Second}); got != want {
			t.Errorf("waits %s, want %s (the confirmation's delays at look 3)", got, want)
		}
		if len(r.hooks.envs) != 2 || r.hooks.at[1] != 3 {
			t.Fatalf("hooks %+v at %v: want on_holder, then on_standby at look 3", r.hooks.envs, r.hooks.at)
		}
		if n := r.logCount("IMDS does not list the EIP on this instance's interfaces, while EC2 shows it here"); n != 1 {
			t.Errorf("IMDS's canned answer reported %d times, want once:\n%s", n, r.logs)
		}
		r.wantState(t, StateStandby)
	})
	t.Run("released and free", func(t *testing.T) {
		wd := newWorld(t, self, 3)
		wd.at[2] = func(w *world) { w.holder, w.assoc = "", "" }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1, 2)
		if req := r.step.calls[1].req; req.Reason != "the EIP was released from this instance and is free" {
			t.Errorf("reason %q", req.Reason)
		}
		r.wantState(t, StateHolder)
	})
	t.Run("stale read", func(t *testing.T) {
		wd := newWorld(t, self, 4)
		wd.imdsCanned = true
		wd.at[3] = func(w *world) { w.stale = []string{holderB} }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1)
		if wd.looks != 5 || len(r.hooks.envs) != 1 {
			t.Errorf("%d reads, hooks %+v: want 4 looks and one confirming read, on_holder only", wd.looks, r.hooks.envs)
		}
		if r.logCount("a stale read showed the EIP elsewhere") != 1 {
			t.Errorf("the log does not say the read was stale:\n%s", r.logs)
		}
		r.wantState(t, StateHolder)
	})
	t.Run("IMDS stops listing, EC2 shows it here", func(t *testing.T) {
		wd := newWorld(t, self, 6)
		wd.at[3] = func(w *world) { w.imdsCanned = true }
		wd.at[5] = func(w *world) { w.imdsCanned = false }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1)
		// EC2: the start, looks 3 and 4 (IMDS does not list it); IMDS
		// alone again from look 5.
		if wd.looks != 3 || len(r.hooks.envs) != 1 || r.clock.sleeps[len(r.clock.sleeps)-1] != time.Second {
			t.Errorf("%d reads of EC2, hooks %+v: want 3 reads, on_holder only, no stand-down\n%s", wd.looks, r.hooks.envs, r.logs)
		}
		if r.logCount("IMDS lists the EIP on this instance: looks read IMDS only") != 1 {
			t.Errorf("the log does not say IMDS lists the EIP again:\n%s", r.logs)
		}
		r.wantState(t, StateHolder)
	})
	t.Run("IMDS does not answer", func(t *testing.T) {
		wd := newWorld(t, self, 5)
		wd.at[3] = func(w *world) { w.imdsDown = 2 }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.run(t)
		r.wantSteps(t, 1)
		if wd.looks != 3 || len(r.hooks.envs) != 1 || r.logCount("IMDS did not answer: reading EC2 at every look until it does") != 1 {
			t.Errorf("%d reads of EC2, hooks %+v: want 3 (start, looks 3 and 4), on_holder only, the failure said once\n%s", wd.looks, r.hooks.envs, r.logs)
		}
		r.wantState(t, StateHolder)
	})
}

// TestUnitMovedHere: an EIP moved to this instance by someone else (the
// controller, an operator) makes it holder through the step, whose hook is
// told the holder the watcher saw before.
func TestUnitMovedHere(t *testing.T) {
	wd := newWorld(t, holderB, 4)
	wd.at[3] = func(w *world) { w.holder, w.assoc = self, "eipassoc-by-hand" }
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.run(t)
	r.wantSteps(t, 3)
	if req := r.step.calls[0].req; req.Reason != "the EIP was moved to this instance" || req.PreviousHolder != holderB {
		t.Errorf("step request reason %q previous %q", req.Reason, req.PreviousHolder)
	}
	if len(r.hooks.envs) != 2 {
		t.Fatalf("hooks %+v: want on_standby, then on_holder", r.hooks.envs)
	}
	wantEnv(t, r.hooks.envs[1], failover.HookEnv{Event: failover.EventHolder, Epoch: 4, Holder: self, PreviousHolder: holderB, Reason: "the EIP was moved to this instance"})
	r.wantState(t, StateHolder)
}

// TestUnitFreedThenClaimed: a standby that saw holderB, then sees the EIP
// free, claims it, and its on_holder hook is told no previous holder:
// nobody held the EIP when it was claimed.
func TestUnitFreedThenClaimed(t *testing.T) {
	wd := newWorld(t, holderB, 4)
	wd.at[3] = func(w *world) { w.holder, w.assoc = "", "" }
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.run(t)
	r.wantSteps(t, 3)
	if req := r.step.calls[0].req; req.Reason != "the EIP was free" || req.PreviousHolder != "" {
		t.Errorf("step request reason %q previous %q: want the EIP was free, no previous holder", req.Reason, req.PreviousHolder)
	}
	if len(r.hooks.envs) != 2 {
		t.Fatalf("hooks %+v: want on_standby, then on_holder", r.hooks.envs)
	}
	wantEnv(t, r.hooks.envs[1], failover.HookEnv{Event: failover.EventHolder, Epoch: 5, Holder: self, Reason: "the EIP was free"})
	r.wantState(t, StateHolder)
}

// TestUnitRepairCadence: a holder runs the step every RepairEvery looks,
// without hooks (it repairs, it enters no state).
func TestUnitRepairCadence(t *testing.T) {
	wd := newWorld(t, self, 10)
	r := newRig(t, wd, &config.Role{}, config.WatchSettings{})
	r.w.RepairEvery = 3
	r.run(t)
	r.wantSteps(t, 1, 4, 7, 10)
	for _, c := range r.step.calls[1:] {
		if c.req.Hooks != nil || c.req.Reason != "" || c.req.PreviousHolder != "" {
			t.Errorf("repair at look %d: request %+v, want no hooks, no reason", c.look, c.req)
		}
	}
	if len(r.hooks.envs) != 1 {
		t.Errorf("hooks %+v: want on_holder once, at start", r.hooks.envs)
	}
}

// TestUnitRepairEveryDefault: the truth checks' cadence: a holder's (and
// its repair) every 6 minutes, a standby's every 90 s with a
// health_check, every 4 minutes without; at least every look.
func TestUnitRepairEveryDefault(t *testing.T) {
	for interval, want := range map[time.Duration][3]int{
		250 * time.Millisecond: {1440, 360, 960}, time.Second: {360, 90, 240}, 10 * time.Second: {36, 9, 24}, 2 * time.Minute: {3, 1, 2}, time.Hour: {1, 1, 1},
	} {
		for i, hc := range []config.HealthCheck{hc5432, {}} {
			wd := newWorld(t, self, 1)
			r := newRig(t, wd, &config.Role{HealthCheck: hc}, config.WatchSettings{Interval: interval})
			r.w.RepairEvery, r.w.standbyEvery = 0, 0
			r.run(t)
			if r.w.RepairEvery != want[0] || r.w.standbyEvery != want[1+i] {
				t.Errorf("interval %s, health_check %q: RepairEvery %d, standbyEvery %d, want %d and %d", interval, hc, r.w.RepairEvery, r.w.standbyEvery, want[0], want[1+i])
			}
		}
	}
}

// TestUnitRefused: a step the engine refuses (the holder counts as
// healthy after all) or that fails keeps the watcher standby, and the
// count starts over.
func TestUnitRefused(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		wd := newWorld(t, holderB, 6)
		wd.down[holderB] = true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2})
		r.step.refuse = claim.ErrRefused
		r.run(t)
		r.wantSteps(t, 2, 4, 6)
		if n := r.logCount("not taking over: the holder counts as healthy after all"); n != 3 {
			t.Errorf("the refusal logged %d times, want 3:\n%s", n, r.logs)
		}
		if len(r.hooks.envs) != 1 || r.hooks.envs[0].Event != failover.EventStandby {
			t.Errorf("hooks %+v: want on_standby only", r.hooks.envs)
		}
		r.wantState(t, StateStandby)
	})
	t.Run("failed at start", func(t *testing.T) {
		wd := newWorld(t, "", 2)
		r := newRig(t, wd, &config.Role{}, config.WatchSettings{})
		r.step.refuse = errors.New("api error UnauthorizedOperation")
		r.run(t)
		r.wantSteps(t, 1, 2)
		if n := r.logCount("the failover step failed; staying standby"); n != 2 {
			t.Errorf("the failure logged %d times, want 2:\n%s", n, r.logs)
		}
		r.wantState(t, StateStandby)
	})
}

// TestUnitBadEpochTag: an epoch tag that is not an epoch is reported once
// and read as 0 (the hook is told 0); once valid, it is read again.
func TestUnitBadEpochTag(t *testing.T) {
	wd := newWorld(t, holderB, 4)
	wd.tags[claim.TagEpoch] = "garbage"
	wd.at[4] = func(w *world) { w.tags[claim.TagEpoch] = "7" }
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	var invalid []float64
	wd.at[3] = func(w *world) { invalid = append(invalid, value(t, r.w.Metrics, "eipclaim_epoch_invalid", "db")) }
	r.run(t)
	if len(r.hooks.envs) != 1 || r.hooks.envs[0].Epoch != 0 {
		t.Errorf("hooks %+v: want on_standby told epoch 0", r.hooks.envs)
	}
	if n := r.logCount(`\"garbage\" is not an epoch`); n != 1 {
		t.Errorf("the bad tag reported %d times, want once:\n%s", n, r.logs)
	}
	if fmt.Sprint(invalid) != "[1]" || value(t, r.w.Metrics, "eipclaim_epoch_invalid", "db") != 0 || value(t, r.w.Metrics, "eipclaim_epoch", "db") != 7 {
		t.Errorf("eipclaim_epoch_invalid %v then %v, eipclaim_epoch %v: want 1, then 0 and 7", invalid,
			value(t, r.w.Metrics, "eipclaim_epoch_invalid", "db"), value(t, r.w.Metrics, "eipclaim_epoch", "db"))
	}
}

// TestUnitPoolRefused: watch needs a role with one EIP.
func TestUnitPoolRefused(t *testing.T) {
	w := &Watcher{Spec: &config.Role{Pool: &config.Pool{}}}
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not a pool") {
		t.Errorf("Run on a pool: %v, want an error saying it needs one EIP", err)
	}
}

// TestUnitRepairReports: what a repair finds is logged: a publication
// that had drifted, a publication that failed (a role table holding a
// greater epoch counted apart), a step that failed.
func TestUnitRepairReports(t *testing.T) {
	wd := newWorld(t, self, 4)
	r := newRig(t, wd, &config.Role{}, config.WatchSettings{})
	r.w.RepairEvery = 1
	n := 0
	r.step.repair = func(o *failover.Outcome) (*failover.Outcome, error) {
		n++
		switch n {
		case 1: // the start
			return o, nil
		case 2:
			o.Published = []publish.Result{{Publisher: "route53", Name: "db.example.internal.", Value: "ec2-203-0-113-10.compute-1.amazonaws.com.", Changed: true}}
			return o, nil
		case 3:
			return o, fmt.Errorf("publish: %w", &table.StaleError{Role: "db", Epoch: 4, Newer: 9, Holder: other})
		}
		return nil, errors.New("api error RequestLimitExceeded")
	}
	r.run(t)
	r.wantSteps(t, 1, 2, 3, 4)
	for _, want := range []string{
		`msg="repaired a DNS publication that had drifted" role=db instance_id=` + self + ` publisher=route53 name=db.example.internal.`,
		`msg="holding the EIP, but the role table holds a greater epoch`,
		`msg="repairing the DNS publications failed; will try again"`,
	} {
		if r.logCount(want) != 1 {
			t.Errorf("the log does not say %s once:\n%s", want, r.logs)
		}
	}
	if v := value(t, r.w.Metrics, "eipclaim_table_writes_dropped_total", "db"); v != 1 {
		t.Errorf("eipclaim_table_writes_dropped_total %v, want 1", v)
	}
}

// fakeNotifier records what the service manager is told.
type fakeNotifier struct {
	ready, watchdog int
	every           time.Duration
}

func (n *fakeNotifier) Ready()                       { n.ready++ }
func (n *fakeNotifier) Watchdog()                    { n.watchdog++ }
func (n *fakeNotifier) WatchdogEvery() time.Duration { return n.every }

// TestUnitNotify: READY once after the first look, the watchdog after
// every look and during the waits, which it splits.
func TestUnitNotify(t *testing.T) {
	wd := newWorld(t, holderB, 3)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Interval: 10 * time.Second})
	n := &fakeNotifier{every: 4 * time.Second}
	r.w.Notify = n
	r.run(t)
	s := time.Second
	if got, want := fmt.Sprint(r.clock.sleeps), fmt.Sprint([]time.Duration{4 * s, 4 * s, 2 * s, 4 * s, 4 * s, 2 * s}); got != want {
		t.Errorf("waits %s, want %s", got, want)
	}
	if n.ready != 1 || n.watchdog != 3+6 {
		t.Errorf("READY %d times, WATCHDOG %d times: want 1, and 9 (3 looks, 6 parts of waits)", n.ready, n.watchdog)
	}
}

// refusals is eipclaim_takeover_refused_total{role="db",reason}.
func refusals(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eipclaim_takeover_refused_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["role"] == "db" && labels["reason"] == reason {
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no eipclaim_takeover_refused_total{role=db,reason=%s}", reason)
	return 0
}

// ec2Requests is how many requests the world's EC2 answered:
// DescribeAddresses, and two (DescribeInstances, DescribeInstanceStatus)
// per read of a holder's health.
func (w *world) ec2Requests() int {
	n := w.looks
	for _, c := range w.calls {
		if strings.HasPrefix(c, "health ") {
			n += 2
		}
	}
	return n
}

// TestUnitHolderLooksFree: a holder's looks between truth checks read
// IMDS only: no EC2 request in 100 looks.
func TestUnitHolderLooksFree(t *testing.T) {
	wd := newWorld(t, self, 101)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.w.RepairEvery = 0 // the default: 360 looks at 1s
	r.run(t)
	r.wantSteps(t, 1)
	if wd.looks != 1 || len(wd.calls) != 1 {
		t.Errorf("calls %v: want the start's read of EC2 only, then 100 looks through IMDS", wd.calls)
	}
	if wd.imdsCalls != 101 {
		t.Errorf("%d IMDS reads in 100 looks, want 101 (the interfaces once, then one a look)", wd.imdsCalls)
	}
}

// TestUnitHolderTruthCadence: the holder reads EC2 and repairs every
// RepairEvery looks, and at no other look.
func TestUnitHolderTruthCadence(t *testing.T) {
	wd := newWorld(t, self, 25)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.w.RepairEvery = 8
	r.run(t)
	r.wantSteps(t, 1, 9, 17, 25)
	if wd.looks != 4 {
		t.Errorf("%d reads of EC2, want 4 (the start, 3 truth checks)", wd.looks)
	}
}

// TestUnitStandbyProbesOnly: with the default cadence, a standby's looks
// between truth checks probe the holder and read nothing: one read of EC2
// in 50 looks at 1s, 50 probes; a truth check every 90 looks.
func TestUnitStandbyProbesOnly(t *testing.T) {
	wd := newWorld(t, holderB, 182)
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.w.standbyEvery = 0
	r.run(t)
	r.wantSteps(t)
	// EC2 at look 1, then at looks 91 and 181 (standby looks 90, 180).
	if wd.looks != 3 || wd.count("probe 10.0.1."+strconv.Itoa(len(holderB))) != 182 || len(wd.calls) != 185 {
		t.Errorf("%d reads of EC2, %d calls: want 3 reads (looks 1, 91, 181) and a probe at every look", wd.looks, len(wd.calls))
	}
	// Between truth checks it also asks its own IMDS (free) whether the
	// EIP was moved here: the interfaces, then each one's addresses.
	if wd.imdsCalls != 179*3 {
		t.Errorf("%d IMDS reads by a standby whose holder answers, want %d (3 at each of the 179 looks between truth checks)", wd.imdsCalls, 179*3)
	}
	r.wantState(t, StateStandby)
}

// TestUnitStandbyMovedHere: an EIP moved to a standby by another (the
// controller, an operator) shows in its IMDS at the next look, which
// reads EC2 at once and runs the step.
func TestUnitStandbyMovedHere(t *testing.T) {
	wd := newWorld(t, holderB, 6)
	wd.at[5] = func(w *world) { w.holder, w.assoc = self, "eipassoc-by-hand" }
	r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
	r.w.standbyEvery = 0
	r.run(t)
	r.wantSteps(t, 5)
	if req := r.step.calls[0].req; req.Reason != "the EIP was moved to this instance" || req.PreviousHolder != holderB {
		t.Errorf("step request reason %q previous %q", req.Reason, req.PreviousHolder)
	}
	if wd.looks != 2 {
		t.Errorf("%d reads of EC2, want 2 (the start, look 5)", wd.looks)
	}
	r.wantState(t, StateHolder)
}

// TestUnitStandbyFallFreshRead: the probes between truth checks count;
// the one that makes fall reads EC2 at once, and the step runs on that
// fresh read (the probe counted once); a new holder seen by that read is
// not taken over for the old one's probes.
func TestUnitStandbyFallFreshRead(t *testing.T) {
	t.Run("the holder fails", func(t *testing.T) {
		wd := newWorld(t, holderB, 8)
		wd.at[5] = func(w *world) { w.down[holderB] = true }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute})
		r.w.standbyEvery = 0
		r.run(t)
		r.wantSteps(t, 6)
		want := fmt.Sprintf("holder %s fails its health check: tcp:5432 on 10.0.1.%d failed: connection refused: failed 2 looks of fall 2", holderB, len(holderB))
		if len(r.step.calls) != 1 || r.step.calls[0].req.Reason != want {
			t.Errorf("reason %q, want %q", r.step.calls[0].req.Reason, want)
		}
		// EC2: the start, the fresh read at look 6; the IMDS of this
		// instance checked before the takeover, then its own IMDS looks.
		if wd.looks != 2 || r.logCount(`msg="the holder failed a look"`) != 2 {
			t.Errorf("%d reads of EC2, want 2 (start, fall); %d failed looks logged, want 2\n%s", wd.looks, r.logCount(`msg="the holder failed a look"`), r.logs)
		}
		if v := value(t, r.w.Metrics, "eipclaim_holder_failed_looks_total", "db"); v != 2 {
			t.Errorf("eipclaim_holder_failed_looks_total %v, want 2", v)
		}
		r.wantState(t, StateHolder)
	})
	t.Run("the fresh read shows a new holder", func(t *testing.T) {
		wd := newWorld(t, holderB, 9)
		wd.at[4] = func(w *world) { w.down[holderB] = true }
		wd.at[5] = func(w *world) { w.moveTo(other) } // the controller moved it
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute})
		r.w.standbyEvery = 0
		r.run(t)
		r.wantSteps(t)
		// look 5: holderB's second failed probe, then the fresh read
		// shows other: examined (answers), the count starts over.
		if n := wd.count("probe 10.0.1." + strconv.Itoa(len(other))); n != 5 {
			t.Errorf("%d probes of the new holder, want 5 (looks 5 to 9): %v", n, wd.calls)
		}
		if len(r.hooks.envs) != 1 {
			t.Errorf("hooks %+v: on_standby once", r.hooks.envs)
		}
	})
}

// TestUnitStandbyWithoutHealthCheck: no free signal: the holder is
// examined through the API at the truth checks only, and every look after
// a failed examination until fall.
func TestUnitStandbyWithoutHealthCheck(t *testing.T) {
	wd := newWorld(t, holderB, 30)
	wd.at[12] = func(w *world) { w.states[holderB] = decide.StateStopped }
	r := newRig(t, wd, &config.Role{}, config.WatchSettings{Fall: 3})
	r.w.standbyEvery = 10
	r.run(t)
	// Truth checks at looks 1, 11, 21 (the holder stopped: fail 1), then
	// looks 22 and 23: fall, the step at 23.
	r.wantSteps(t, 23)
	if n := wd.count("health " + holderB); n != 5 || wd.looks != 5 {
		t.Errorf("%d reads of the holder's health, %d of the EIP: want 5 and 5 (looks 1, 11, 21, 22, 23): %v", n, wd.looks, wd.calls)
	}
}

// TestUnitTakeoverRefused: a standby that would take the EIP over does
// not when it is cut off (the holder's probe and its reference fail), when
// its own IMDS does not answer, or when the EC2 API does not answer the
// fresh read: it says why in the log, once a look, and in
// eipclaim_takeover_refused_total; once the cause is gone it takes over.
func TestUnitTakeoverRefused(t *testing.T) {
	for _, tc := range []struct {
		name, reason, log string
		cause             func(w *world)
		cured             func(w *world)
	}{
		{"cut off", decide.RefusedCutOff, "this instance is the one cut off, not taking over",
			func(w *world) { w.refDown = true }, func(w *world) { w.refDown = false }},
		{"its IMDS does not answer", decide.RefusedIMDS, "this instance's own instance metadata (IMDS) does not answer",
			func(w *world) { w.imdsDown = 1000 }, func(w *world) { w.imdsDown = 0 }},
		{"the EC2 API does not answer", decide.RefusedAPI, "the EC2 API does not answer this instance: no move without a fresh read",
			func(w *world) { w.apiDown = 1000 }, func(w *world) { w.apiDown = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wd := newWorld(t, holderB, 12)
			wd.at[3] = func(w *world) { w.down[holderB] = true; tc.cause(w) }
			wd.at[9] = tc.cured
			r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute,
				References: []string{refIP + ":53"}})
			r.w.standbyEvery = 0
			r.run(t)
			if got := r.stepsAt(); len(got) != 1 || got[0] < 9 {
				t.Errorf("the step ran at looks %v, want once, once the cause is gone (look 9 on)\n%s", got, r.logs)
			}
			n := r.logCount(tc.log)
			if n == 0 || refusals(t, r.w.Metrics, tc.reason) != float64(n) {
				t.Errorf("%d refusals logged, %v counted for %s: want as many, at least one\n%s", n, refusals(t, r.w.Metrics, tc.reason), tc.reason, r.logs)
			}
			for _, other := range []string{decide.RefusedCutOff, decide.RefusedIMDS, decide.RefusedAPI, decide.RefusedHoldDown} {
				if other != tc.reason && refusals(t, r.w.Metrics, other) != 0 {
					t.Errorf("refusals for %s counted too", other)
				}
			}
		})
	}
	t.Run("a lasting cut-off reads EC2 seldom", func(t *testing.T) {
		wd := newWorld(t, holderB, 300)
		wd.down[holderB], wd.refDown = true, true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute, References: []string{refIP + ":53"}})
		r.w.standbyEvery = 0 // 90 looks at 1s
		r.run(t)
		r.wantSteps(t)
		// The start; fresh reads at standby looks 1, 2, 4, 8, 16, 32, 64,
		// 128, 218 (+90); truth checks at 90, 180, 270.
		if wd.looks > 14 || refusals(t, r.w.Metrics, decide.RefusedCutOff) < 8 {
			t.Errorf("%d reads of EC2 in 300 looks, %v refusals: want the fresh reads spaced out (at most 14), every one refused",
				wd.looks, refusals(t, r.w.Metrics, decide.RefusedCutOff))
		}
	})
	t.Run("a reference answers: not cut off", func(t *testing.T) {
		wd := newWorld(t, holderB, 5)
		wd.at[3] = func(w *world) { w.down[holderB] = true }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute, References: []string{refIP + ":53"}})
		r.w.standbyEvery = 0
		r.run(t)
		r.wantSteps(t, 4)
		if wd.count("probe "+refIP) != 1 {
			t.Errorf("calls %v: want the reference probed once, before the takeover", wd.calls)
		}
	})
	t.Run("hold_down", func(t *testing.T) {
		wd := newWorld(t, holderB, 6)
		wd.at[3] = func(w *world) { w.moveTo(other); w.down[other] = true }
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{Fall: 2, HoldDown: time.Minute})
		r.run(t)
		r.wantSteps(t)
		if n := r.logCount("refused=hold_down"); n != 3 || refusals(t, r.w.Metrics, decide.RefusedHoldDown) != 3 {
			t.Errorf("%d hold_down refusals logged, %v counted: want 3 (looks 4 to 6)\n%s", n, refusals(t, r.w.Metrics, decide.RefusedHoldDown), r.logs)
		}
	})
}

// TestUnitRequestsPerHour counts the EC2 requests of a watcher in steady
// state over a simulated hour (the fake clock), at 250ms and 5s: a holder
// (its truth checks, each followed by a repair counted as repairCost
// requests: DescribeAddresses, DescribeInstances, one Route 53 record,
// the role table), a standby with a health_check, and one without. This
// checks the cadence; the real figure is the bench's.
func TestUnitRequestsPerHour(t *testing.T) {
	const repairCost = 4
	for _, interval := range []time.Duration{250 * time.Millisecond, 5 * time.Second} {
		for _, tc := range []struct {
			name   string
			holder string
			hc     config.HealthCheck
		}{{"holder", self, hc5432}, {"standby", holderB, hc5432}, {"standby without health_check", holderB, config.HealthCheck{}}} {
			t.Run(interval.String()+"/"+tc.name, func(t *testing.T) {
				looks := int(time.Hour / interval)
				wd := newWorld(t, tc.holder, looks+1)
				r := newRig(t, wd, &config.Role{HealthCheck: tc.hc}, config.WatchSettings{Interval: interval})
				r.w.RepairEvery, r.w.standbyEvery = 0, 0
				var start int
				wd.at[2] = func(w *world) { start = w.ec2Requests() } // after the start's look
				r.run(t)
				repairs := max(len(r.step.calls)-1, 0) // the start's step is not steady state
				n := wd.ec2Requests() - start + repairCost*repairs
				t.Logf("%s at %s: %d EC2 requests (%d reads of the EIP, %d repairs) in an hour of %d looks",
					tc.name, interval, n, wd.looks, repairs, looks)
				if n > 60 || n == 0 {
					t.Errorf("%d requests per hour, want from 1 to 60", n)
				}
			})
		}
	}
}

// TestUnitIMDSHangs: an IMDS that answers nothing holds a look up for
// imdsTimeout at most: the holder reads EC2 instead (and says so once),
// a standby probes on.
func TestUnitIMDSHangs(t *testing.T) {
	t.Run("holder", func(t *testing.T) {
		wd := newWorld(t, self, 3)
		wd.at[2] = func(w *world) { w.imdsHang = true }
		r := newRig(t, wd, &config.Role{}, config.WatchSettings{})
		began := time.Now()
		r.run(t)
		if d := time.Since(began); d > 4*imdsTimeout {
			t.Errorf("3 looks took %s with IMDS hanging, want about 2 × %s", d, imdsTimeout)
		}
		if wd.looks != 3 || r.logCount("IMDS did not answer: reading EC2 at every look until it does") != 1 {
			t.Errorf("%d reads of EC2, want 3 (each look, IMDS not answering), said once\n%s", wd.looks, r.logs)
		}
		r.wantState(t, StateHolder)
	})
	t.Run("standby", func(t *testing.T) {
		wd := newWorld(t, holderB, 3)
		wd.imdsHang = true
		r := newRig(t, wd, &config.Role{HealthCheck: hc5432}, config.WatchSettings{})
		r.w.standbyEvery = 0
		r.run(t)
		if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 3 {
			t.Errorf("%d probes in 3 looks with IMDS hanging, want 3: %v", n, wd.calls)
		}
	})
}

// TestUnitPrivateRequestsPerHour counts, as TestUnitRequestsPerHour does,
// the AWS requests of a watcher of a secondary private IP and of an
// overlay address over a simulated hour, holder and standby with a
// health_check, at 250ms and 5s. A read and a holder's repair cost what
// internal/claim's TestSteadyReadCost measures against moto (this
// instance and its subnet described once, at the first read):
//   - secondary: a read, one DescribeNetworkInterfaces; a repair, the
//     claim of the address held (DescribeInstances, two
//     DescribeNetworkInterfaces) and the publications (a Route 53 record,
//     a read of the role table);
//   - overlay: a read, one DescribeRouteTables and one read of the role
//     table; a repair, the claim (DescribeInstances, DescribeVpcs,
//     DescribeRouteTables, a read of the table) and the publications;
//     and the holder's conditional read of the table at every look.
//
// EC2 and Route 53 requests (the token buckets) are held to 60 an hour;
// S3's are counted apart.
func TestUnitPrivateRequestsPerHour(t *testing.T) {
	type cost struct{ api, s3 int } // EC2 and Route 53; S3
	for _, interval := range []time.Duration{250 * time.Millisecond, 5 * time.Second} {
		for _, tc := range []struct {
			name         string
			holder       string
			spec         func() *config.Role
			read, repair cost
		}{
			{"secondary holder", self, func() *config.Role { return &config.Role{PrivateAddress: privAddr, HealthCheck: hc5432} }, cost{1, 0}, cost{3 + 1, 1}},
			{"secondary standby", holderB, func() *config.Role { return &config.Role{PrivateAddress: privAddr, HealthCheck: hc5432} }, cost{1, 0}, cost{}},
			{"overlay holder", self, overlayRole, cost{1, 1}, cost{3 + 1, 1 + 1}},
			{"overlay standby", holderB, overlayRole, cost{1, 1}, cost{}},
		} {
			t.Run(interval.String()+"/"+tc.name, func(t *testing.T) {
				looks := int(time.Hour / interval)
				wd := newWorld(t, tc.holder, looks+1)
				r := newRig(t, wd, tc.spec(), config.WatchSettings{Interval: interval})
				r.w.RepairEvery, r.w.standbyEvery = 0, 0
				var reads, health, tables int
				wd.at[2] = func(w *world) { // after the start's look
					reads, health, tables = w.looks, w.countPrefix("health "), w.countPrefix("table ")
				}
				r.run(t)
				repairs := max(len(r.step.calls)-1, 0) // the start's step is not steady state
				reads, health = wd.looks-reads, wd.countPrefix("health ")-health
				api := tc.read.api*reads + 2*health + tc.repair.api*repairs
				s3 := tc.read.s3*reads + tc.repair.s3*repairs
				s3Looks := wd.countPrefix("table ") - tables
				t.Logf("%s at %s: %d EC2 and Route 53 requests, %d S3 reads of the role table at truth checks and repairs, %d conditional ones at looks (%d reads, %d repairs, %d looks)",
					tc.name, interval, api, s3, s3Looks, reads, repairs, looks)
				if api > 60 || api == 0 {
					t.Errorf("%d EC2 and Route 53 requests per hour, want from 1 to 60", api)
				}
				if tc.holder == self && r.w.overlayOnly() && s3Looks < looks-looks/10 {
					t.Errorf("%d conditional reads of the table in %d looks, want one a look", s3Looks, looks)
				}
				if !(tc.holder == self && r.w.overlayOnly()) && s3Looks != 0 {
					t.Errorf("%d reads of the role table at looks, want none (only an overlay's holder reads it)", s3Looks)
				}
			})
		}
	}
}
