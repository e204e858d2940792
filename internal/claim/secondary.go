package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// A role's secondary private IP (private_address) is carried by its
// holder's interface as a secondary private IPv4 address
// (AssignPrivateIpAddresses) and moves between the holders' interfaces
// within one subnet. Its claim is the EIP's, on another resource: the same
// takeover rule (decide), fence, epoch (internal/epoch), retries and
// finishing; a move is a compare-and-swap:
//
//   - unassign the address from exactly the interface observed to hold it
//     (EC2 refuses if that interface no longer holds it: a lost race);
//   - assign it to this instance's interface without AllowReassignment
//     (EC2 refuses if any interface holds it: a lost race);
//   - read it back (DescribeNetworkInterfaces, EC2 is eventually
//     consistent) until it shows on this interface.
//
// Of two claimers exactly one wins, and the address is never on two
// interfaces. AllowReassignment is never true.
//
// An address has no resource of its own to carry tags: its audit tags and
// epoch are on the holder's interface, under keys of the role
// (SecondaryTagKeys); a takeover removes the previous holder's.

// The prefixes of the role-scoped audit tags on a secondary private IP's
// holder interface: the key is the prefix and the role's name.
const (
	TagHolderPrefix    = TagHolder + ":"
	TagClaimedAtPrefix = TagClaimedAt + ":"
	TagEpochPrefix     = TagEpoch + ":"
)

// SecondaryTagPatterns are the keys a claim of a secondary private IP
// writes on interfaces, as IAM patterns; SecondaryTagsDeleted the ones it
// deletes (the previous holder's on a takeover, the holder and
// claimed-at keys on a release): the shipped IAM policy allows
// ec2:CreateTags and ec2:DeleteTags on interfaces for these only.
var (
	SecondaryTagPatterns = []string{TagHolderPrefix + "*", TagClaimedAtPrefix + "*", TagEpochPrefix + "*"}
	SecondaryTagsDeleted = SecondaryTagPatterns
)

// SecondaryTagKeys are the keys of the role's audit tags on the interface
// that holds its secondary private IP.
func SecondaryTagKeys(role string) (holder, claimedAt, ep string) {
	return TagHolderPrefix + role, TagClaimedAtPrefix + role, TagEpochPrefix + role
}

// SecondaryResult says what a claim of a role's secondary private IP did.
type SecondaryResult struct {
	Role    string
	Address string // the secondary private IP
	// InstanceID and ENI are this instance and its interface that holds
	// the address now; Subnet and CIDR the interface's subnet.
	InstanceID, ENI, Subnet, CIDR string
	// Action is as a Result's: "already held", "claimed", "taken over",
	// "would be claimed", "would be taken over".
	Action string
	// PreviousHolder is the instance (or interface) that held the address
	// before, PreviousENI its interface, Why the reason it could be taken.
	PreviousHolder, PreviousENI, Why string
	// Epoch is the role's epoch once the claim is tagged (epoch.Decide).
	Epoch         int64
	EpochProblems []string
	Fence         *Fence
	// TagsStale says that the audit tags do not name this holder and
	// epoch yet (on this interface), or that another interface still
	// carries the role's: the caller runs TagSecondary.
	TagsStale bool

	stale []taggedENI // interfaces other than ENI carrying the role's tags
}

// secondaryState is what one look at a secondary private IP shows.
type secondaryState struct {
	holderENI string // "" when no interface has the address
	holder    string // the instance the holder interface is attached to
	holderIP  string // the holder interface's primary private IP (health checks)
	primary   bool   // the address is the holder interface's primary address
	// tagged are the interfaces of the VPC that carry the role's epoch
	// tag.
	tagged []taggedENI
}

// taggedENI is an interface with the role's audit tags as read.
type taggedENI struct {
	eni                      string
	holder, claimedAt, epoch string // values, "" when absent
}

// ClaimSecondary assigns the role's private_address to this instance's
// interface (the one the EIP goes to: interface, or device 0), as the
// request's policy allows, and reads it back.
func (e *Engine) ClaimSecondary(ctx context.Context, req Request) (*SecondaryResult, error) {
	addr := req.Spec.PrivateAddress
	log := e.Log.With("role", req.Role, "instance_id", e.InstanceID, "private_address", addr)
	tgt, err := e.target(ctx, req.Spec)
	if err != nil {
		return nil, err
	}
	log = log.With("eni_id", tgt.eni)
	// The subnet and the address's state do not depend on each other.
	var (
		cidr        netip.Prefix
		st          *secondaryState
		cErr, stErr error
		wg          sync.WaitGroup
	)
	wg.Go(func() { st, stErr = e.lookSecondary(ctx, tgt.vpc, req.Role, addr) })
	cidr, cErr = e.subnetCIDR(ctx, tgt, addr)
	wg.Wait()
	if cErr != nil {
		return nil, cErr
	}
	if stErr != nil {
		return nil, stErr
	}
	return redecide(log, req.Role, "the private address "+addr, "another instance took the private address first", st,
		func() (*secondaryState, error) { return e.lookSecondary(ctx, tgt.vpc, req.Role, addr) },
		func(st *secondaryState) (*SecondaryResult, error) {
			return e.claimSecondaryOne(ctx, log, req, tgt, cidr, st)
		})
}

// subnetCIDR returns the CIDR of the target interface's subnet, and a
// configuration error when the address is not in it: a secondary private
// IP moves only within one subnet.
func (e *Engine) subnetCIDR(ctx context.Context, tgt *target, addr string) (netip.Prefix, error) {
	// A subnet's IPv4 CIDR never changes: read once while the engine lives.
	e.selfMu.Lock()
	cidr, known := e.subnets[tgt.subnet]
	e.selfMu.Unlock()
	var err error
	if !known {
		cidr, err = e.describeSubnetCIDR(ctx, tgt)
		if err != nil {
			return netip.Prefix{}, err
		}
		e.selfMu.Lock()
		if e.subnets == nil {
			e.subnets = map[string]netip.Prefix{}
		}
		e.subnets[tgt.subnet] = cidr
		e.selfMu.Unlock()
	}
	a, _ := netip.ParseAddr(addr)
	if !cidr.Contains(a) {
		return netip.Prefix{}, exitcode.With(exitcode.Usage, fmt.Errorf("private_address %s is not in subnet %s (%s) of interface %s: a secondary private IP moves only within one subnet; put the role's instances in that subnet and choose a free address of it, or use an overlay address (routed to the holder) across subnets", addr, tgt.subnet, cidr, tgt.eni))
	}
	return cidr, nil
}

// describeSubnetCIDR reads the CIDR of the target interface's subnet.
func (e *Engine) describeSubnetCIDR(ctx context.Context, tgt *target) (netip.Prefix, error) {
	var cidr netip.Prefix
	err := e.retrier().Do(ctx, "ec2:DescribeSubnets", func(ctx context.Context) error {
		out, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{tgt.subnet}})
		if err != nil {
			return err
		}
		if len(out.Subnets) == 0 {
			return retry.NotVisibleYet("subnet " + tgt.subnet + " not found")
		}
		block := aws.ToString(out.Subnets[0].CidrBlock)
		if cidr, err = netip.ParsePrefix(block); err != nil {
			return fmt.Errorf("subnet %s: EC2 reported CIDR %q: %w", tgt.subnet, block, err)
		}
		return nil
	})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("describe the subnet %s of interface %s: %w", tgt.subnet, tgt.eni, err)
	}
	return cidr, nil
}

// lookSecondary reads who holds the address in the VPC (the interfaces
// that have it: one at most on EC2), and the interfaces that carry the
// role's tags.
func (e *Engine) lookSecondary(ctx context.Context, vpc, role, addr string) (*secondaryState, error) {
	st := &secondaryState{}
	var holders []types.NetworkInterface
	var tagged []types.NetworkInterface
	var hErr, tErr error
	var wg sync.WaitGroup
	wg.Go(func() { tagged, tErr = e.taggedENIs(ctx, vpc, role) })
	holders, hErr = e.enisWith(ctx, vpc, addr)
	wg.Wait()
	if hErr != nil {
		return nil, hErr
	}
	if tErr != nil {
		return nil, tErr
	}
	if err := st.setHolders(addr, holders); err != nil {
		return nil, err
	}
	st.addTagged(role, tagged)
	return st, nil
}

// setHolders records the interface that has the address (one at most on
// EC2).
func (st *secondaryState) setHolders(addr string, holders []types.NetworkInterface) error {
	if len(holders) > 1 {
		var ids []string
		for _, n := range holders {
			ids = append(ids, aws.ToString(n.NetworkInterfaceId))
		}
		return fmt.Errorf("the private address %s is on %d interfaces (%v), which EC2 does not allow: see `aws ec2 describe-network-interfaces --filters Name=addresses.private-ip-address,Values=%s`", addr, len(holders), ids, addr)
	}
	for _, n := range holders {
		st.holderENI = aws.ToString(n.NetworkInterfaceId)
		st.holderIP = aws.ToString(n.PrivateIpAddress)
		st.primary = st.holderIP == addr
		if n.Attachment != nil {
			st.holder = aws.ToString(n.Attachment.InstanceId)
		}
	}
	return nil
}

// addTagged records the interfaces that carry the role's tags.
func (st *secondaryState) addTagged(role string, tagged []types.NetworkInterface) {
	hk, ck, ek := SecondaryTagKeys(role)
	for _, n := range tagged {
		st.tagged = append(st.tagged, taggedENI{eni: aws.ToString(n.NetworkInterfaceId),
			holder: TagValue(n.TagSet, hk), claimedAt: TagValue(n.TagSet, ck), epoch: TagValue(n.TagSet, ek)})
	}
}

// lookHeld is lookSecondary for a read that changes nothing (Secondary):
// the interfaces that have the address first, and when one does and
// carries the role's epoch tag, that is the whole answer (one request: a
// watcher's steady read); else the tagged interfaces too (the greatest
// epoch left on a released one).
func (e *Engine) lookHeld(ctx context.Context, vpc, role, addr string) (*secondaryState, error) {
	holders, err := e.enisWith(ctx, vpc, addr)
	if err != nil {
		return nil, err
	}
	_, _, ek := SecondaryTagKeys(role)
	if len(holders) != 1 || TagValue(holders[0].TagSet, ek) == "" {
		return e.lookSecondary(ctx, vpc, role, addr)
	}
	st := &secondaryState{}
	if err := st.setHolders(addr, holders); err != nil {
		return nil, err
	}
	st.addTagged(role, holders)
	return st, nil
}

// enisWith lists the interfaces of the VPC that have addr among their
// private IPv4 addresses.
func (e *Engine) enisWith(ctx context.Context, vpc, addr string) ([]types.NetworkInterface, error) {
	return e.describeENIs(ctx, "find the interface that holds "+addr, []types.Filter{
		{Name: aws.String("addresses.private-ip-address"), Values: []string{addr}},
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
	})
}

// taggedENIs lists the interfaces of the VPC that carry the role's epoch
// tag: every claim writes it with the holder's, and a release keeps it.
// (One key: moto 5.2.1 matches a tag-key filter of several values only
// when they are all, or all its keys, of the interface.)
func (e *Engine) taggedENIs(ctx context.Context, vpc, role string) ([]types.NetworkInterface, error) {
	_, _, ek := SecondaryTagKeys(role)
	return e.describeENIs(ctx, "find the interfaces tagged for role "+role, []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{ek}},
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
	})
}

func (e *Engine) describeENIs(ctx context.Context, what string, filters []types.Filter) ([]types.NetworkInterface, error) {
	var enis []types.NetworkInterface
	err := e.retrier().Do(ctx, "ec2:DescribeNetworkInterfaces", func(ctx context.Context) error {
		enis = nil
		p := ec2.NewDescribeNetworkInterfacesPaginator(e.EC2, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			enis = append(enis, out.NetworkInterfaces...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return enis, nil
}

// claimSecondaryOne decides on one look at the address and acts.
func (e *Engine) claimSecondaryOne(ctx context.Context, log *slog.Logger, req Request, tgt *target, cidr netip.Prefix, st *secondaryState) (*SecondaryResult, error) {
	addr := req.Spec.PrivateAddress
	res := &SecondaryResult{Role: req.Role, Address: addr, InstanceID: e.InstanceID, ENI: tgt.eni, Subnet: tgt.subnet, CIDR: cidr.String()}
	if st.primary {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("private_address %s is the primary private address of interface %s (%s): a primary address cannot move; choose a free address of subnet %s (%s)", addr, st.holderENI, orNone(st.holder), tgt.subnet, cidr))
	}
	switch {
	case st.holderENI == tgt.eni:
		res.Action = "already held"
		was := st.taggedOf(tgt.eni).holder
		if was != e.InstanceID && was != "" {
			res.PreviousHolder = was
		}
		log.Info("private address already held by this instance: nothing to do")
		e.settleSecondaryEpoch(log, req, res, st, was != e.InstanceID)
		return res, nil
	case st.holderENI == "":
		res.Action, res.Why = "claimed", "the address was free"
		return e.moveSecondary(ctx, log, req, tgt, res, st, nil)
	case st.holder == e.InstanceID || slices.Contains(tgt.enis, st.holderENI):
		res.Action, res.PreviousHolder, res.PreviousENI = "claimed", st.holderENI, st.holderENI
		res.Why = "the address was on another interface of this instance"
		return e.moveSecondary(ctx, log, req, tgt, res, st, nil)
	}
	name := orNone(st.holder)
	if st.holder == "" {
		name = st.holderENI
	}
	res.PreviousHolder, res.PreviousENI = name, st.holderENI
	// The takeover rule on facts read now, as for an EIP (claimOne).
	why, f, err := e.judgeTakeover(ctx, log, req, "private address "+addr, st.holder, st.holderIP, name+" ("+st.holderENI+")")
	if errors.Is(err, ErrRefused) {
		return e.refuseSecondary(ctx, log, req, tgt, res, st, err)
	}
	if err != nil {
		return nil, err
	}
	res.Why, res.Action, res.Fence = why, "taken over", f
	log.Info("taking over the private address", "holder", name, "reason", res.Why)
	return e.moveSecondary(ctx, log, req, tgt, res, st, nil)
}

// refuseSecondary returns refusal once EC2 itself has said the address is
// held (see refuse: the read that showed the holder may be stale): an
// assign without reassignment, which EC2 carries out only for a free
// address, confirms it. A dry run refuses on the read.
func (e *Engine) refuseSecondary(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *SecondaryResult, st *secondaryState, refusal error) (*SecondaryResult, error) {
	if req.DryRun {
		return nil, refusal
	}
	stale := *res
	stale.Action, stale.PreviousHolder, stale.PreviousENI = "claimed", "", ""
	stale.Why = "the address was free (the read that showed it held by " + res.PreviousHolder + " was stale)"
	free := *st
	free.holderENI, free.holder = "", ""
	return e.moveSecondary(ctx, log, req, tgt, &stale, &free, refusal)
}

// moveSecondary moves the address to the target interface: unassign from
// exactly the interface st shows holding it (none when free), assign
// without reassignment, read back. A refusal of either by EC2 is a lost
// race (errRaced); once the unassign is done the move is finished on the
// finishing context. With confirm set, the assign confirms a refusal (see
// refuseSecondary): an address in use returns confirm.
func (e *Engine) moveSecondary(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *SecondaryResult, st *secondaryState, confirm error) (*SecondaryResult, error) {
	addr := res.Address
	if req.DryRun {
		res.Action = "would be " + res.Action
		e.settleSecondaryEpoch(log, req, res, st, true)
		log.Info("dry run: no change made", "action", res.Action, "reason", res.Why, "epoch", res.Epoch)
		return res, nil
	}
	r := e.retrier()
	actx := ctx
	from := st.holderENI
	if from != "" {
		notHeld := false
		err := r.Do(ctx, "ec2:UnassignPrivateIpAddresses", func(ctx context.Context) error {
			_, err := e.EC2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(from), PrivateIpAddresses: []string{addr}})
			if retry.Code(err) == "InvalidParameterValue" {
				notHeld = true // no longer on from: someone moved it
				return nil
			}
			return err
		})
		switch {
		case notHeld:
			return nil, errRaced
		case err != nil:
			failed := fmt.Errorf("unassign %s from %s (%s): %w", addr, from, res.PreviousHolder, err)
			now, lerr := e.lookSecondaryFinishing(ctx, tgt.vpc, req.Role, addr)
			switch {
			case lerr != nil:
				return nil, fmt.Errorf("%w; whether %s is still on %s is unknown (%v): see `eipclaim status`, and if it is free run `eipclaim --role %s`", failed, addr, from, lerr, req.Role)
			case now.holderENI == from:
				return nil, fmt.Errorf("%w (nothing changed: %s still holds it)", failed, res.PreviousHolder)
			case now.holderENI == "":
				log.Warn("the unassign was carried out although its call failed; finishing the move", "holder", res.PreviousHolder, "error", err)
			case ctx.Err() == nil:
				return nil, errRaced
			default:
				return nil, fmt.Errorf("%w; meanwhile %s was moved to %s by another claimer", failed, addr, now.holderENI)
			}
		default:
			log.Info("unassigned from the previous holder", "holder", res.PreviousHolder, "previous_eni", from)
		}
		var cancel context.CancelFunc
		actx, cancel = e.Finishing(ctx)
		defer cancel()
	}
	inUse := false
	rctx, cancelR := e.reserve(actx)
	defer cancelR()
	err := r.Do(rctx, "ec2:AssignPrivateIpAddresses", func(ctx context.Context) error {
		_, err := e.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(tgt.eni),
			PrivateIpAddresses: []string{addr},
			AllowReassignment:  aws.Bool(false),
		})
		if retry.Code(err) == "InvalidIPAddress.InUse" {
			inUse = true // on another interface: confirmed below
			return nil
		}
		return err
	})
	if err != nil || inUse {
		if err := e.afterFailedAssign(ctx, log, req, tgt, res, from, inUse, confirm, err); err != nil {
			return nil, err
		}
	}
	log.Info("assigned", "action", res.Action, "reason", res.Why)
	if actx == ctx {
		var cancel context.CancelFunc
		actx, cancel = e.Finishing(ctx)
		defer cancel()
	}
	if err := e.readBackSecondary(actx, tgt, res, from); err != nil {
		return nil, err
	}
	e.settleSecondaryEpoch(log, req, res, st, true)
	return res, nil
}

// afterFailedAssign learns what a failed (or refused: inUse) assign did:
// nil when the address is on the target after all, errRaced when another
// claimer holds it and ctx lives (decide again: it reports the winner),
// confirm when it confirms a refusal, else the error to report, which says
// plainly when the address is left free by this claim's unassign.
func (e *Engine) afterFailedAssign(ctx context.Context, log *slog.Logger, req Request, tgt *target, res *SecondaryResult, from string, inUse bool, confirm, cause error) error {
	addr := res.Address
	if cause == nil {
		cause = errors.New("InvalidIPAddress.InUse: the address is on another interface")
	}
	failed := fmt.Errorf("assign %s to %s: %w", addr, tgt.eni, cause)
	now, err := e.lookSecondaryFinishing(ctx, tgt.vpc, req.Role, addr)
	if err == nil && inUse && now.holderENI == "" {
		// EC2 said it is in use: a read that shows it free is stale.
		now, err = e.lookSecondaryUntil(ctx, tgt.vpc, req.Role, addr, func(s *secondaryState) bool { return s.holderENI != "" })
	}
	switch {
	case err != nil:
		if from != "" {
			return fmt.Errorf("%w; the private address %s may now be FREE (its state could not be read: %v): see `eipclaim status`, and run `eipclaim --role %s` to claim it", failed, addr, err, req.Role)
		}
		return failed
	case now.holderENI == tgt.eni && inUse && ctx.Err() == nil:
		return errRaced // ours before this call: decide again (already held)
	case now.holderENI == tgt.eni:
		log.Warn("the assign was carried out although its call failed", "error", cause)
		return nil
	case now.holderENI == "":
		if from != "" {
			return fmt.Errorf("%w; the private address %s is now FREE (on no interface: never on two); run `eipclaim --role %s` to claim it", failed, addr, req.Role)
		}
		return failed
	case confirm != nil:
		return confirm
	case ctx.Err() == nil:
		return errRaced // another claimer took it first: decide again
	}
	return fmt.Errorf("%w; the private address %s is now held by %s", failed, addr, orNone(now.holder)+" ("+now.holderENI+")")
}

// lookSecondaryFinishing is lookSecondary on a context that ctx's
// cancellation does not end (see lookup).
func (e *Engine) lookSecondaryFinishing(ctx context.Context, vpc, role, addr string) (*secondaryState, error) {
	return e.lookSecondaryUntil(ctx, vpc, role, addr, nil)
}

// lookSecondaryUntil is lookSecondaryFinishing, reading again while until
// (when set) is false of the state read.
func (e *Engine) lookSecondaryUntil(ctx context.Context, vpc, role, addr string, until func(*secondaryState) bool) (*secondaryState, error) {
	fctx, cancelF := e.Finishing(ctx)
	defer cancelF()
	lctx, cancel := context.WithTimeout(fctx, e.finishTimeout())
	defer cancel()
	var st *secondaryState
	err := e.retrier().Do(lctx, "ec2:DescribeNetworkInterfaces", func(ctx context.Context) error {
		var err error
		if st, err = e.lookSecondary(ctx, vpc, role, addr); err != nil {
			return err
		}
		if until != nil && !until(st) {
			return retry.NotVisibleYet("the private address " + addr + " still shows the state before EC2's last answer")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the state of the private address %s: %w", addr, err)
	}
	return st, nil
}

// readBackSecondary waits until DescribeNetworkInterfaces shows the
// address on the target interface. A state that shows it free or still on
// from is from before the move (eventual consistency): read again.
func (e *Engine) readBackSecondary(ctx context.Context, tgt *target, res *SecondaryResult, from string) error {
	err := e.retrier().Do(ctx, "ec2:DescribeNetworkInterfaces", func(ctx context.Context) error {
		enis, err := e.enisWith(ctx, tgt.vpc, res.Address)
		if err != nil {
			return err
		}
		for _, n := range enis {
			id := aws.ToString(n.NetworkInterfaceId)
			if id == tgt.eni {
				return nil
			}
			if id != from {
				holder := ""
				if n.Attachment != nil {
					holder = aws.ToString(n.Attachment.InstanceId)
				}
				return fmt.Errorf("the private address is now on %s (%s): another claimer moved it after us", id, orNone(holder))
			}
		}
		return retry.NotVisibleYet("the private address " + res.Address + " is not visible on " + tgt.eni + " yet")
	})
	if err != nil {
		return fmt.Errorf("read back %s on %s: %w", res.Address, tgt.eni, err)
	}
	return nil
}

// taggedOf returns the role's tags on eni as read (zero when none).
func (st *secondaryState) taggedOf(eni string) taggedENI {
	for _, t := range st.tagged {
		if t.eni == eni {
			return t
		}
	}
	return taggedENI{eni: eni}
}

// settleSecondaryEpoch decides the claim's epoch (epoch.Decide) from the
// greatest epoch tag of the role's interfaces (the holder's, and one left
// on a released interface), whether the claim moved the address, and the
// role table's record; it says whether the tags are to be written.
func (e *Engine) settleSecondaryEpoch(log *slog.Logger, req Request, res *SecondaryResult, st *secondaryState, moved bool) {
	var rec *epoch.Recorded
	if req.Recorded != nil {
		rec = req.Recorded()
	}
	tag, best := "", int64(-1)
	for _, t := range st.tagged {
		n, err := epoch.Parse(t.epoch)
		if err != nil {
			if t.eni == st.holderENI || best < 0 {
				tag = t.epoch // reported by Decide when no valid one is above it
			}
			continue
		}
		if t.epoch != "" && n > best {
			tag, best = t.epoch, n
		}
	}
	d := epoch.Decide(tag, moved, rec, e.InstanceID)
	res.Epoch = d.Epoch
	for _, p := range d.Problems {
		res.EpochProblems = append(res.EpochProblems, p.Error())
		log.Warn("epoch: "+p.Error(), "tag", TagEpochPrefix+req.Role, "epoch", d.Epoch)
	}
	if d.TableAhead {
		log.Warn("the role table records a greater epoch than the interfaces' tags: the epoch goes above the table's",
			"tag", TagEpochPrefix+req.Role, "was", tag, "table_epoch", rec.Epoch, "table_holder", rec.Holder, "epoch", d.Epoch)
	}
	mine := st.taggedOf(res.ENI)
	res.stale = nil
	for _, t := range st.tagged {
		if t.eni != res.ENI {
			res.stale = append(res.stale, t)
		}
	}
	retag := d.Retag || mine.epoch != strconv.FormatInt(d.Epoch, 10) || mine.holder != e.InstanceID || len(res.stale) > 0
	res.TagsStale = retag && !req.DryRun
}

// SyncEpoch sets the result's epoch to n when n is greater (a role with an
// EIP and a private address has one epoch: the greater of the two
// claims'), marking the tags stale except in a dry run.
func (r *SecondaryResult) SyncEpoch(n int64, dryRun bool) {
	if n > r.Epoch {
		r.Epoch, r.TagsStale = n, !dryRun
	}
}

// TagSecondary records on the holder interface of a claim's secondary
// private IP who holds it, since when and the epoch, and removes the
// role's tags from the other interfaces that carry them (the previous
// holder's), when res.TagsStale says so. Like Tag, it is finished even if
// ctx ends now, and a failure is a warning: the claim stands.
func (e *Engine) TagSecondary(ctx context.Context, res *SecondaryResult) {
	if !res.TagsStale {
		return
	}
	ctx, cancel := e.Finishing(ctx)
	defer cancel()
	log := e.Log.With("role", res.Role, "private_address", res.Address, "eni_id", res.ENI)
	hk, ck, ek := SecondaryTagKeys(res.Role)
	err := e.writeClaimTags(ctx, res.ENI, hk, ck, ek, res.Epoch)
	if err != nil {
		log.Warn("could not tag the interface that holds the private address; the claim stands", "error_code", retry.Code(err), "error", err)
		return
	}
	// The new holder's tags are written: the old ones go (only the values
	// read, so that a claimer's newer tags stay).
	for _, t := range res.stale {
		e.untagSecondary(ctx, log, t, hk, ck, ek)
	}
	res.TagsStale, res.stale = false, nil
}

// untagSecondary deletes the role's tags from t's interface, with the
// values read.
func (e *Engine) untagSecondary(ctx context.Context, log *slog.Logger, t taggedENI, keys ...string) {
	var tags []types.Tag
	for i, v := range []string{t.holder, t.claimedAt, t.epoch} {
		if v != "" && i < len(keys) {
			tags = append(tags, types.Tag{Key: aws.String(keys[i]), Value: aws.String(v)})
		}
	}
	if len(tags) == 0 {
		return
	}
	err := e.retrier().Do(ctx, "ec2:DeleteTags", func(ctx context.Context) error {
		_, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{t.eni}, Tags: tags})
		return err
	})
	if err != nil {
		log.Warn("could not remove the role's tags from an interface that no longer holds the private address", "previous_eni", t.eni, "error_code", retry.Code(err), "error", err)
	}
}

func orNone(instance string) string {
	if instance == "" {
		return "no instance"
	}
	return instance
}

// ReleaseSecondary unassigns the role's private_address from this
// instance's interface that holds it, if one does (never from another
// instance's), and removes the role's holder and claimed-at tags there:
// the epoch tag stays, for the next claim to count from. It returns what
// it did: "released …", "would release …", or why there was nothing to do.
func (e *Engine) ReleaseSecondary(ctx context.Context, role string, spec *config.Role, dryRun bool) (string, error) {
	addr := spec.PrivateAddress
	tgt, err := e.target(ctx, &config.Role{})
	if err != nil {
		return "", err
	}
	st, err := e.lookSecondary(ctx, tgt.vpc, role, addr)
	if err != nil {
		return "", err
	}
	log := e.Log.With("role", role, "instance_id", e.InstanceID, "private_address", addr, "eni_id", st.holderENI)
	switch {
	case st.holderENI == "":
		return "nothing to do: the private address " + addr + " is on no interface", nil
	case !slices.Contains(tgt.enis, st.holderENI):
		return fmt.Sprintf("nothing to do: the private address %s is held by %s (%s), not this instance", addr, orNone(st.holder), st.holderENI), nil
	case st.primary:
		return "", exitcode.With(exitcode.Usage, fmt.Errorf("private_address %s is the primary private address of this instance's interface %s: it cannot be released", addr, st.holderENI))
	case dryRun:
		log.Info("dry run: would release the private address")
		return fmt.Sprintf("would release the private address %s from %s", addr, st.holderENI), nil
	}
	err = e.retrier().Do(ctx, "ec2:UnassignPrivateIpAddresses", func(ctx context.Context) error {
		_, err := e.EC2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(st.holderENI), PrivateIpAddresses: []string{addr}})
		if retry.Code(err) == "InvalidParameterValue" {
			return nil // no longer there (a retried call that went through, or another claimer)
		}
		return err
	})
	if err != nil {
		failed := fmt.Errorf("unassign %s from %s: %w", addr, st.holderENI, err)
		now, lerr := e.lookSecondaryFinishing(ctx, tgt.vpc, role, addr)
		if lerr != nil {
			return "", fmt.Errorf("%w; whether it is released is unknown (%v): see `eipclaim status`", failed, lerr)
		}
		if now.holderENI == st.holderENI {
			return "", fmt.Errorf("%w (nothing changed: this instance still holds it)", failed)
		}
		log.Warn("the unassign was carried out although its call failed", "error", err)
	}
	log.Info("released the private address")
	fctx, cancel := e.Finishing(ctx)
	defer cancel()
	hk, ck, _ := SecondaryTagKeys(role)
	t := st.taggedOf(st.holderENI)
	t.epoch = "" // kept: the next claim counts from it
	e.untagSecondary(fctx, log, t, hk, ck)
	return fmt.Sprintf("released the private address %s from %s", addr, st.holderENI), nil
}

// SecondaryStatus is what `eipclaim status` shows of a role's secondary
// private IP.
type SecondaryStatus struct {
	Address  string `json:"address"`
	ENI      string `json:"eni_id,omitempty"`     // the interface that has it, "" when free
	Holder   string `json:"holder,omitempty"`     // its instance
	HolderIP string `json:"private_ip,omitempty"` // the holder interface's primary private IP
	// Epoch is the role's epoch tag on the holder's interface (or the
	// greatest left on a released one), as stored.
	Epoch string `json:"epoch,omitempty"`
	// ClaimedAt is the holder interface's claimed-at tag, when its holder
	// tag names the holder (as written by its claim), "" otherwise.
	ClaimedAt string  `json:"claimed_at,omitempty"`
	Health    *Health `json:"health,omitempty"`
}

// AsAddress is the secondary private IP seen as an EIP's Address, for the
// watcher, which follows either the same way: the holder and its
// interface; PrivateIP the interface's primary private IP (the target of
// the holder's health_check, as an EIP's); AssociationID the interface
// (the failed looks count against one holder interface); the audit tags
// under the EIP's keys. It has no AllocationID nor PublicIP.
func (s *SecondaryStatus) AsAddress() Address {
	a := Address{ENI: s.ENI, AssociationID: s.ENI, PrivateIP: s.HolderIP, Holder: s.Holder, Health: s.Health, Tags: map[string]string{}}
	if s.Epoch != "" {
		a.Tags[TagEpoch] = s.Epoch
	}
	if s.ClaimedAt != "" {
		a.Tags[TagHolder], a.Tags[TagClaimedAt] = s.Holder, s.ClaimedAt
	}
	return a
}

// Free reports whether no interface has the address.
func (s *SecondaryStatus) Free() bool { return s.ENI == "" }

// Secondary reads where the role's private_address is (in this instance's
// VPC) and, with withHealth, examines its holder as a claim would. It
// changes nothing.
func (e *Engine) Secondary(ctx context.Context, role string, spec *config.Role, withHealth bool) (*SecondaryStatus, error) {
	tgt, err := e.selfTarget(ctx) // its VPC
	if err != nil {
		return nil, err
	}
	st, err := e.lookHeld(ctx, tgt.vpc, role, spec.PrivateAddress)
	if err != nil {
		e.forgetSelf()
		return nil, err
	}
	out := &SecondaryStatus{Address: spec.PrivateAddress, ENI: st.holderENI, Holder: st.holder, HolderIP: st.holderIP}
	t := st.taggedOf(st.holderENI)
	if st.holderENI != "" && t.holder == st.holder && st.holder != "" {
		out.ClaimedAt = t.claimedAt
	}
	if st.holderENI != "" && t.epoch != "" {
		out.Epoch = t.epoch // the holder's own tag
	} else {
		best := int64(-1)
		for _, t := range st.tagged { // the greatest left on a released interface
			if n, err := epoch.Parse(t.epoch); err == nil && n > best {
				out.Epoch, best = t.epoch, n
			}
		}
	}
	if withHealth && st.holderENI != "" {
		if out.Health, err = e.health(ctx, st.holder, st.holderIP, spec.HealthCheck); err != nil {
			return out, err
		}
	}
	return out, nil
}
