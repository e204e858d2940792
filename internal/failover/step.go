// Package failover is the failover step that every driver runs (the claim
// command, the watcher, the off-box controller): decide and claim the
// role's Elastic IP (internal/claim), then publish where it now is with
// every configured publisher (internal/publish), and return one typed
// Outcome. Drivers differ only in when they run it.
package failover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
)

// Step runs the failover step for one instance.
type Step struct {
	Engine *claim.Engine
	// Region is the instance's region: with the EIP's address, it gives
	// the EIP's public DNS name, the target of CNAMEs. (EC2 reports the
	// same name; computing it spares a request, and a fresh claim and a
	// rerun cannot disagree.)
	Region string
	Log    *slog.Logger
	// Local, when set, puts the role's private address on the local
	// interface its local_interface names, once the address is this
	// instance's (claimed, or already held), before the on_holder hook.
	// nil: the hooks do it (EIPCLAIM_PRIVATE_ADDRESS).
	Local *Local
}

// Request is one run of the step for one role.
type Request struct {
	Role       string
	Spec       *config.Role
	Publishers []publish.Publisher // publish.For the role's dns: block
	Force      bool                // takeover: always
	// ForcePrivate takes the role's private-kind address (a secondary
	// private IP or an overlay address) by force, whatever
	// Force says of its EIP: the off-box controller moves a private
	// address held apart from the EIP to the EIP's holder (decide.Plan).
	ForcePrivate bool
	DryRun       bool // decide and report, change nothing
	// Hooks, when set, run the role's on_holder hook once the EIP is this
	// instance's and published: the state entered is holder. *Hooks is
	// one; nil (or a nil *Hooks) runs none.
	Hooks HookRunner
	// Reason, when set, is the driver's reason for running the step, told
	// to the hook when the EIP did not move ("started as the holder").
	Reason string
	// PreviousHolder, when set, is the holder the driver saw before the
	// EIP came to this instance (moved by the controller or an operator),
	// told to the hook when the claim itself moved nothing.
	PreviousHolder string
}

// Outcome is what the step did, for people (String) and scripts (JSON).
type Outcome struct {
	Role string `json:"role"`
	// Action is what happened to the EIP: "already held", "claimed",
	// "taken over", or in a dry run "would be claimed", "would be taken over".
	Action string `json:"action"`
	// Reason says why the action was allowed.
	Reason         string `json:"reason,omitempty"`
	PreviousHolder string `json:"previous_holder,omitempty"`
	// Epoch is the EIP's eipclaim:epoch after the step: it grows by one
	// with every move eipclaim makes.
	Epoch int64 `json:"epoch"`
	// EpochProblems say what was wrong with the epochs seen (the EIP's
	// tag not an epoch, an epoch that cannot advance): see epoch.Decide.
	EpochProblems []string `json:"epoch_problems,omitempty"`
	AllocationID  string   `json:"allocation_id"`
	PublicIP      string   `json:"public_ip"`
	PublicDNSName string   `json:"public_dns_name,omitempty"`
	InstanceID    string   `json:"instance_id"`
	ENI           string   `json:"eni_id"`
	PrivateIP     string   `json:"private_ip"`
	AssociationID string   `json:"association_id,omitempty"`
	// PrivateAddress is the role's secondary private IP (private_address)
	// on PrivateAddressENI, this instance's interface, and
	// PrivateAddressAction what happened to it (as Action): set when the
	// role has one. A role with only private_address has no EIP: its
	// allocation_id, public_ip and private_ip are empty, and Action is
	// the private address's.
	PrivateAddress       string `json:"private_address,omitempty"`
	PrivateAddressENI    string `json:"private_address_eni_id,omitempty"`
	PrivateAddressAction string `json:"private_address_action,omitempty"`
	// OverlayAddress is the role's overlay address (overlay), routed to
	// ENI; OverlayAction what happened to it (as Action: a role with
	// only overlay has it as Action too), OverlayRouteTables each listed
	// route table as read back and whether it points here.
	OverlayAddress     string             `json:"overlay_address,omitempty"`
	OverlayAction      string             `json:"overlay_action,omitempty"`
	OverlayRouteTables []claim.TableRoute `json:"overlay_route_tables,omitempty"`
	// OverlayRepaired are the route tables a claim by the holder the
	// role table names pointed here again (drift, or a holder stopped
	// between its table write and its routes): no new epoch.
	OverlayRepaired []string         `json:"overlay_repaired,omitempty"`
	DryRun          bool             `json:"dry_run,omitempty"`
	Published       []publish.Result `json:"published,omitempty"`
	// LocalInterface is the addition of the private address to the local
	// interface (local_interface), made before the hook; nil when the
	// role has no local_interface.
	LocalInterface *LocalRun `json:"local_interface,omitempty"`
	// Hook is the run of the on_holder hook, when one is configured.
	Hook *HookRun `json:"hook,omitempty"`
	// Fence is the previous holder's fence before the move (fence: stop):
	// the instance stopped, the state EC2 said, how long it took; nil
	// when none was made (in a dry run, the one that would be).
	Fence *claim.Fence `json:"fence,omitempty"`
}

// Run claims the role's EIP as the request's policy allows, then publishes
// it. A claim that fails returns no Outcome. A publication that fails
// returns the Outcome with the error (exit code 5: the claim stands).
func (s *Step) Run(ctx context.Context, req Request) (_ *Outcome, err error) {
	if !req.DryRun && req.Spec.Pool == nil {
		// A Route 53 record's current value does not depend on the claim
		// (its value is the EIP's name, whoever holds it): it is read
		// while the claim runs. A pool's EIP is known only once claimed.
		publish.Prefetch(ctx, req.Publishers)
	}
	creq := claim.Request{Role: req.Role, Spec: req.Spec, Force: req.Force, DryRun: req.DryRun}
	if !req.DryRun {
		// The role table's epoch for the role is read while the claim
		// runs (the first read of the table's write): the claim's epoch
		// goes above it.
		creq.Recorded = publish.Recorded(ctx, req.Publishers, s.Log)
	}
	res, sres, ores, err := s.claim(ctx, req, creq)
	// routesErr: the role table names this instance the overlay's
	// holder, and some listed route tables do not point here (exit 1):
	// the step goes on (this instance holds the role), and says so.
	var routesErr error
	if err != nil && ores != nil {
		routesErr, err = err, nil
	}
	if err != nil {
		return nil, err
	}
	f, badAddr := s.placement(res)
	o := outcome(res, f)
	o.DryRun = req.DryRun
	if sres != nil {
		o.PrivateAddressAction = sres.Action
	}
	if ores != nil {
		o.OverlayAction, o.OverlayRouteTables, o.OverlayRepaired = ores.Action, ores.Tables, ores.Repaired
	}
	if badAddr != nil {
		// Nothing is published from an answer that is not whole; the
		// claim stands (exit 5), the hook still runs (the EIP is here),
		// and the outcome says what EC2 reported.
		o.PublicIP, o.PrivateIP = res.PublicIP, res.PrivateIP
		badAddr = exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: claimed for %s, but nothing was published: %w", res.Role, res.InstanceID, badAddr))
		if req.DryRun {
			return o, badAddr
		}
	}
	if req.DryRun {
		o.Published = publish.DryRun(req.Publishers, f)
		return o, nil
	}
	if routesErr != nil {
		defer func() { err = exitcode.With(exitcode.Failed, errors.Join(routesErr, err)) }()
	}
	// Once the EIP has moved, the new holder must be published and
	// promoted even if ctx ends now (a SIGTERM, a SIGHUP, the deadline):
	// an EIP serving a holder whose names still point elsewhere, or whose
	// service was never promoted, is worse than a stop that waits. The
	// publications run on the engine's finishing context (not ended by
	// ctx's cancellation, bounded by FinishTimeout after it, and by ctx's
	// deadline plus FinishTimeout), the hook on a context ctx does not
	// end, bounded by the hook's own timeout.
	pctx, hctx := ctx, ctx
	if moved(res) || sres != nil && movedSecondary(sres) || ores != nil && movedOverlay(ores) {
		var cancel context.CancelFunc
		pctx, cancel = s.Engine.Finishing(ctx)
		defer cancel()
		hctx = context.WithoutCancel(ctx)
	}
	// The audit tags and the publications do not depend on each other.
	var wg sync.WaitGroup
	if res.TagsStale && res.AllocationID != "" {
		// Tag makes its own finishing context from ctx (a second one
		// over pctx would outlive ctx's deadline by two windows).
		wg.Go(func() { s.Engine.Tag(ctx, res) })
	}
	if sres != nil && sres.TagsStale {
		wg.Go(func() { s.Engine.TagSecondary(ctx, sres) })
	}
	if badAddr == nil {
		o.Published, err = publish.All(pctx, req.Publishers, f)
	} else {
		err = badAddr
	}
	wg.Wait()
	// The epoch is tagged (or the tag failed and was logged) before the
	// hook hears of it. A hook's failure is logged and counted, not the
	// step's.
	reason := o.Reason
	if reason == "" {
		reason = req.Reason
	}
	previous := o.PreviousHolder
	if previous == "" {
		previous = req.PreviousHolder
	}
	// The address is this instance's in EC2: the kernel must answer for
	// it before the service is promoted. A failure is the step's (exit
	// 5), not the claim's.
	o.LocalInterface = s.Local.Ensure(hctx, req.Role, req.Spec, cmp.Or(f.PrivateAddressENI, f.ENI), f.Private())
	if lerr := localError(req.Role, f.InstanceID, o.LocalInterface); lerr != nil {
		err = errors.Join(err, lerr)
	}
	if req.Hooks != nil {
		o.Hook = req.Hooks.Run(hctx, HookEnv{
			Event: EventHolder, PublicIP: o.PublicIP, AllocationID: f.AllocationID, Epoch: f.Epoch,
			PreviousHolder: previous, Holder: f.InstanceID, Reason: reason, Fenced: fenced(o.Fence),
			PrivateAddress: o.PrivateAddress, OverlayAddress: o.OverlayAddress,
		})
	}
	return o, err
}

// Keep publishes where the role's EIP already is, without a claim: for a
// driver that observed the EIP held by a healthy holder with its audit
// tags right (the off-box controller's schedule), so that keeping the
// names true costs only their reads. held is the EIP as a claim by the
// holder would report it ("already held"). No hook runs: nothing changed.
func (s *Step) Keep(ctx context.Context, req Request, held *claim.Result) (*Outcome, error) {
	f, err := s.placement(held)
	o := outcome(held, f)
	if err != nil {
		o.PublicIP, o.PrivateIP = held.PublicIP, held.PrivateIP
		return o, exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: held by %s, but nothing was published: %w", held.Role, held.InstanceID, err))
	}
	o.Published, err = publish.All(ctx, req.Publishers, f)
	return o, err
}

// moved reports whether the EIP moved to this instance: by the claim, or,
// for one already held, by something that did not tag it (an operator's
// or the controller's move: the holder tag names another instance).
func moved(res *claim.Result) bool {
	return res.Action == "claimed" || res.Action == "taken over" || res.PreviousHolder != ""
}

// placement is where the claim left the EIP: built once, from which the
// outcome, every publisher and the hook are built. An address EC2
// reported that is not an IP address is an error, never a silently empty
// record.
func (s *Step) placement(res *claim.Result) (placement.Placement, error) {
	p := placement.Placement{
		Role: res.Role, AllocationID: res.AllocationID, InstanceID: res.InstanceID, ENI: res.ENI,
		AssociationID: res.AssociationID, Epoch: res.Epoch,
	}
	var errPub, errPriv error
	p.PublicIP, errPub = placement.Addr("public IP of "+res.AllocationID, res.PublicIP)
	p.PrivateIP, errPriv = placement.Addr("private IP of "+res.ENI, res.PrivateIP)
	p.PublicDNSName = publish.PublicDNSName(p.PublicIP, s.Region)
	var errAddr error
	p.PrivateAddress, errAddr = placement.Addr("private address on "+res.ENI, res.PrivateAddress)
	p.PrivateAddressENI = res.PrivateAddressENI
	var errOverlay error
	p.OverlayAddress, errOverlay = placement.Addr("overlay address routed to "+res.ENI, res.OverlayAddress)
	return p, errors.Join(errPub, errPriv, errAddr, errOverlay)
}

// outcome is the step's Outcome of a claim, its addresses from p.
func outcome(res *claim.Result, p placement.Placement) *Outcome {
	return &Outcome{
		Role: p.Role, Action: res.Action, Reason: res.Why, PreviousHolder: res.PreviousHolder,
		Epoch: p.Epoch, EpochProblems: res.EpochProblems, AllocationID: p.AllocationID,
		PublicIP: placement.String(p.PublicIP), PublicDNSName: p.PublicDNSName,
		InstanceID: p.InstanceID, ENI: p.ENI, PrivateIP: placement.String(p.PrivateIP),
		AssociationID: p.AssociationID, Fence: res.Fence,
		PrivateAddress: placement.String(p.PrivateAddress), PrivateAddressENI: p.PrivateAddressENI,
		OverlayAddress: placement.String(p.OverlayAddress),
	}
}

// claim runs the claims of the role's addresses: its EIP, and its
// private-kind address (a secondary private IP, private_address, or an
// overlay address, overlay), the EIP first. A role with both has one
// epoch, the greater of the two claims' (the EIP's tag and the secondary's
// tags get it; an overlay's is the role table's entry, which the table
// publisher writes with it). A role without EIP gets a Result without EIP
// that carries the private kind's decision (Action, reason, previous
// holder, epoch, fence), so that one placement builds the outcome, the
// publications and the hook. An overlay whose table write is done but
// whose routes do not all point here returns its result with the error.
func (s *Step) claim(ctx context.Context, req Request, creq claim.Request) (*claim.Result, *claim.SecondaryResult, *claim.OverlayResult, error) {
	var res *claim.Result
	if req.Spec.HasEIP() {
		var err error
		if res, err = s.Engine.Claim(ctx, creq); err != nil {
			return nil, nil, nil, err
		}
	}
	var (
		pk             privateKind
		sres           *claim.SecondaryResult
		ores           *claim.OverlayResult
		err, routesErr error
		kind, addr     string
	)
	switch {
	case req.Spec.Overlay != nil:
		kind, addr = "overlay address", req.Spec.Overlay.Address
		var tbl claim.RoleTable
		if st := publish.Table(req.Publishers); st != nil {
			tbl = st
		}
		// The controller's move of an overlay address to the EIP's holder
		// forces the private kind alone (ForcePrivate), as below.
		oreq := creq
		oreq.Force = creq.Force || req.ForcePrivate
		ores, err = s.Engine.ClaimOverlay(ctx, oreq, tbl)
		if err != nil && ores != nil {
			routesErr, err = err, nil
		}
		if ores != nil {
			pk = privateKind{ores.InstanceID, ores.ENI, ores.Action, ores.PreviousHolder, ores.Why, ores.Epoch, ores.EpochProblems, ores.Fence}
		}
	case req.Spec.PrivateAddress != "":
		kind, addr = "private address", req.Spec.PrivateAddress
		// The controller's move of a private address to the EIP's holder
		// forces the private kind alone (ForcePrivate).
		sreq := creq
		sreq.Force = creq.Force || req.ForcePrivate
		sres, err = s.Engine.ClaimSecondary(ctx, sreq)
		if sres != nil {
			pk = privateKind{sres.InstanceID, sres.ENI, sres.Action, sres.PreviousHolder, sres.Why, sres.Epoch, sres.EpochProblems, sres.Fence}
		}
	default:
		return res, nil, nil, nil
	}
	if err != nil {
		if res != nil && !req.DryRun {
			// The EIP's claim stands (its tags are written, so that its
			// epoch counts); the private kind's failure is the step's.
			s.Engine.Tag(ctx, res)
			return nil, nil, nil, fmt.Errorf("role %s: the EIP %s is %s on %s, but the %s %s is not: %w", req.Role, res.PublicIP, res.Action, res.InstanceID, kind, addr, err)
		}
		return nil, nil, nil, err
	}
	if res == nil {
		res = &claim.Result{
			Role: req.Role, InstanceID: pk.instance, ENI: pk.eni, Action: pk.action,
			PreviousHolder: pk.previous, Why: pk.why, Epoch: pk.epoch,
			EpochProblems: pk.problems, Fence: pk.fence,
		}
	} else {
		n := max(res.Epoch, pk.epoch)
		res.SyncEpoch(n, req.DryRun)
		if sres != nil {
			sres.SyncEpoch(n, req.DryRun)
		}
		if ores != nil {
			ores.SyncEpoch(n)
		}
		if pk.fence != nil && res.Fence == nil {
			res.Fence = pk.fence
		}
		res.EpochProblems = append(res.EpochProblems, pk.problems...)
	}
	if sres != nil {
		res.PrivateAddress, res.PrivateAddressENI = sres.Address, sres.ENI
	}
	if ores != nil {
		res.OverlayAddress = ores.Address
	}
	return res, sres, ores, routesErr
}

// privateKind is what the step takes of a private-kind claim's result.
type privateKind struct {
	instance, eni, action, previous, why string
	epoch                                int64
	problems                             []string
	fence                                *claim.Fence
}

// movedOverlay reports whether the overlay address moved to this
// instance, or its routes were repaired.
func movedOverlay(r *claim.OverlayResult) bool {
	return r.Action == "claimed" || r.Action == "taken over" || len(r.Repaired) > 0
}

// movedSecondary reports whether the secondary private IP moved to this
// instance (by the claim, or untagged by something else).
func movedSecondary(r *claim.SecondaryResult) bool {
	return r.Action == "claimed" || r.Action == "taken over" || r.PreviousHolder != ""
}

// fenced is the instance a fence stopped, "" when none was.
func fenced(f *claim.Fence) string {
	if f == nil || f.State == "" {
		return ""
	}
	return f.Instance
}
