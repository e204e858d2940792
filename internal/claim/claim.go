// Package claim is the claim engine: it associates a role's Elastic IP with
// this instance, safely (never two holders), idempotently (no remap when it
// is already ours) and with retries by error code.
package claim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// EC2API is the part of the EC2 API the engine uses; *ec2.Client has it.
type EC2API interface {
	DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	DisassociateAddress(ctx context.Context, in *ec2.DisassociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
	// StopInstances fences a down but running holder (fence: stop).
	StopInstances(ctx context.Context, in *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	// A role's secondary private IP (private_address): secondary.go.
	AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, optFns ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	UnassignPrivateIpAddresses(ctx context.Context, in *ec2.UnassignPrivateIpAddressesInput, optFns ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	// A role's overlay address (overlay): overlay.go.
	DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, optFns ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, optFns ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error)
	DeleteRoute(ctx context.Context, in *ec2.DeleteRouteInput, optFns ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error)
}

// The audit tags set on a claimed EIP.
const (
	TagHolder    = "eipclaim:holder"
	TagClaimedAt = "eipclaim:claimed-at"
	// TagEpoch counts the moves eipclaim made of the EIP: every move sets
	// it one higher, so that a service can fence writes from an older
	// holder.
	TagEpoch = "eipclaim:epoch"
)

// TagsWritten are the tag keys a claim writes on its EIP (Engine.Tag), and
// TagsDeleted the ones a release deletes (untag): the shipped IAM policies
// allow ec2:CreateTags and ec2:DeleteTags for these keys only
// (internal/shipped checks them against this list).
var (
	TagsWritten = []string{TagHolder, TagClaimedAt, TagEpoch}
	TagsDeleted = []string{TagHolder}
)

// ErrRefused means the EIP is held by another instance that counts as
// healthy, and the takeover policy does not allow taking it.
var ErrRefused = errors.New("refused")

// Engine claims, releases and inspects EIPs for one instance.
type Engine struct {
	EC2        EC2API
	InstanceID string // this instance
	Log        *slog.Logger
	Clock      retry.Clock   // retry.RealClock when nil
	Backoff    retry.Backoff // DefaultBackoff when zero
	// Dial is used by health checks; net.Dialer.DialContext when nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HealthTimeout bounds one health check; 3s when zero.
	HealthTimeout time.Duration
	// Region is the EC2 region, for messages.
	Region string
	// NotFoundWait is how long the EIP the configuration names may be
	// reported missing (eventual consistency: just allocated) before it
	// counts as nonexistent, a configuration error; 15s when zero.
	NotFoundWait time.Duration
	// FinishTimeout bounds the finishing of a move once the old
	// association is gone, past the caller's cancellation or deadline (an
	// interrupted takeover must not leave the EIP on nobody), and each look
	// at what an interrupted call did; 30s when zero.
	FinishTimeout time.Duration

	// self is this instance's own facts for the reads that change
	// nothing (selfTarget), read once; subnets the CIDRs of the subnets
	// read (subnetCIDR: they never change). selfMu guards them.
	selfMu  sync.Mutex
	self    *target
	subnets map[string]netip.Prefix
}

// DefaultFinishTimeout is the Engine's FinishTimeout when zero.
const DefaultFinishTimeout = 30 * time.Second

// The defaults of the Engine's durations.
const (
	defaultNotFoundWait  = 15 * time.Second
	defaultFinishTimeout = DefaultFinishTimeout
	// selfNotFoundFactor: this instance, which IMDS names, is given
	// longer than a configured EIP to become visible.
	selfNotFoundFactor = 4
)

// Request is one claim.
type Request struct {
	Role   string
	Spec   *config.Role
	Force  bool // takeover: always
	DryRun bool // decide and report, change nothing
	// Recorded, when set, returns what the role table records for the
	// role (nil: no entry, or the table could not be read): the claim's
	// epoch goes above it (epoch.Decide). It is asked once the EIP is
	// claimed, so that the table is read while the claim runs.
	Recorded func() *epoch.Recorded
}

// Result says what a claim did.
type Result struct {
	Role          string
	AllocationID  string
	PublicIP      string
	AssociationID string
	InstanceID    string
	ENI           string
	PrivateIP     string
	// Action is what happened: "already held", "claimed", "taken over",
	// or with DryRun "would claim", "would take over".
	Action string
	// PreviousHolder is the instance (or interface) that held the EIP
	// before (for an EIP already held, the one its holder tag names when
	// that is another: it was moved here untagged), and Why the reason it
	// could be taken.
	PreviousHolder, Why string
	// Epoch is the EIP's eipclaim:epoch once the claim is tagged: above
	// every epoch seen for the role (the tag's, the role table's) for a
	// move, the same when the EIP stays (epoch.Decide).
	Epoch int64
	// EpochProblems say what was wrong with the epochs seen (a tag that
	// is not an epoch, an epoch that cannot advance); they are logged too.
	EpochProblems []string
	// Fence is the fence of the previous holder before the move (fence:
	// stop, decide.Fence), nil when there was none; in a dry run, the
	// fence the claim would make (Took zero).
	Fence *Fence
	// TagsStale says that the EIP's audit tags do not name this holder
	// and epoch yet: the caller runs Tag (alongside its other work).
	TagsStale bool
	// PrivateAddress and PrivateAddressENI are the role's secondary
	// private IP and the interface of this instance that holds it, set by
	// the failover step from ClaimSecondary's result ("" without one).
	PrivateAddress, PrivateAddressENI string
	// OverlayAddress is the role's overlay address, routed to ENI, set by
	// the failover step from ClaimOverlay's result ("" without one).
	OverlayAddress string

	epochTag string // the EIP's eipclaim:epoch as read
}

// target is where on this instance the EIP goes.
type target struct {
	eni, privateIP string
	// sourceDestCheck is eni's source/destination checking as
	// DescribeInstances reported it (nil: not reported); an overlay
	// address reaches the interface only with it off.
	sourceDestCheck *bool
	enis            []string // every interface of the instance
	subnet, vpc     string   // eni's
}

func (e *Engine) retrier() *retry.Retrier {
	return &retry.Retrier{Clock: e.Clock, Backoff: e.Backoff, Log: e.Log}
}

// Claim associates the role's EIP with this instance, as the request's
// policy allows, and reads the association back.
func (e *Engine) Claim(ctx context.Context, req Request) (*Result, error) {
	log := e.Log.With("role", req.Role, "instance_id", e.InstanceID)
	if req.Spec.Pool != nil {
		tgt, err := e.target(ctx, req.Spec)
		if err != nil {
			return nil, err
		}
		return e.claimPool(ctx, log.With("eni_id", tgt.eni, "private_ip", tgt.privateIP), req, tgt)
	}
	// This instance's interfaces and the EIP's state do not depend on
	// each other: both are read at once.
	var (
		tgt             *target
		addr            *types.Address
		tgtErr, addrErr error
		wg              sync.WaitGroup
	)
	wg.Go(func() { addr, addrErr = e.address(ctx, req.Spec) })
	tgt, tgtErr = e.target(ctx, req.Spec)
	wg.Wait()
	if tgtErr != nil {
		return nil, tgtErr
	}
	if addrErr != nil {
		return nil, addrErr
	}
	log = log.With("eni_id", tgt.eni, "private_ip", tgt.privateIP)
	return redecide(log.With("allocation_id", aws.ToString(addr.AllocationId)), req.Role, "the EIP", "another instance associated the EIP first", addr,
		func() (*types.Address, error) { return e.address(ctx, req.Spec) },
		func(addr *types.Address) (*Result, error) { return e.claimOne(ctx, log, req, tgt, addr) })
}

var errRaced = errors.New("raced")

// redecide is every address kind's answer to a lost race: decide on the
// state first looked at; when the move finds that another claimer won
// meanwhile (errRaced), look again and decide again on the fresh state,
// three decisions in all. what names the address in the final error,
// raced says in the log who went first.
func redecide[S, R any](log *slog.Logger, role, what, raced string, state S, look func() (S, error), decide func(S) (R, error)) (R, error) {
	var zero R
	for i := range 3 {
		if i > 0 {
			var err error
			if state, err = look(); err != nil {
				return zero, err
			}
		}
		res, err := decide(state)
		if errors.Is(err, errRaced) {
			log.Info(raced + "; deciding again")
			continue
		}
		return res, err
	}
	return zero, fmt.Errorf("%s changed hands three times while claiming it: another claimer is running; check who else runs eipclaim for role %s", what, role)
}

// claimOne decides about one address and acts.
func (e *Engine) claimOne(ctx context.Context, log *slog.Logger, req Request, tgt *target, addr *types.Address) (*Result, error) {
	res := &Result{
		Role:         req.Role,
		AllocationID: aws.ToString(addr.AllocationId),
		PublicIP:     aws.ToString(addr.PublicIp),
		InstanceID:   e.InstanceID,
		ENI:          tgt.eni,
		PrivateIP:    tgt.privateIP,
		epochTag:     TagValue(addr.Tags, TagEpoch),
	}
	log = log.With("allocation_id", res.AllocationID, "public_ip", res.PublicIP)
	holderENI := aws.ToString(addr.NetworkInterfaceId)
	holder := aws.ToString(addr.InstanceId)
	switch {
	case holderENI == tgt.eni && (tgt.privateIP == "" || aws.ToString(addr.PrivateIpAddress) == tgt.privateIP):
		res.Action = "already held"
		res.AssociationID = aws.ToString(addr.AssociationId)
		log.Info("EIP already held by this instance: nothing to do", "association_id", res.AssociationID)
		// The audit tag may name another instance: a claim interrupted
		// before it could tag. Repair it; DescribeAddresses gave the tags,
		// so a right tag costs nothing.
		// A holder tag naming another instance means a move that was
		// never tagged: it counts in the epoch.
		was := TagValue(addr.Tags, TagHolder)
		if was != e.InstanceID && was != "" {
			// It was moved here by something that did not tag it (an
			// operator's AssociateAddress): the tag names who held it.
			res.PreviousHolder = was
		}
		if e.settleEpoch(log, req, res, was != e.InstanceID) {
			if req.DryRun {
				log.Info("dry run: would repair the audit tags", "tag", TagHolder, "was", was, "epoch", res.Epoch)
			} else {
				log.Info("repairing the audit tags", "tag", TagHolder, "was", was, "epoch", res.Epoch)
			}
		}
		return res, nil
	case holderENI == "" && holder == "":
		res.Action, res.Why = "claimed", "the EIP was free"
		return e.associate(ctx, log, req, tgt, res, "", refusal{})
	case holder == e.InstanceID || slices.Contains(tgt.enis, holderENI):
		// Ours, on another interface or address: moving it is safe.
		res.Action, res.PreviousHolder, res.Why = "claimed", holderENI, "the EIP was on another interface or address of this instance"
		return e.associate(ctx, log, req, tgt, res, aws.ToString(addr.AssociationId), refusal{})
	}
	if holder == "" {
		var err error
		if holder, err = e.eniInstance(ctx, holderENI); err != nil {
			return nil, err
		}
	}
	name := holder
	if name == "" {
		name = holderENI
	}
	res.PreviousHolder = name
	// The last check before the move: the takeover rule (decide) on facts
	// read now. The compare-and-swap, not this check, makes one winner.
	// A role that fences reads the facts even when the takeover needs no
	// verdict (--force, takeover: always): a fence needs the same evidence
	// as a takeover.
	v := decide.Verdict{}
	var facts *decide.Holder
	if decide.NeedsFacts(req.Spec.Takeover, req.Force, req.Spec.EffectiveFence()) {
		h, err := e.health(ctx, holder, aws.ToString(addr.PrivateIpAddress), req.Spec.HealthCheck)
		if err != nil {
			return nil, err
		}
		v, facts = decide.Verdict{Down: h.Down, Why: h.Why}, &h.Facts
	}
	allow, why := decide.Takeover(req.Spec.Takeover, req.Force, v)
	switch {
	case !allow && req.Spec.EffectiveTakeover() == config.TakeoverNever:
		return e.refuse(ctx, log, req, tgt, res, aws.ToString(addr.AssociationId), exitcode.With(exitcode.Refused, fmt.Errorf("%w: %s (%s) is held by %s and takeover is never: release it there first, or use --force", ErrRefused, res.PublicIP, res.AllocationID, name)))
	case !allow:
		return e.refuse(ctx, log, req, tgt, res, aws.ToString(addr.AssociationId), exitcode.With(exitcode.Refused, fmt.Errorf("%w: %s (%s) is held by %s, which is healthy (%s): fail over with --force only if you are sure it is not serving", ErrRefused, res.PublicIP, res.AllocationID, name, why)))
	}
	res.Why = why
	res.Action = "taken over"
	if facts != nil && req.Spec.EffectiveFence() == config.FenceStop {
		stop, fwhy := decide.Fence(req.Spec.EffectiveFence(), req.Spec.Takeover, req.Force, *facts)
		if !stop {
			log.Info("no fence", "holder", name, "reason", fwhy)
		} else {
			f, err := e.fence(ctx, log, req, res.PublicIP+" ("+res.AllocationID+")", holder, fwhy)
			if err != nil {
				return nil, err
			}
			res.Fence = f
		}
	}
	log.Info("taking over the EIP", "holder", name, "reason", res.Why)
	return e.associate(ctx, log, req, tgt, res, aws.ToString(addr.AssociationId), refusal{})
}

// refuse returns refusal (the EIP is held, and the policy does not allow
// taking it) once EC2 itself has said the EIP is held. The read that
// showed the holder may be stale (EC2's eventual consistency: a release
// a moment ago may not show yet), and refusing a free EIP would leave it
// on nobody. The confirmation is an AssociateAddress with
// AllowReassociation=false, which EC2 carries out only on a free EIP:
// Resource.AlreadyAssociated confirms the refusal, success is the claim
// of a free EIP, which every policy allows. A dry run refuses on the read.
// assoc is the association the read showed.
func (e *Engine) refuse(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *Result, assoc string, err error) (*Result, error) {
	if req.DryRun {
		return nil, err
	}
	stale := *res
	stale.Action, stale.PreviousHolder = "claimed", ""
	stale.Why = "the EIP was free (the read that showed it held by " + res.PreviousHolder + " was stale)"
	return e.associate(ctx, log, req, tgt, &stale, "", refusal{err: err, assoc: assoc})
}

// refusal is the refusal an association confirms (see refuse): err, and
// the association the refusing read showed, which a read-back that shows
// it shows the state before the association.
type refusal struct {
	err   error
	assoc string
}

// associate makes the association and reads it back; the caller tags the
// EIP (Tag).
//
// A move is a compare-and-swap: it first disassociates exactly the
// association the decision was made on (oldAssoc), which fails if anyone
// moved the EIP meanwhile, then associates with AllowReassociation=false,
// which fails if anyone took the freed EIP first. Either failure is a lost
// race (errRaced) and the caller decides again on fresh state, so two
// claimers can never both believe they took the EIP. AllowReassociation is
// never true.
//
// Once the old association is gone, the move is finished on a context of
// its own (see finishing): a SIGTERM, a Ctrl-C or the deadline arriving
// between the two calls must not leave the EIP on nobody. A call whose
// answer was lost (interrupted in flight, a network error) may still have
// been carried out, so after a failed call the EIP's state is read again
// to learn what happened, and that is what is reported.
//
// With confirm.err set (see refuse), the association confirms a refusal:
// Resource.AlreadyAssociated returns confirm.err.
func (e *Engine) associate(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *Result, oldAssoc string, confirm refusal) (*Result, error) {
	if req.DryRun {
		res.Action = "would be " + res.Action
		e.settleEpoch(log, req, res, true)
		log.Info("dry run: no change made", "action", res.Action, "reason", res.Why, "epoch", res.Epoch)
		return res, nil
	}
	r := e.retrier()
	actx := ctx // the context of the association
	if oldAssoc != "" {
		gone := false
		err := r.Do(ctx, "ec2:DisassociateAddress", func(ctx context.Context) error {
			_, err := e.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(oldAssoc)})
			if retry.Code(err) == "InvalidAssociationID.NotFound" {
				gone = true
				return nil
			}
			return err
		})
		switch {
		case err != nil:
			if err := e.afterFailedDisassociate(ctx, log, res, oldAssoc, err); err != nil {
				return nil, err
			}
		case gone:
			return nil, errRaced
		default:
			log.Info("disassociated from the previous holder", "holder", res.PreviousHolder, "association_id", oldAssoc)
		}
		var cancel context.CancelFunc
		actx, cancel = e.Finishing(ctx)
		defer cancel()
	}
	in := &ec2.AssociateAddressInput{
		AllocationId:       aws.String(res.AllocationID),
		NetworkInterfaceId: aws.String(tgt.eni),
		AllowReassociation: aws.Bool(false),
	}
	if tgt.privateIP != "" {
		in.PrivateIpAddress = aws.String(tgt.privateIP)
	}
	var out *ec2.AssociateAddressOutput
	held := false
	// The retries of the association leave a part of the finishing
	// window to learn what they did (afterFailedAssociate), so that the
	// outcome reported is what EC2 says, not "unknown".
	rctx, cancelR := e.reserve(actx)
	defer cancelR()
	err := r.Do(rctx, "ec2:AssociateAddress", func(ctx context.Context) error {
		var err error
		out, err = e.EC2.AssociateAddress(ctx, in)
		if confirm.err != nil && retry.Code(err) == "Resource.AlreadyAssociated" {
			held = true
			return nil
		}
		return err
	})
	if held {
		// AlreadyAssociated: held, as the decision's read said, unless it
		// is held by this instance (a retried call whose first one went
		// through, or a stale read of a move made here meanwhile): then
		// decide again on the state EC2 shows.
		a, err := e.lookupUntil(ctx, res.AllocationID, func(a *types.Address) bool { return !free(a) })
		if err == nil && aws.ToString(a.NetworkInterfaceId) == tgt.eni {
			return nil, errRaced
		}
		return nil, confirm.err
	}
	if err != nil {
		assoc, err := e.afterFailedAssociate(ctx, log, req, tgt, res, oldAssoc, err)
		if err != nil {
			return nil, err
		}
		res.AssociationID = assoc
	} else {
		res.AssociationID = aws.ToString(out.AssociationId)
	}
	log.Info("associated", "association_id", res.AssociationID, "action", res.Action, "reason", res.Why)
	// The association is made: what remains (read back, tag) is finished
	// even if ctx ends now.
	if actx == ctx {
		var cancel context.CancelFunc
		actx, cancel = e.Finishing(ctx)
		defer cancel()
	}
	seen, err := e.readBack(actx, res, oldAssoc, confirm.assoc)
	if err != nil {
		return nil, err
	}
	// The decision's read may be stale: its tags older than the ones the
	// read-back, which shows this association, shows. The newer valid
	// epoch tag of the two is the one the move counts from.
	if rb := TagValue(seen.Tags, TagEpoch); rb != res.epochTag {
		if n, err := epoch.Parse(rb); err == nil {
			if old, err := epoch.Parse(res.epochTag); err != nil || n > old {
				res.epochTag = rb
			}
		}
	}
	e.settleEpoch(log, req, res, true)
	return res, nil
}

// afterFailedDisassociate learns what a failed DisassociateAddress did. It
// returns nil when the old association is gone all the same (the request
// was carried out, its answer lost), so that the move goes on.
func (e *Engine) afterFailedDisassociate(ctx context.Context, log *slog.Logger, res *Result, oldAssoc string, cause error) error {
	failed := fmt.Errorf("disassociate %s (%s) from %s: %w", res.AllocationID, oldAssoc, res.PreviousHolder, cause)
	a, err := e.lookup(ctx, res.AllocationID)
	switch {
	case err != nil:
		return fmt.Errorf("%w; whether the EIP %s (%s) is still on %s is unknown (%v): see `eipclaim status`, and if it is free run `eipclaim --role %s`", failed, res.PublicIP, res.AllocationID, res.PreviousHolder, err, res.Role)
	case aws.ToString(a.AssociationId) == oldAssoc:
		return fmt.Errorf("%w (nothing changed: %s still holds it)", failed, res.PreviousHolder)
	case free(a):
		log.Warn("the disassociation was carried out although its call failed; finishing the move", "holder", res.PreviousHolder, "association_id", oldAssoc, "error", cause)
		return nil
	case ctx.Err() == nil:
		return errRaced // moved by another claimer meanwhile: decide again
	}
	return fmt.Errorf("%w; meanwhile the EIP %s (%s) was moved to %s by another claimer", failed, res.PublicIP, res.AllocationID, describeHolder(a))
}

// afterFailedAssociate learns what a failed AssociateAddress did: it
// returns the association when it was made after all (interrupted in
// flight, the answer lost), errRaced when another claimer won while ctx
// lives, and otherwise the error to report, which says plainly when the
// EIP is left free by this claim's disassociation.
func (e *Engine) afterFailedAssociate(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *Result, oldAssoc string, cause error) (string, error) {
	failed := fmt.Errorf("associate %s with %s: %w", res.AllocationID, tgt.eni, cause)
	var until func(*types.Address) bool
	alreadyAssociated := retry.Code(cause) == "Resource.AlreadyAssociated"
	if alreadyAssociated {
		// EC2 said the EIP is associated: a read that shows it free is
		// stale (eventual consistency). Wait for one that shows who holds it.
		until = func(a *types.Address) bool { return !free(a) }
	}
	a, err := e.lookupUntil(ctx, res.AllocationID, until)
	switch {
	case err != nil:
		if oldAssoc != "" {
			return "", fmt.Errorf("%w; the EIP %s (%s) may now be FREE (its state could not be read: %v): see `eipclaim status`, and run `eipclaim --role %s` to claim it", failed, res.PublicIP, res.AllocationID, err, req.Role)
		}
		return "", failed
	case aws.ToString(a.NetworkInterfaceId) == tgt.eni && (tgt.privateIP == "" || aws.ToString(a.PrivateIpAddress) == tgt.privateIP) && alreadyAssociated && ctx.Err() == nil:
		// Ours before this call (a stale read showed it free): decide
		// again on the state now visible, which says already held.
		return "", errRaced
	case aws.ToString(a.NetworkInterfaceId) == tgt.eni && (tgt.privateIP == "" || aws.ToString(a.PrivateIpAddress) == tgt.privateIP):
		log.Warn("the association was made although its call failed", "association_id", aws.ToString(a.AssociationId), "error", cause)
		return aws.ToString(a.AssociationId), nil
	case free(a):
		if oldAssoc != "" {
			return "", fmt.Errorf("%w; the EIP %s (%s) is now FREE (associated with no instance); run `eipclaim --role %s` to claim it", failed, res.PublicIP, res.AllocationID, req.Role)
		}
		return "", failed
	case ctx.Err() == nil:
		// Another claimer took it first (Resource.AlreadyAssociated):
		// decide again on fresh state.
		return "", errRaced
	}
	return "", fmt.Errorf("%w; the EIP %s (%s) is now held by %s", failed, res.PublicIP, res.AllocationID, describeHolder(a))
}

// lookup reads the EIP's state on a context of its own, since ctx may be
// what ended the call whose effect is to be learned: one that ctx's
// cancellation does not end, bounded by FinishTimeout and, like the
// finishing of a move, by ctx's deadline plus FinishTimeout.
func (e *Engine) lookup(ctx context.Context, alloc string) (*types.Address, error) {
	return e.lookupUntil(ctx, alloc, nil)
}

// lookupUntil is lookup, reading again while until (when set) is false of
// the state read: a state that an answer EC2 gave proves stale.
func (e *Engine) lookupUntil(ctx context.Context, alloc string, until func(*types.Address) bool) (*types.Address, error) {
	fctx, cancelF := e.Finishing(ctx)
	defer cancelF()
	lctx, cancel := context.WithTimeout(fctx, e.finishTimeout())
	defer cancel()
	var addr *types.Address
	err := e.retrier().Do(lctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		out, err := e.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{alloc}})
		if err != nil {
			return err
		}
		for i := range out.Addresses {
			addr = &out.Addresses[i]
		}
		if addr == nil {
			return retry.NotVisibleYet("EIP " + alloc + " not found")
		}
		if until != nil && !until(addr) {
			return retry.NotVisibleYet("EIP " + alloc + " still shows the state before EC2's last answer")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the state of %s: %w", alloc, err)
	}
	return addr, nil
}

// Finishing returns the context that finishes a move once it has changed
// something: it is not ended by ctx's cancellation or deadline, but only
// FinishTimeout after either (and never later than ctx's deadline plus
// FinishTimeout), so that it stays bounded when a service manager stops
// eipclaim. A driver whose process ends at a hard deadline (a Lambda
// invocation) gives ctx a deadline FinishTimeout before it. The failover
// step publishes a move on it too.
func (e *Engine) Finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	grace := e.finishTimeout()
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if dl, ok := ctx.Deadline(); ok {
		var cancelDL context.CancelFunc
		fctx, cancelDL = context.WithDeadline(fctx, dl.Add(grace))
		cancelParent := cancel
		cancel = func() { cancelDL(); cancelParent() }
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-fctx.Done():
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-fctx.Done():
		}
	}()
	return fctx, cancel
}

// reserve returns ctx ended before its deadline by a quarter of
// FinishTimeout, or of the time left when that is less, so that a call
// always gets most of what is left (ctx itself when it has no deadline).
func (e *Engine) reserve(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, dl.Add(-min(e.finishTimeout(), time.Until(dl))/4))
}

func (e *Engine) finishTimeout() time.Duration {
	if e.FinishTimeout > 0 {
		return e.FinishTimeout
	}
	return defaultFinishTimeout
}

// free reports whether no one holds a (moto says InstanceId "" when free).
func free(a *types.Address) bool {
	return aws.ToString(a.NetworkInterfaceId) == "" && aws.ToString(a.InstanceId) == ""
}

// TagValue returns the value of the tag key, "" when there is none.
func TagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// describeHolder names who holds a.
func describeHolder(a *types.Address) string {
	if id := aws.ToString(a.InstanceId); id != "" {
		return id
	}
	return aws.ToString(a.NetworkInterfaceId)
}

// readBack waits until DescribeAddresses shows the association made, and
// returns the state that shows it. A state that shows the EIP free or
// still on an association the claim saw before it (oldAssocs) is from before
// the move (EC2's eventual consistency): it is read again.
func (e *Engine) readBack(ctx context.Context, res *Result, oldAssocs ...string) (*types.Address, error) {
	r := e.retrier()
	var seen *types.Address
	err := r.Do(ctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		out, err := e.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{res.AllocationID}})
		if err != nil {
			return err
		}
		for i, a := range out.Addresses {
			if aws.ToString(a.AssociationId) == res.AssociationID && aws.ToString(a.NetworkInterfaceId) == res.ENI {
				seen = &out.Addresses[i]
				return nil
			}
			if id := aws.ToString(a.AssociationId); id != "" && id != res.AssociationID && !slices.Contains(oldAssocs, id) {
				return fmt.Errorf("the EIP is now associated as %s with %s %s: another claimer moved it after us", id, aws.ToString(a.InstanceId), aws.ToString(a.NetworkInterfaceId))
			}
		}
		return retry.NotVisibleYet("the association " + res.AssociationID + " is not visible yet")
	})
	if err != nil {
		return nil, fmt.Errorf("read back the association of %s: %w", res.AllocationID, err)
	}
	return seen, nil
}

// Tag records on the EIP of a claim's result who holds it, since when and
// its epoch, when res.TagsStale says they are not recorded yet. Like the
// end of a move, it is finished even if ctx ends now (see finishing). A
// failure is a warning: the claim stands, and the next run repairs the
// tags.
func (e *Engine) Tag(ctx context.Context, res *Result) {
	if !res.TagsStale {
		return
	}
	ctx, cancel := e.Finishing(ctx)
	defer cancel()
	log := e.Log.With("role", res.Role, "allocation_id", res.AllocationID)
	err := e.writeClaimTags(ctx, res.AllocationID, TagHolder, TagClaimedAt, TagEpoch, res.Epoch)
	if err != nil {
		code := retry.Code(err)
		log.Warn("could not tag the EIP; the claim stands", "error_code", code, "error", err)
		return
	}
	res.TagsStale = false
}

// writeClaimTags writes the audit tags of a claim on resource (the EIP,
// or the interface that holds a private address): this instance as the
// holder under holderKey, now under claimedKey, the epoch under epochKey;
// retried as every call.
func (e *Engine) writeClaimTags(ctx context.Context, resource, holderKey, claimedKey, epochKey string, epoch int64) error {
	return e.retrier().Do(ctx, "ec2:CreateTags", func(ctx context.Context) error {
		_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: []string{resource},
			Tags: []types.Tag{
				{Key: aws.String(holderKey), Value: aws.String(e.InstanceID)},
				{Key: aws.String(claimedKey), Value: aws.String(e.clock().Now().UTC().Format(time.RFC3339))},
				{Key: aws.String(epochKey), Value: aws.String(strconv.FormatInt(epoch, 10))},
			},
		})
		return err
	})
}

// SyncEpoch raises the claim's epoch to n when n is greater (a role with
// an EIP and a private address has one epoch, the greater of the two
// claims'), marking the tags stale except in a dry run.
func (r *Result) SyncEpoch(n int64, dryRun bool) {
	if n > r.Epoch {
		r.Epoch, r.TagsStale = n, !dryRun
	}
}

// settleEpoch decides the claim's epoch (epoch.Decide) from the EIP's tag,
// whether the claim moved it, and the role table's record; it logs every
// problem with the epochs seen, and says whether the tags are to be
// rewritten (TagsStale, except in a dry run).
func (e *Engine) settleEpoch(log *slog.Logger, req Request, res *Result, moved bool) (retag bool) {
	var rec *epoch.Recorded
	if req.Recorded != nil {
		rec = req.Recorded()
	}
	d := epoch.Decide(res.epochTag, moved, rec, e.InstanceID)
	res.Epoch = d.Epoch
	for _, p := range d.Problems {
		res.EpochProblems = append(res.EpochProblems, p.Error())
		log.Warn("epoch: "+p.Error(), "tag", TagEpoch, "epoch", d.Epoch)
	}
	if d.TableAhead {
		log.Warn("the role table records a greater epoch than the EIP's tag (the tag was set back or deleted, or the role has a new EIP): the epoch goes above the table's",
			"tag", TagEpoch, "was", res.epochTag, "table_epoch", rec.Epoch, "table_holder", rec.Holder, "epoch", d.Epoch)
	}
	res.TagsStale = d.Retag && !req.DryRun
	return d.Retag
}

// untag removes the audit tag eipclaim:holder from a released EIP. It
// deletes only the value read before the release (holder), so that the tag
// of a claimer that took the EIP meanwhile stays. A failure is a warning:
// the release stands.
func (e *Engine) untag(ctx context.Context, log *slog.Logger, alloc, holder string) {
	if holder == "" {
		return
	}
	err := e.retrier().Do(ctx, "ec2:DeleteTags", func(ctx context.Context) error {
		_, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{
			Resources: []string{alloc},
			Tags:      []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(holder)}},
		})
		return err
	})
	if err != nil {
		code := retry.Code(err)
		log.Warn("could not remove the audit tag from the released EIP; the release stands", "tag", TagHolder, "error_code", code, "error", err)
	}
}

// target finds where on this instance the EIP goes: the interface and
// private IP the role asks for, checked against the EC2 API.
func (e *Engine) target(ctx context.Context, spec *config.Role) (*target, error) {
	var inst *types.Instance
	var missing missingSince
	var gone error
	err := e.retrier().Do(ctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		out, err := e.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{e.InstanceID}})
		code := retry.Code(err)
		if err != nil && code != "InvalidInstanceID.NotFound" {
			return err
		}
		if err == nil {
			for _, r := range out.Reservations {
				for i := range r.Instances {
					inst = &r.Instances[i]
				}
			}
			if inst != nil {
				return nil
			}
			err, code = retry.NotVisibleYet("instance "+e.InstanceID+" not found"), "no instance"
		}
		// A new instance may not be visible at once; one that stays
		// invisible is not in the credentials' account and region.
		now := e.clock().Now()
		missingFor := now.Sub(missing.first(now))
		if missingFor < selfNotFoundFactor*e.notFoundWait() {
			return err
		}
		gone = fmt.Errorf("this instance %s does not exist in %s for these AWS credentials (EC2 answered %s for %s): they are of another account; check the instance profile, AWS_PROFILE and AWS_ACCESS_KEY_ID", e.InstanceID, e.region(), code, missingFor.Round(time.Second))
		return gone
	})
	if gone != nil {
		return nil, exitcode.With(exitcode.Usage, gone)
	}
	if err != nil {
		return nil, fmt.Errorf("describe this instance %s: %w", e.InstanceID, err)
	}
	return pickTarget(e.InstanceID, inst.NetworkInterfaces, spec)
}

// selfTarget is this instance's own facts (its interfaces, device 0's
// interface, subnet and VPC) for the reads that change nothing (Secondary,
// Overlay: a watcher's every read): read once (DescribeInstances) and kept
// while the engine lives, since they do not change while the instance
// runs; an interface attached later is learnt when a read that finds one
// of this instance's interfaces not among them, or fails, drops them
// (forgetSelf). Claims and releases read them afresh (target).
func (e *Engine) selfTarget(ctx context.Context) (*target, error) {
	e.selfMu.Lock()
	t := e.self
	e.selfMu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := e.target(ctx, &config.Role{})
	if err != nil {
		return nil, err
	}
	e.selfMu.Lock()
	e.self = t
	e.selfMu.Unlock()
	return t, nil
}

// forgetSelf drops this instance's facts that selfTarget keeps: the next
// read describes the instance again.
func (e *Engine) forgetSelf() {
	e.selfMu.Lock()
	e.self = nil
	e.selfMu.Unlock()
}

// pickTarget chooses the interface and private IP among the instance's.
func pickTarget(instance string, nics []types.InstanceNetworkInterface, spec *config.Role) (*target, error) {
	t := &target{}
	for _, n := range nics {
		t.enis = append(t.enis, aws.ToString(n.NetworkInterfaceId))
	}
	if len(nics) == 0 {
		return nil, fmt.Errorf("instance %s has no network interface", instance)
	}
	var nic *types.InstanceNetworkInterface
	switch iface := spec.Interface; {
	case !iface.Set() && spec.PrivateIP != "":
		for i := range nics {
			if hasPrivateIP(&nics[i], spec.PrivateIP) {
				nic = &nics[i]
			}
		}
		if nic == nil {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("private_ip %s is not an address of instance %s (it has %s): fix private_ip or add the address to an interface", spec.PrivateIP, instance, allPrivateIPs(nics)))
		}
	case !iface.Set():
		nic = deviceIndex(nics, 0)
	case iface.ENI != "":
		for i := range nics {
			if aws.ToString(nics[i].NetworkInterfaceId) == iface.ENI {
				nic = &nics[i]
			}
		}
	default:
		nic = deviceIndex(nics, int32(iface.Device))
	}
	if nic == nil && spec.Interface.Set() {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("interface %s is not attached to instance %s (it has %s): fix interface", spec.Interface, instance, describeNICs(nics)))
	}
	if nic == nil {
		return nil, fmt.Errorf("instance %s has no interface at device index 0", instance)
	}
	t.eni = aws.ToString(nic.NetworkInterfaceId)
	t.privateIP = aws.ToString(nic.PrivateIpAddress)
	t.sourceDestCheck = nic.SourceDestCheck
	t.subnet, t.vpc = aws.ToString(nic.SubnetId), aws.ToString(nic.VpcId)
	if spec.PrivateIP != "" {
		if !hasPrivateIP(nic, spec.PrivateIP) {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("private_ip %s is not an address of interface %s (it has %s): fix private_ip or interface", spec.PrivateIP, t.eni, privateIPs(nic)))
		}
		t.privateIP = spec.PrivateIP
	}
	return t, nil
}

func deviceIndex(nics []types.InstanceNetworkInterface, idx int32) *types.InstanceNetworkInterface {
	for i := range nics {
		if a := nics[i].Attachment; a != nil && aws.ToInt32(a.DeviceIndex) == idx {
			return &nics[i]
		}
	}
	if idx == 0 && len(nics) == 1 {
		return &nics[0] // an interface without attachment details is the primary one
	}
	return nil
}

func hasPrivateIP(n *types.InstanceNetworkInterface, ip string) bool {
	if aws.ToString(n.PrivateIpAddress) == ip {
		return true
	}
	for _, p := range n.PrivateIpAddresses {
		if aws.ToString(p.PrivateIpAddress) == ip {
			return true
		}
	}
	return false
}

func privateIPs(n *types.InstanceNetworkInterface) []string {
	ips := []string{aws.ToString(n.PrivateIpAddress)}
	for _, p := range n.PrivateIpAddresses {
		if ip := aws.ToString(p.PrivateIpAddress); !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}

func allPrivateIPs(nics []types.InstanceNetworkInterface) []string {
	var ips []string
	for i := range nics {
		ips = append(ips, privateIPs(&nics[i])...)
	}
	return ips
}

func describeNICs(nics []types.InstanceNetworkInterface) []string {
	var s []string
	for _, n := range nics {
		idx := "?"
		if n.Attachment != nil {
			idx = strconv.Itoa(int(aws.ToInt32(n.Attachment.DeviceIndex)))
		}
		s = append(s, aws.ToString(n.NetworkInterfaceId)+" at device index "+idx)
	}
	return s
}

// address finds the role's fixed EIP. An EIP that EC2 says does not exist
// is looked for again during NotFoundWait (it may have just been
// allocated), then reported as a configuration error.
func (e *Engine) address(ctx context.Context, spec *config.Role) (*types.Address, error) {
	in := &ec2.DescribeAddressesInput{}
	what := spec.AllocationID
	if spec.AllocationID != "" {
		in.AllocationIds = []string{spec.AllocationID}
	} else {
		in.PublicIps = []string{spec.PublicIP}
		what = spec.PublicIP
	}
	var addr *types.Address
	var missing missingSince
	var gone error
	err := e.retrier().Do(ctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		out, err := e.EC2.DescribeAddresses(ctx, in)
		code := retry.Code(err)
		notFound := code == "InvalidAllocationID.NotFound" || code == "InvalidAddress.NotFound"
		if err != nil && !notFound {
			return err
		}
		if err == nil {
			for i := range out.Addresses {
				addr = &out.Addresses[i]
			}
			if addr != nil {
				return nil
			}
			code = "no address"
		}
		now := e.clock().Now()
		missingFor := now.Sub(missing.first(now))
		if missingFor < e.notFoundWait() {
			if class, _ := retry.Classify("ec2:DescribeAddresses", err); class == retry.Retry {
				return err // logged with its code
			}
			return retry.NotVisibleYet("EIP " + what + " not found (" + code + ")")
		}
		if spec.AllocationID != "" {
			gone = fmt.Errorf("allocation id %s does not exist in %s: check allocation_id (EC2 answered %s for %s; are the credentials of the EIP's account?)", what, e.region(), code, missingFor.Round(time.Second))
		} else {
			gone = fmt.Errorf("public_ip %s is not an EIP of this account in %s: check public_ip (EC2 answered %s for %s)", what, e.region(), code, missingFor.Round(time.Second))
		}
		return gone
	})
	if gone != nil {
		return nil, exitcode.With(exitcode.Usage, gone)
	}
	if err != nil {
		return nil, fmt.Errorf("find EIP %s: %w", what, err)
	}
	if addr.AllocationId == nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("EIP %s has no allocation id (EC2-Classic): eipclaim claims VPC EIPs only", what))
	}
	return addr, nil
}

// missingSince remembers when a resource was first reported missing.
type missingSince struct{ t time.Time }

// first records now as the first time, unless one is recorded, and
// returns the first time.
func (m *missingSince) first(now time.Time) time.Time {
	if m.t.IsZero() {
		m.t = now
	}
	return m.t
}

func (e *Engine) clock() retry.Clock {
	if e.Clock == nil {
		return retry.RealClock
	}
	return e.Clock
}

func (e *Engine) notFoundWait() time.Duration {
	if e.NotFoundWait > 0 {
		return e.NotFoundWait
	}
	return defaultNotFoundWait
}

func (e *Engine) region() string {
	if e.Region == "" {
		return "this region"
	}
	return e.Region
}

// eniInstance returns the instance an interface is attached to, "" if none.
func (e *Engine) eniInstance(ctx context.Context, eni string) (string, error) {
	var id string
	var missing missingSince
	var gone error
	err := e.retrier().Do(ctx, "ec2:DescribeNetworkInterfaces", func(ctx context.Context) error {
		out, err := e.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
		if code := retry.Code(err); code == "InvalidNetworkInterfaceID.NotFound" {
			now := e.clock().Now()
			if missingFor := now.Sub(missing.first(now)); missingFor >= e.notFoundWait() {
				gone = fmt.Errorf("the interface %s that holds the EIP does not exist (EC2 answered %s for %s): it was deleted, which frees the EIP; run again", eni, code, missingFor.Round(time.Second))
				return gone
			}
		}
		if err != nil {
			return err
		}
		for _, n := range out.NetworkInterfaces {
			if n.Attachment != nil {
				id = aws.ToString(n.Attachment.InstanceId)
			}
		}
		return nil
	})
	if gone != nil {
		return "", gone
	}
	if err != nil {
		return "", fmt.Errorf("find the holder of interface %s: %w", eni, err)
	}
	return id, nil
}

// spread orders addresses so that concurrent claimers start at different
// places: a rotation seeded by the instance id.
func spread(addrs []types.Address, instance string) []types.Address {
	slices.SortFunc(addrs, func(a, b types.Address) int {
		return strings.Compare(aws.ToString(a.AllocationId), aws.ToString(b.AllocationId))
	})
	if len(addrs) == 0 {
		return addrs
	}
	h := fnv.New32a()
	h.Write([]byte(instance))
	k := int(h.Sum32() % uint32(len(addrs)))
	return append(addrs[k:], addrs[:k]...)
}
