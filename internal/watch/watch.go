// Package watch is the driver of `eipclaim watch`: it looks at a role's
// Elastic IP every interval and decides when to run the failover step
// (internal/failover). A watcher is in one of two states, holder or
// standby, and runs the state's hook when it enters it, including at
// start.
//
// A look costs the account no request in steady state. A holder reads its
// own instance metadata (IMDS, local to the instance, outside the
// account's token buckets): the public addresses of its interfaces list
// the EIP while it holds it. A standby with a health_check probes the
// holder's private IP, learnt at the last EC2 read (free). EC2 is read
// (DescribeAddresses) on a slow cadence, the truth check (holder: with
// the repair of its publications, every holderCheckEvery; standby: every
// standbyCheckEvery, standbyAPIEvery without a health_check, which then
// examines the holder through the EC2 API, DescribeInstances and
// DescribeInstanceStatus), and at once on suspicion: IMDS no longer lists
// the EIP, or the holder failed Fall probes in a row. Only then, on that
// fresh read, does a standby decide (decide.Standby) to run the failover
// step, whose engine examines the holder again through the API and makes
// the move as a compare-and-swap, so that of several standbys exactly one
// wins: nothing decided from a probe alone changes AWS without a fresh
// read. Before it takes the EIP from another instance, a standby checks
// its own reach (its IMDS, the API, its reference targets: decide.Refusal)
// and does not take over when it is the one cut off. A holder seen new
// within HoldDown is not taken over for failing probes, unless it is in a
// stopped state (decide.Stopped).
//
// What to do at each look is decided by decide.Standby; the watcher does
// the reading, the waiting, the step, the hooks, the metrics and the log,
// through small interfaces (Looker, Stepper, Metadata, failover.HookRunner,
// retry.Clock), so that its state machine is tested without EC2.
//
// A holder stands down only on a loss it has confirmed: by two sources
// that agree (IMDS, which listed the EIP and no longer does, and a read
// of EC2 that shows it elsewhere or free), or else, since a read may be
// stale (EC2's eventual consistency), by reading the EIP again after
// lossConfirm's delays; one read that shows it here keeps this instance
// holder. IMDS alone never demotes: an answer that does not list the EIP
// makes the look read EC2.
//
// A role with a secondary private IP (private_address) and no EIP is
// watched the same way, the address in place of the EIP: IMDS lists it
// among the interface's local-ipv4s, EC2 is read by the address
// (DescribeNetworkInterfaces: Looker.Secondary, seen as an Address by
// claim.SecondaryStatus.AsAddress), the standby probes the holder
// interface's primary private IP (what the claim engine probes when it
// re-judges), and decide.Standby decides as for an EIP. A role with both
// is watched through its EIP, which leads; the step moves both, and the
// holder's truth check claims the private address again. With
// local_interface, a watcher entering standby takes the address off the
// local interface (Local) before on_standby.
//
// A role with an overlay address (overlay) and no EIP is watched the same
// way again, through the role table's entry (the overlay's arbiter) and
// the listed route tables (Looker.Overlay, seen as an Address by
// claim.OverlayStatus.AsAddress): the standby probes the holder
// instance's primary private IP (learnt from the instance once per
// holder), and after fall failed probes reads the entry and the routes
// afresh and runs the step, whose engine re-judges the holder and moves
// the address by compare-and-swap on the table, then the routes. No IMDS
// lists an overlay address nor shows a route table: a holder's look
// between truth checks reads the role table conditionally (Changes: an
// S3 GetObject with If-None-Match, answered 304 without a body while the
// table is unchanged; S3 requests are outside EC2's token buckets), and
// asks its IMDS whether it answers (a look that finds it silent reads
// the table and the routes). When the table's entry names another holder
// at a higher epoch, the look reads the entry and the routes once and
// stands down at once: the table is the overlay's arbiter, and alone
// decides a loss (no confirming reads). Routes pointed elsewhere while
// the entry names this instance are repaired at the truth check (every
// holderCheckEvery), or at once when a look reads them.
package watch

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/table"
)

// The states of a watcher.
const (
	StateHolder  = failover.EventHolder
	StateStandby = failover.EventStandby
)

// Notifier tells the service manager about the watcher (systemd's
// sd_notify); nil tells nobody.
type Notifier interface {
	Ready()
	Watchdog()
	// WatchdogEvery is how often Watchdog must be called; 0 when never.
	WatchdogEvery() time.Duration
}

// Looker is what the watcher learns from the EC2 API and the holder's
// probe; *claim.Engine has it. Addresses reads the EIP
// (DescribeAddresses), Secondary a role's secondary private IP
// (DescribeNetworkInterfaces by the address), Overlay a role's overlay
// address (the role table's entry, DescribeRouteTables).
type Looker interface {
	Addresses(ctx context.Context, spec *config.Role, withHealth bool) ([]claim.Address, error)
	Secondary(ctx context.Context, role string, spec *config.Role, withHealth bool) (*claim.SecondaryStatus, error)
	Overlay(ctx context.Context, role string, spec *config.Role, tbl claim.RoleTable, withHealth bool) (*claim.OverlayStatus, error)
	Health(ctx context.Context, holder, privateIP string, healthCheck config.HealthCheck) (*claim.Health, error)
	Probe(ctx context.Context, ip string, healthCheck config.HealthCheck) (bool, string)
}

// Metadata reads this instance's metadata (IMDS), one path at a time,
// such as "network/interfaces/macs/"; *imds.Client has it. An error with
// HTTPStatusCode 404 is a path that does not exist (an interface without
// public addresses).
type Metadata interface {
	Metadata(ctx context.Context, path string) (string, error)
}

// TableChanges reads the role table unless it is unchanged since the
// ETag given (a conditional GetObject); *table.Store has it
// (ReadIfChanged).
type TableChanges interface {
	ReadIfChanged(ctx context.Context, etag string) (*table.Snapshot, bool, error)
}

// Stepper runs the failover step (claim, publish, on_holder hook);
// *failover.Step has it.
type Stepper interface {
	Run(ctx context.Context, req failover.Request) (*failover.Outcome, error)
}

// Watcher watches one role.
type Watcher struct {
	Role       string
	Spec       *config.Role
	Settings   config.WatchSettings
	InstanceID string // this instance
	Engine     Looker
	Step       Stepper
	Publishers []publish.Publisher
	// Table is the role table, the arbiter of an overlay address (the
	// table publisher's store): read with the routes at an overlay
	// role's looks. nil: the role has no overlay (the configuration
	// requires repository: for one).
	Table claim.RoleTable
	// Changes reads the role table at an overlay holder's looks between
	// truth checks (conditionally: free of a body while it is unchanged),
	// so that a deposed holder stands down within a look. nil: it learns
	// of the loss at the truth check.
	Changes TableChanges
	// Hooks run on_standby here and on_holder through the step, which
	// takes the same interface; nil: none.
	Hooks failover.HookRunner
	// Local takes the role's private address off the local interface
	// (local_interface) when this instance enters standby, before
	// on_standby; the step puts it on. nil: the hooks do it.
	Local *failover.Local
	// Clock is the time of the looks, the waits between them and the
	// hold-down; retry.RealClock when nil.
	Clock   retry.Clock
	Log     *slog.Logger
	Metrics *Metrics // nil: none
	Notify  Notifier // nil: none
	// AfterLook, when set, is called after every look (the metrics file).
	AfterLook func()
	// Config is the configuration the watcher was started with, and
	// Reload, when set, reads it again from where it came from: every
	// ConfigEvery (default DefaultConfigEvery) the watcher compares them
	// and warns when they differ (it applies nothing: a restart does).
	Config      *config.Config
	Reload      func(context.Context) (*config.Config, error)
	ConfigEvery time.Duration
	// IMDS is this instance's metadata: the holder's look, and a
	// standby's check of its own reach before a takeover. nil: none (the
	// holder reads EC2 at every look).
	IMDS Metadata
	// RepairEvery is how many looks a holder makes between two truth
	// checks (a DescribeAddresses) each followed by the step that repairs
	// its DNS publications and audit tags; default: holderCheckEvery (at
	// least every look).
	RepairEvery int
	// TruthEvery, when set, is the period of every truth check, the
	// holder's and a standby's, in place of holderCheckEvery,
	// standbyCheckEvery and standbyAPIEvery (tests shorten it).
	TruthEvery time.Duration

	state      string
	fails      int           // consecutive failed looks at the current holder
	assoc      string        // the association the failures count against
	seenAt     time.Time     // when that association was first seen (or tagged)
	looks      int           // looks as holder, for RepairEvery
	apiErrors  int           // consecutive looks the API did not answer
	badEpoch   string        // the EIP's epoch tag last reported as not an epoch
	stopped    string        // the stopped holder last reported, left in place
	otherLooks int           // looks as standby, for the holder's state when not taking over
	other      string        // the other holder the last look saw, "" when none
	watching   string        // why this watcher only watches, as last logged
	seen       claim.Address // the EIP as the last EC2 read saw it
	mac        string        // the interface (MAC) IMDS last listed the EIP on
	imdsSaw    bool          // IMDS listed the EIP since this instance became holder
	imdsNote   string        // what was last logged of IMDS, "" when it lists the EIP
	drift      bool          // the last read: the table names this instance, not every route points at it
	heldEpoch  int64         // the epoch of this instance's tenure (its step's, or its last read's)
	tableETag  string        // the ETag of the role table as an overlay holder's look last read it
	tableEntry table.Entry   // the role's entry in that read
	tableNote  bool          // a look could not read the role table (logged once until it can)
	sbLooks    int           // looks as standby, for standbyEvery
	// refusals counts the takeovers refused in a row; until the standby
	// look escalate, failed probes do not read EC2 again (1, 2, 4...
	// looks, up to standbyEvery): a refusal that lasts costs no more
	// than the truth checks.
	refusals, escalate int
	// standbyEvery is how many looks a standby makes between two truth
	// checks; stateEvery how many truth checks of a standby that only
	// watches between two reads of the holder's state (defaults: Run).
	standbyEvery, stateEvery int
	// lossConfirm are the delays before the reads that confirm a loss;
	// lossConfirmDelays when nil (tests shorten them).
	lossConfirm []time.Duration
}

// lossConfirmDelays: a holder that sees the EIP elsewhere or free reads
// it again 1s, then 2s more later, and stands down only if every read
// shows the loss. EC2 documents no bound on its eventual consistency; a
// mutation typically shows within a second or two (the proofs' stale-read
// mode: 2s), and 3s keeps a real loss followed promptly, at the cost of
// two DescribeAddresses per suspected loss.
var lossConfirmDelays = []time.Duration{time.Second, 2 * time.Second}

// LossConfirmation is how long a holder takes, after the look that first
// sees the EIP elsewhere, to confirm the loss and stand down (the sum of
// the confirming reads' delays): a deposed holder runs on_standby within
// an interval plus this.
func LossConfirmation() time.Duration {
	var d time.Duration
	for _, x := range lossConfirmDelays {
		d += x
	}
	return d
}

// The slow cadence: a watcher's EC2 reads in steady state, whatever the
// interval (a look more often than these needs no request: IMDS, the
// probe). Sized to stay under 60 AWS requests an hour per watcher:
//   - holder: a DescribeAddresses, then the repair step (a DescribeAddresses
//     and a DescribeInstances, a read per DNS record, a read of the role
//     table): 5 requests with one record and a table, 10 times an hour;
//   - standby with a health_check: a DescribeAddresses, 40 times an hour;
//   - standby without: a DescribeAddresses and the holder through the API
//     (DescribeInstances, DescribeInstanceStatus), 15 times an hour; after
//     a failed examination, every look until the holder answers or fall.
//
// A secondary private IP's and an overlay address's watchers keep to the
// same cadence (TestUnitPrivateRequestsPerHour: 50 as holder, 40 as
// standby, plus the role table's S3 reads; an overlay holder also reads
// the table conditionally at every look, outside EC2's buckets).
const (
	holderCheckEvery  = 6 * time.Minute
	standbyCheckEvery = 90 * time.Second
	standbyAPIEvery   = 4 * time.Minute
	// stateChecks: a standby that only watches reads the holder's state
	// (is it stopped?) every this many truth checks.
	stateChecks = 4
)

// The bounds of one look and of one run of the step.
const (
	// imdsTimeout bounds a look's reads of IMDS (it answers in
	// milliseconds): an IMDS that hangs makes the holder read EC2, and
	// does not hold up a standby's probes. tableTimeout bounds an overlay
	// holder's conditional read of the role table at a look likewise.
	imdsTimeout    = time.Second
	tableTimeout   = time.Second
	minLookTimeout = 15 * time.Second
	maxLookTimeout = time.Minute
	stepTimeout    = 2 * time.Minute
	maxBackoff     = 8 // times the interval, for an API that does not answer
)

// MaxSilence bounds how long the watch loop goes without pinging the
// service manager's watchdog: one look (its reads), then one run of the
// step, whose move is finished within the claim engine's finishing window
// past the step's deadline. Hooks, however long their timeout, ping it
// while they run (the watcher wires failover.Hooks.Heartbeat), and so does
// the wait between looks. The shipped unit's WatchdogSec is longer (a test
// keeps them in step).
const MaxSilence = maxLookTimeout + stepTimeout + claim.DefaultFinishTimeout

// State returns the watcher's state: holder, standby, or "" before the
// first look.
func (w *Watcher) State() string { return w.state }

// Run watches until ctx ends, then returns nil: a look in progress is
// abandoned (it changes nothing), a move in progress is finished by the
// claim engine (a claim never leaves the EIP on nobody), and once the EIP
// has moved here the step's publications and the on_holder hook finish
// too (see failover.Step.Run) before Run returns. A hook that does not
// follow a move is sent SIGTERM, then SIGKILL after its grace (see
// failover.Hooks).
func (w *Watcher) Run(ctx context.Context) error {
	if w.Spec.Pool != nil {
		return errors.New("watch needs a role with allocation_id or public_ip, private_address or overlay, not a pool")
	}
	if w.RepairEvery <= 0 {
		w.RepairEvery = everyLooks(cmp.Or(w.TruthEvery, holderCheckEvery), w.Settings.Interval)
	}
	if w.standbyEvery <= 0 {
		period := standbyAPIEvery
		if w.Spec.HealthCheck.Set() {
			period = standbyCheckEvery
		}
		w.standbyEvery = everyLooks(cmp.Or(w.TruthEvery, period), w.Settings.Interval)
	}
	if w.stateEvery <= 0 {
		w.stateEvery = stateChecks
	}
	w.Log = w.Log.With("role", w.Role, "instance_id", w.InstanceID)
	w.Log.Info("watching", "private_address", w.Spec.PrivateAddress, "overlay_address", overlayAddress(w.Spec), "local_interface", w.Spec.LocalInterface, "interval", w.Settings.Interval.String(), "fall", w.Settings.Fall, "hold_down", w.Settings.HoldDown.String(),
		"takeover", string(w.Spec.EffectiveTakeover()), "health_check", w.Spec.HealthCheck,
		"truth_check_as_holder", (time.Duration(w.RepairEvery) * w.Settings.Interval).String(),
		"truth_check_as_standby", (time.Duration(w.standbyEvery) * w.Settings.Interval).String())
	if w.Reload != nil && w.Config != nil {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.watchConfig(cctx) }()
		defer func() { stop(); <-done }()
	}
	for first := true; ; first = false {
		w.look(ctx)
		if ctx.Err() != nil {
			w.Log.Info("stopping: nothing in progress", "state", w.state)
			return nil
		}
		if w.AfterLook != nil {
			w.AfterLook()
		}
		if w.Notify != nil {
			if first {
				w.Notify.Ready()
			}
			w.Notify.Watchdog()
		}
		if !w.wait(ctx, w.nextWait()) {
			w.Log.Info("stopping", "state", w.state)
			return nil
		}
	}
}

// everyLooks is how many looks at interval make period, at least one.
func everyLooks(period, interval time.Duration) int {
	return max(1, int(period/interval))
}

// nextWait is the interval, longer after looks the API did not answer
// (throttled, unreachable): up to maxBackoff intervals.
func (w *Watcher) nextWait() time.Duration {
	return w.Settings.Interval << min(w.apiErrors, 3) // 1, 2, 4, 8 intervals
}

// clock is the watcher's Clock, the wall clock when nil.
func (w *Watcher) clock() retry.Clock {
	if w.Clock == nil {
		return retry.RealClock
	}
	return w.Clock
}

// wait sleeps d, pinging the watchdog meanwhile; false when ctx ended.
func (w *Watcher) wait(ctx context.Context, d time.Duration) bool {
	c := w.clock()
	end := c.Now().Add(d)
	for {
		left := end.Sub(c.Now())
		if left <= 0 {
			return true
		}
		step := left
		if w.Notify != nil {
			if every := w.Notify.WatchdogEvery(); every > 0 {
				step = min(step, every)
			}
		}
		if c.Sleep(ctx, step) != nil || ctx.Err() != nil {
			return false
		}
		if w.Notify != nil {
			w.Notify.Watchdog()
		}
	}
}

// look is one look at the EIP and what follows from it: for a holder,
// its IMDS, and EC2 when the truth check is due or IMDS does not list the
// EIP; for a standby, its probe of the holder, and EC2 when the truth
// check is due or the holder failed fall probes; at start, EC2.
func (w *Watcher) look(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, min(max(w.Settings.Interval, minLookTimeout), maxLookTimeout))
	defer cancel()
	switch w.state {
	case StateHolder:
		w.looks++
		due := w.looks%w.RepairEvery == 0 || w.apiErrors > 0
		var src imdsAnswer
		if !due {
			if w.overlayOnly() && w.tableNamesOther(lctx) {
				w.lookEC2(ctx, lctx, ec2Look{imds: tableOther})
				return
			}
			if src = w.holderIMDS(lctx); src == imdsListed || src == imdsAnswered {
				w.Metrics.freeLook(w.Role)
				return
			}
		}
		w.lookEC2(ctx, lctx, ec2Look{repair: due, imds: src})
	case StateStandby:
		w.sbLooks++
		due := w.sbLooks%w.standbyEvery == 0 || w.apiErrors > 0 || w.fails > 0 && !w.Spec.HealthCheck.Set()
		switch {
		case due:
			w.lookEC2(ctx, lctx, ec2Look{})
		case w.movedHere(lctx):
			w.Log.Info("IMDS lists the EIP on this instance: reading EC2", "public_ip", w.seen.PublicIP)
			w.lookEC2(ctx, lctx, ec2Look{})
		case w.probes():
			w.probeLook(ctx, lctx)
		default:
			w.Metrics.freeLook(w.Role) // nothing to probe: the look waits for the truth check
		}
	default:
		w.lookEC2(ctx, lctx, ec2Look{})
	}
}

// ec2Look is what led to a look's read of EC2.
type ec2Look struct {
	repair bool          // the holder's truth check: repair after it
	imds   imdsAnswer    // what the holder's IMDS said at this look
	probe  *decide.Probe // the standby's probe that failed fall times: decide on this read
}

// read reads the role's address through EC2: its EIP (DescribeAddresses)
// when it has one, which leads for a role that has a private address
// too (the step moves both, and the holder's truth check repairs the
// private address); else its secondary private IP
// (DescribeNetworkInterfaces), seen as an EIP's Address (AsAddress).
func (w *Watcher) read(ctx context.Context) (claim.Address, error) {
	if w.overlayOnly() {
		return w.readOverlay(ctx)
	}
	if !w.Spec.HasEIP() {
		s, err := w.Engine.Secondary(ctx, w.Role, w.Spec, false)
		if err != nil {
			return claim.Address{}, err
		}
		return s.AsAddress(), nil
	}
	addrs, err := w.Engine.Addresses(ctx, w.Spec, false)
	if err != nil {
		return claim.Address{}, err
	}
	return addrs[0], nil
}

// overlayOnly reports whether the role's address is an overlay address
// alone (no EIP, which would lead).
func (w *Watcher) overlayOnly() bool {
	return w.Spec.Overlay != nil && !w.Spec.HasEIP()
}

// overlayAddress is the role's overlay address, "" when it has none.
func overlayAddress(spec *config.Role) string {
	if spec.Overlay == nil {
		return ""
	}
	return spec.Overlay.Address
}

// readOverlay reads the role's overlay address (the role table's entry
// and the listed route tables), seen as an Address (AsAddress), with the
// holder's primary private IP when a standby probes it: the one read
// before, or, for a new holder, the instance's (DescribeInstances and
// DescribeInstanceStatus, once per holder). A holder whose IP cannot be
// read fails the look: no probe of nothing.
func (w *Watcher) readOverlay(ctx context.Context) (claim.Address, error) {
	s, err := w.Engine.Overlay(ctx, w.Role, w.Spec, w.Table, false)
	if err != nil {
		return claim.Address{}, err
	}
	a := s.AsAddress()
	w.drift = s.Holder == w.InstanceID && !s.Consistent()
	if a.Holder == "" || a.Holder == w.InstanceID || !w.Spec.HealthCheck.Set() {
		return a, nil
	}
	if a.Holder == w.seen.Holder && w.seen.PrivateIP != "" {
		a.PrivateIP = w.seen.PrivateIP
		return a, nil
	}
	h, err := w.Engine.Health(ctx, a.Holder, "", config.HealthCheck{})
	if err != nil {
		return claim.Address{}, err
	}
	if h.PrivateIP == "" {
		return claim.Address{}, errors.New("the overlay's holder " + a.Holder + " has no private IP to probe (state " + h.State + ")")
	}
	a.PrivateIP = h.PrivateIP
	return a, nil
}

// watched is the address the holder's IMDS lists while this instance
// holds the role (the EIP's public IP, else the private address), and
// the list of the interface's that has it: public-ipv4s or local-ipv4s.
func (w *Watcher) watched() (ip, list string) {
	if w.Spec.HasEIP() {
		return w.seen.PublicIP, "public-ipv4s"
	}
	return w.Spec.PrivateAddress, "local-ipv4s"
}

// lookEC2 reads the role's address through EC2 (read) and does what
// follows from it.
func (w *Watcher) lookEC2(ctx, lctx context.Context, o ec2Look) {
	a, err := w.read(lctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.apiErrors++
		w.Metrics.look(w.Role, false)
		if o.probe != nil {
			// The takeover would need this read.
			w.Metrics.refused(w.Role, decide.RefusedAPI)
			w.refusedAgain()
			w.Log.Warn("not taking over: the holder failed fall probes, but the EC2 API does not answer this instance: no move without a fresh read",
				"holder", w.seen.Holder, "refused", decide.RefusedAPI, "error", err, "next_look_in", w.nextWait().String())
			return
		}
		w.Log.Warn("look failed: nothing changes until the EC2 API answers", "error", err, "next_look_in", w.nextWait().String())
		return
	}
	w.apiErrors = 0
	w.Metrics.look(w.Role, true)
	if w.state == StateHolder && a.Holder != w.InstanceID {
		switch o.imds {
		case imdsGone:
			w.Log.Info("IMDS no longer lists the EIP on this instance, and EC2 shows it elsewhere or free: the loss is confirmed by both", "seen_holder", a.HolderName())
		case tableOther:
			// The table is the overlay's arbiter: its entry alone decides.
			w.Log.Info("the role table, the overlay's arbiter, names another holder at a higher epoch: the loss needs no confirming read", "seen_holder", a.HolderName(), "table_epoch", w.tableEntry.Epoch)
		default:
			var ok bool
			if a, ok = w.confirmLoss(ctx, lctx, a); !ok {
				return
			}
		}
	}
	w.seen = a
	if n := w.epochOf(a); a.Holder == w.InstanceID {
		w.heldEpoch = n
	}
	if w.state == StateHolder && a.Holder == w.InstanceID {
		if (o.imds == imdsMissing || o.imds == imdsGone) && w.imdsNote != noteMissing {
			w.imdsNote = noteMissing
			w.Log.Warn("IMDS does not list the EIP on this instance's interfaces, while EC2 shows it here: IMDS lags or is not this instance's; "+
				"staying holder, and reading EC2 at every look until IMDS lists it", "public_ip", a.PublicIP)
		}
		// An overlay's routes pointed elsewhere while the table names
		// this instance: the step repairs them now.
		w.asHolder(ctx, a, o.repair || w.drift)
		return
	}
	w.decideLook(ctx, lctx, a, o.probe, true)
}

// probes reports whether a standby's looks between truth checks probe
// the holder: it has a health_check, may take over, and the last read
// showed the EIP on another instance.
func (w *Watcher) probes() bool {
	return w.Spec.HealthCheck.Set() && w.Spec.EffectiveTakeover() != config.TakeoverNever &&
		w.seen.Holder != "" && w.seen.Holder != w.InstanceID && w.seen.PrivateIP != ""
}

// probeLook is a standby's look between truth checks: the probe of the
// holder the last EC2 read showed (free). A failed probe counts; when it
// makes fall (or the decision needs the API), EC2 is read at once and the
// decision taken again on that fresh read, with this probe.
func (w *Watcher) probeLook(ctx, lctx context.Context) {
	a := w.seen
	ok, result := w.Engine.Probe(lctx, a.PrivateIP, w.Spec.HealthCheck)
	if ctx.Err() != nil {
		return
	}
	w.Metrics.freeLook(w.Role)
	p := &decide.Probe{OK: ok, Result: result}
	if !w.decideLook(ctx, lctx, a, p, false) {
		return
	}
	if w.sbLooks < w.escalate {
		w.Log.Debug("the holder still fails its probe; the takeover was refused at a recent look: reading EC2 again later", "holder", a.Holder,
			"refusals", w.refusals, "looks_left", w.escalate-w.sbLooks)
		return
	}
	w.lookEC2(ctx, lctx, ec2Look{probe: p})
}

// refusedAgain spaces out the fresh reads of a standby whose takeover was
// refused (1, 2, 4... looks, up to a truth check's).
func (w *Watcher) refusedAgain() {
	w.refusals++
	w.escalate = w.sbLooks + min(1<<min(w.refusals-1, 16), w.standbyEvery)
}

// imdsAnswer is what a holder's IMDS said of the EIP at a look.
type imdsAnswer int

const (
	imdsUnknown  imdsAnswer = iota // not asked, or it did not answer
	imdsListed                     // it lists the EIP on an interface of this instance
	imdsMissing                    // it answered without the EIP, and never listed it in this tenure
	imdsGone                       // it listed the EIP in this tenure and no longer does
	imdsAnswered                   // it answered (an overlay address, which it does not list)
	tableOther                     // not IMDS: the role table names another overlay holder at a higher epoch
)

// What was last logged of IMDS.
const (
	noteMissing = "missing"
	noteFailed  = "failed"
)

// holderIMDS asks this instance's IMDS whether one of its interfaces has
// the EIP's public IP (network/interfaces/macs/MAC/public-ipv4s): first
// the interface it was last on, else every interface.
func (w *Watcher) holderIMDS(ctx context.Context) imdsAnswer {
	ip, list := w.watched()
	if w.IMDS != nil && w.overlayOnly() {
		return w.imdsAnswers(ctx)
	}
	if w.IMDS == nil || ip == "" {
		return imdsUnknown
	}
	m, err := w.imdsFind(ctx, ip, list, w.mac)
	if err == nil && m == "" && w.mac != "" {
		// Not on the interface it was on: look through them all.
		m, err = w.imdsFind(ctx, ip, list, "")
	}
	switch {
	case err != nil:
		return w.imdsFailed(ctx, err)
	case m != "":
		w.mac, w.imdsSaw = m, true
		if w.imdsNote != "" {
			w.imdsNote = ""
			w.Log.Info("IMDS lists the EIP on this instance: looks read IMDS only", "public_ip", ip, "mac", m)
		}
		return imdsListed
	}
	w.mac = ""
	if w.imdsSaw {
		return imdsGone
	}
	return imdsMissing
}

// imdsAnswers is the holder's look at an overlay address, which no IMDS
// lists: whether this instance's IMDS answers (imdsAnswered), a sign that
// the instance and its network are alive; when it does not, the look
// reads the table and the routes.
func (w *Watcher) imdsAnswers(ctx context.Context) imdsAnswer {
	ictx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	if _, err := w.IMDS.Metadata(ictx, "instance-id"); err != nil {
		return w.imdsFailed(ctx, err)
	}
	if w.imdsNote != "" {
		w.imdsNote = ""
		w.Log.Info("IMDS answers again: looks between truth checks read nothing remote (no IMDS lists an overlay address)")
	}
	return imdsAnswered
}

// tableNamesOther reads the role table at an overlay holder's look
// (Changes.ReadIfChanged, with the ETag of its last read: S3 answers 304
// without a body while the table is unchanged), within tableTimeout, and
// reports whether the role's entry names another holder at an epoch
// above this instance's tenure. A table that cannot be read counts for
// nothing (said once until it can): the look goes on as without it.
func (w *Watcher) tableNamesOther(ctx context.Context) bool {
	if w.Changes == nil {
		return false
	}
	tctx, cancel := context.WithTimeout(ctx, tableTimeout)
	defer cancel()
	snap, changed, err := w.Changes.ReadIfChanged(tctx, w.tableETag)
	if err != nil {
		if ctx.Err() == nil && !w.tableNote {
			w.tableNote = true
			w.Log.Warn("could not read the role table at a look: it counts for nothing; the truth check reads it again", "error", err)
		}
		return false
	}
	if w.tableNote {
		w.tableNote = false
		w.Log.Info("the role table answers again")
	}
	if changed {
		w.tableETag, w.tableEntry = snap.ETag, snap.Doc.Roles[w.Role]
	}
	e := w.tableEntry
	return e.Holder != "" && e.Holder != w.InstanceID && e.Epoch > w.heldEpoch
}

// movedHere reports whether this standby's IMDS lists the EIP on one of
// its interfaces: moved here (by the controller, an operator), which a
// read of EC2 confirms at once. Free; an IMDS that does not answer says
// nothing.
func (w *Watcher) movedHere(ctx context.Context) bool {
	ip, list := w.watched()
	if w.IMDS == nil || ip == "" {
		return false
	}
	m, err := w.imdsFind(ctx, ip, list, "")
	return err == nil && m != ""
}

// imdsFind looks for ip among the addresses IMDS lists for this
// instance's interfaces (network/interfaces/macs/MAC/LIST: public-ipv4s
// for an EIP, local-ipv4s for a private address): on mac alone when set,
// else on every interface. It returns the interface's MAC, "" when IMDS
// answered without ip.
func (w *Watcher) imdsFind(ctx context.Context, ip, list, mac string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	macs := []string{mac}
	if mac == "" {
		all, err := w.IMDS.Metadata(ctx, "network/interfaces/macs/")
		if err != nil {
			return "", err
		}
		macs = nil
		for m := range strings.FieldsSeq(all) {
			macs = append(macs, strings.TrimSuffix(m, "/"))
		}
	}
	for _, m := range macs {
		ips, err := w.IMDS.Metadata(ctx, "network/interfaces/macs/"+m+"/"+list)
		if err != nil && !notFound(err) {
			return "", err
		}
		if err == nil && slices.Contains(strings.Fields(ips), ip) {
			return m, nil
		}
	}
	return "", nil
}

// imdsFailed: IMDS did not answer the holder's look, which reads EC2
// instead. Said once until IMDS lists the EIP again.
func (w *Watcher) imdsFailed(ctx context.Context, err error) imdsAnswer {
	if ctx.Err() == nil && w.imdsNote != noteFailed {
		w.imdsNote = noteFailed
		w.Log.Warn("IMDS did not answer: reading EC2 at every look until it does", "error", err)
	}
	return imdsUnknown
}

// notFound reports whether err is IMDS answering 404: the path does not
// exist (an interface with no public address).
func notFound(err error) bool {
	var sc interface{ HTTPStatusCode() int }
	return errors.As(err, &sc) && sc.HTTPStatusCode() == http.StatusNotFound
}

// confirmLoss reads the EIP again, after each of lossConfirm's delays,
// when the holder's look showed it elsewhere or free (a). A read may be
// stale (EC2's eventual consistency: different reads may be answered by
// replicas that have not seen the latest association yet): the loss counts
// only if every read shows it. It returns the latest state read; false
// when the look ends unconfirmed (ctx ended, or the API did not answer:
// this look counts for nothing, and the next one looks again).
func (w *Watcher) confirmLoss(ctx, lctx context.Context, a claim.Address) (claim.Address, bool) {
	delays := w.lossConfirm
	if delays == nil {
		delays = lossConfirmDelays
	}
	first := a.HolderName()
	for i, d := range delays {
		if !w.wait(lctx, d) {
			return a, false
		}
		now, err := w.read(lctx)
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Warn("could not confirm that this instance lost the EIP; staying holder until a look confirms it", "seen_holder", first, "error", err)
			}
			return a, false
		}
		if now.Holder == w.InstanceID {
			w.Log.Info("a stale read showed the EIP elsewhere (EC2's eventual consistency): a later read shows it here; staying holder", "seen_holder", first, "reads", i+2)
			return now, true
		}
		a = now
	}
	return a, true
}

// asHolder: this instance held the EIP and still does. At the truth
// check (repair) it runs the step, which on an EIP already held reads and
// repairs the DNS publications (and the audit tags), and moves nothing.
func (w *Watcher) asHolder(ctx context.Context, a claim.Address, repair bool) {
	w.fails, w.assoc = 0, a.AssociationID
	if !repair {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	o, err := w.Step.Run(sctx, failover.Request{Role: w.Role, Spec: w.Spec, Publishers: w.Publishers})
	switch {
	case err != nil && ctx.Err() == nil && o != nil:
		w.publicationFailed(err)
	case err != nil && ctx.Err() == nil:
		w.Log.Warn("repairing the DNS publications failed; will try again", "error", err)
	case o != nil:
		for _, p := range o.Published {
			if p.Changed {
				w.Log.Warn("repaired a DNS publication that had drifted", "publisher", p.Publisher, "name", p.Name, "value", p.Value)
			}
		}
	}
}

// from is the watcher's state as decide.Standby takes it.
func (w *Watcher) from() decide.From {
	switch w.state {
	case StateHolder:
		return decide.FromHolder
	case StateStandby:
		return decide.FromStandby
	}
	return decide.FromStart
}

// where is where the look found the EIP, as decide.Standby takes it.
func (w *Watcher) where(a claim.Address) decide.Where {
	switch {
	case a.Holder == w.InstanceID:
		return decide.WhereHere
	case a.Free():
		return decide.WhereFree
	case a.Holder == "":
		return decide.WhereNoInstance
	}
	return decide.WhereOther
}

// decideLook asks decide.Standby what this look calls for, when this instance
// does not hold the EIP or has just started, and does it: examine the
// holder, count its failed looks, read its state during its hold-down,
// check its own reach, run the step, or only watch. Every look that does
// not act says why in the log. probe is this look's probe of the holder,
// when it was probed before. A look that is not fresh (a probe between
// truth checks, on the last EC2 read) only counts: when the decision needs
// more, it does nothing and returns true (read EC2 afresh, then decide
// again).
func (w *Watcher) decideLook(ctx, lctx context.Context, a claim.Address, probe *decide.Probe, fresh bool) (needFresh bool) {
	from := w.from()
	l := decide.Look{From: from, Where: w.where(a), Policy: w.Spec.Takeover,
		Fall: w.Settings.Fall, HoldDown: w.Settings.HoldDown, Holder: decide.Holder{Instance: a.Holder}}
	if probe != nil && from == decide.FromStandby && l.Where == decide.WhereOther && a.AssociationID == w.assoc {
		// Probed before this read, the same holder: the probe counts
		// once, at this look.
		l.Examined, l.Holder.Probe = true, probe
	}
	switch l.Where {
	case decide.WhereHere:
		w.fails, w.assoc = 0, a.AssociationID
	case decide.WhereFree:
		w.other = "" // nobody holds it: a later move here names no previous holder
	default:
		w.other = a.HolderName()
		w.track(a, from)
	}
	l.Fails, l.HeldFor = w.fails, w.clock().Now().Sub(w.seenAt)
	next := decide.Standby(l)
	if !fresh && next.Act != decide.ActNothing && next.Act != decide.ActCount {
		return true
	}
	if l.Where == decide.WhereOther || l.Where == decide.WhereNoInstance || next.Act == decide.ActWatch {
		w.enterStandby(ctx, a, from, next)
	}
	if next.Act == decide.ActExamine {
		if !w.examine(lctx, a, &l) || ctx.Err() != nil {
			return false
		}
		next = decide.Standby(l)
	}
	failed := next.Fails > w.fails
	if failed {
		w.Metrics.probeFailed(w.Role)
	}
	if next.Act == decide.ActReadState {
		w.fails = next.Fails
		h, err := w.Engine.Health(lctx, a.Holder, a.PrivateIP, config.HealthCheck{})
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Warn("the holder failed a look, and its state could not be read during its hold-down: not taking over at this look",
					"holder", a.Holder, "why", next.Why, "failed_looks", next.Fails, "error", err)
			}
			return false
		}
		l.Holder.State = cmp.Or(h.State, decide.StatusUnknown)
		w.Metrics.setHolderStopped(w.Role, decide.Stopped(h.State))
		next = decide.Standby(l)
	}
	if next.Act == decide.ActCheckSelf {
		l.Self = w.checkSelf(lctx, l.Holder)
		if ctx.Err() != nil {
			return false
		}
		next = decide.Standby(l)
	}
	if next.Refused != "" {
		w.Metrics.refused(w.Role, next.Refused)
		w.refusedAgain()
	} else if next.Act != decide.ActCount {
		w.refusals, w.escalate = 0, 0
	}
	if failed {
		// The decision says why: fewer than fall failed looks, within
		// hold_down and not stopped, this instance cut off, or the
		// takeover.
		attrs := []any{"holder", a.Holder, "why", next.Why, "failed_looks", next.Fails, "fall", w.Settings.Fall,
			"held_for", l.HeldFor.Round(time.Second).String(), "hold_down", w.Settings.HoldDown.String(), "then", next.Act.String()}
		if next.Refused != "" {
			attrs = append(attrs, "refused", next.Refused)
		}
		w.Log.Info("the holder failed a look", attrs...)
	}
	switch next.Act {
	case decide.ActNothing:
		if l.Where == decide.WhereOther && w.fails > 0 && next.Fails == 0 {
			w.Log.Info("the holder answers again", "holder", a.Holder, "after_failed_looks", w.fails)
		}
		w.fails = next.Fails
	case decide.ActCount:
		w.fails = next.Fails
	case decide.ActWatch:
		w.onlyWatch(lctx, a, l, next)
	case decide.ActStep:
		w.fails = next.Fails
		if l.Where == decide.WhereFree {
			w.Log.Info("the EIP is free: claiming it")
		}
		w.runStep(ctx, next.Why)
	}
	return false
}

// checkSelf checks this instance's own reach before it takes the EIP from
// another (decide.Refusal): its IMDS answers, and when the holder failed
// its probe, which of the reference targets (watch.references) answer.
// The EC2 API answered this look's fresh read.
func (w *Watcher) checkSelf(ctx context.Context, h decide.Holder) decide.Self {
	s := decide.Self{Checked: true, API: true, IMDS: true}
	if w.IMDS != nil {
		ictx, cancel := context.WithTimeout(ctx, imdsTimeout)
		_, err := w.IMDS.Metadata(ictx, "instance-id")
		cancel()
		s.IMDS = err == nil
		if err != nil && ctx.Err() == nil {
			// The refusal's line says so; this is its cause.
			w.Log.Debug("this instance's IMDS did not answer", "error", err)
		}
	}
	if h.Probe == nil || h.Probe.OK {
		return s
	}
	for _, r := range w.Settings.References {
		host, port, _ := net.SplitHostPort(r) // validated
		n, _ := strconv.Atoi(port)
		ok, result := w.Engine.Probe(ctx, host, config.HealthCheck{Port: n})
		s.References = append(s.References, decide.Probe{OK: ok, Result: result})
	}
	return s
}

// track follows the association of the EIP held by another: the failed
// looks count against one association, and its hold-down runs from when
// it was first seen (at start, from when the audit tags say it was
// claimed). A deposed holder starts counting afresh.
func (w *Watcher) track(a claim.Address, from decide.From) {
	now := w.clock().Now()
	if from == decide.FromHolder {
		w.assoc, w.seenAt, w.fails = a.AssociationID, now, 0
		return
	}
	if a.AssociationID == w.assoc {
		return
	}
	w.assoc, w.fails, w.seenAt = a.AssociationID, 0, now
	if t, ok := a.ClaimedAt(); ok && from == decide.FromStart && t.Before(now) {
		w.seenAt = t
	}
}

// onlyWatch: this watcher does not take the EIP (takeover: never, an
// interface of no instance). It says why once, and when what names the
// holder (the EIP, its DNS names, the role table) names a stopped
// instance: once a minute, through the API.
func (w *Watcher) onlyWatch(lctx context.Context, a claim.Address, l decide.Look, next decide.Next) {
	if next.Why != w.watching {
		w.watching = next.Why
		w.Log.Info("only watching: "+next.Why, "holder", a.HolderName())
	}
	if l.Where == decide.WhereOther && w.otherLooks%w.stateEvery == 0 {
		if h, err := w.Engine.Health(lctx, a.Holder, a.PrivateIP, config.HealthCheck{}); err == nil {
			w.holderState(a, h.State, next.Why)
		} else if lctx.Err() == nil {
			w.Log.Debug("could not read the holder's state", "holder", a.Holder, "error", err)
		}
	}
	w.otherLooks++
}

// examine learns whether the holder fails this look: its probe when a
// health_check is configured (free), else the EC2 API's view of it (its
// state and status checks), into l.Holder. false when it could not be
// examined (the API did not answer): the look counts for nothing.
func (w *Watcher) examine(ctx context.Context, a claim.Address, l *decide.Look) bool {
	l.Examined = true
	if hc := w.Spec.HealthCheck; hc.Set() {
		ok, result := w.Engine.Probe(ctx, a.PrivateIP, hc)
		l.Holder.Probe = &decide.Probe{OK: ok, Result: result}
		return true
	}
	h, err := w.Engine.Health(ctx, a.Holder, a.PrivateIP, config.HealthCheck{})
	if err != nil {
		w.Log.Warn("could not examine the holder through the EC2 API; this look counts for nothing", "holder", a.Holder, "failed_looks", w.fails, "error", err)
		return false
	}
	l.Holder = h.Facts
	l.Holder.Instance = a.Holder
	// This watcher takes a stopped holder over within fall looks (or
	// says why it cannot): the gauge, no warning.
	w.Metrics.setHolderStopped(w.Role, decide.Stopped(h.State))
	return true
}

// runStep runs the failover step (claim, publish, on_holder hook).
func (w *Watcher) runStep(ctx context.Context, reason string) {
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	// The holder this watcher saw before is the hook's previous holder
	// when the EIP was moved here by the controller or an operator.
	o, err := w.Step.Run(sctx, failover.Request{Role: w.Role, Spec: w.Spec, Publishers: w.Publishers, Hooks: w.Hooks, Reason: reason, PreviousHolder: w.other})
	if o == nil {
		w.fails = 0
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, claim.ErrRefused):
			w.Log.Info("not taking over: the holder counts as healthy after all", "reason", err)
		default:
			w.Log.Warn("the failover step failed; staying standby", "error", err)
		}
		if w.state == "" {
			w.state = StateStandby
			w.Metrics.setState(w.Role, w.state)
		}
		return
	}
	if err != nil {
		w.publicationFailed(err)
	}
	w.stopped, w.watching = "", ""
	w.Metrics.setHolderStopped(w.Role, false)
	moved := o.Action != "already held"
	if moved {
		w.Metrics.takeover(w.Role)
	}
	w.Log.Info("holder", "action", o.Action, "reason", o.Reason, "previous_holder", o.PreviousHolder, "epoch", o.Epoch, "public_ip", o.PublicIP, "private_address", o.PrivateAddress)
	// A new tenure: IMDS has yet to list the EIP here.
	w.seen = claim.Address{AllocationID: o.AllocationID, PublicIP: o.PublicIP, Holder: w.InstanceID, ENI: o.ENI, PrivateIP: o.PrivateIP, AssociationID: o.AssociationID}
	if !w.Spec.HasEIP() {
		// The private address, as read (AsAddress): its interface (an
		// overlay's: the one its routes point at).
		eni := cmp.Or(o.PrivateAddressENI, o.ENI)
		w.seen.ENI, w.seen.AssociationID = eni, eni
	}
	w.state, w.fails, w.assoc, w.looks = StateHolder, 0, w.seen.AssociationID, 0
	w.imdsSaw, w.imdsNote = false, ""
	w.heldEpoch, w.tableETag, w.tableEntry = o.Epoch, "", table.Entry{} // the tenure's table is read afresh
	w.Metrics.setState(w.Role, w.state)
	w.Metrics.setEpoch(w.Role, o.Epoch)
}

// enterStandby enters standby, unless it is in it, and runs on_standby:
// at start, when this instance was deposed (it is the previous holder),
// or when it only watches a free EIP.
func (w *Watcher) enterStandby(ctx context.Context, a claim.Address, from decide.From, next decide.Next) {
	if w.state == StateStandby {
		return
	}
	var previous, reason string
	switch {
	case next.Act == decide.ActWatch && a.Free():
		reason = next.Why
	case from == decide.FromStart:
		reason = "started as a standby: the EIP is held by " + a.HolderName()
	default:
		reason = "the EIP was moved to " + a.HolderName()
	}
	if from == decide.FromHolder {
		previous = w.InstanceID
	}
	if from == decide.FromHolder && !a.Free() {
		w.Metrics.loss(w.Role)
		w.Log.Warn("this instance no longer holds the EIP (confirmed): entering standby", "holder", a.HolderName(), "epoch", w.epochOf(a))
	}
	w.state = StateStandby
	w.Metrics.setState(w.Role, w.state)
	n := w.epochOf(a)
	w.Log.Info("standby", "holder", a.Holder, "reason", reason, "epoch", n)
	// This instance does not answer for the private address (a deposed
	// holder's kernel still would), before on_standby runs.
	// (Logged and counted by Local.)
	w.Local.Remove(ctx, w.Role, w.Spec, failover.RoleAddress(w.Spec))
	if w.Hooks == nil {
		return
	}
	w.Hooks.Run(ctx, failover.HookEnv{
		Event: failover.EventStandby, PublicIP: a.PublicIP, AllocationID: a.AllocationID, Epoch: n,
		PreviousHolder: previous, Holder: a.Holder, Reason: reason, PrivateAddress: w.Spec.PrivateAddress,
		OverlayAddress: overlayAddress(w.Spec),
	})
}

// epochOf reads the EIP's epoch tag (claim.Address.Epoch) and records it
// in the metrics. A tag that is not an epoch is reported (a warning when
// its value changes, eipclaim_epoch_invalid) and read as 0: the next
// claim takes an epoch above the role table's and rewrites it.
func (w *Watcher) epochOf(a claim.Address) int64 {
	n, err := a.Epoch()
	w.Metrics.setEpochInvalid(w.Role, err != nil)
	if err != nil {
		if v := a.Tags[claim.TagEpoch]; v != w.badEpoch {
			w.badEpoch = v
			w.Log.Warn(err.Error(), "allocation_id", a.AllocationID, "tag", claim.TagEpoch)
		}
		return 0
	}
	w.badEpoch = ""
	w.Metrics.setEpoch(w.Role, n)
	return n
}

// publicationFailed reports a step whose publication failed: a role table
// write dropped because the table holds a greater epoch is counted
// (eipclaim_table_writes_dropped_total).
func (w *Watcher) publicationFailed(err error) {
	var stale *table.StaleError
	if errors.As(err, &stale) {
		w.Metrics.tableDropped(w.Role)
		w.Log.Warn("holding the EIP, but the role table holds a greater epoch: this instance's entry was not written; will record it above at the next repair",
			"table_epoch", stale.Newer, "table_holder", stale.Holder, "epoch", stale.Epoch, "error", err)
		return
	}
	w.Log.Warn("holding the EIP, but its publication failed; will repair", "error", err)
}

// holderState reports a holder left in place in a stopped state
// (decide.Stopped), which the EIP, its DNS names and the role table still
// name: a warning when it is first seen, and eipclaim_holder_stopped while
// it lasts.
func (w *Watcher) holderState(a claim.Address, state, why string) {
	if !decide.Stopped(state) {
		w.stopped = ""
		w.Metrics.setHolderStopped(w.Role, false)
		return
	}
	w.Metrics.setHolderStopped(w.Role, true)
	if w.stopped != a.Holder {
		w.stopped = a.Holder
		w.Log.Warn("the holder is "+state+", and "+why+": the EIP, its DNS names and the role table name a holder that does not serve; claim the role on a running instance (eipclaim claim --force)",
			"holder", a.Holder, "allocation_id", a.AllocationID, "state", state)
	}
}
