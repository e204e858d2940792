package claim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// The engine under EC2's eventual consistency: a DescribeAddresses after a
// mutation may answer the state from before it (the fake's stale).

// TestStaleHeldReadDoesNotRefuseAFreeEIP: the healthy holder released the
// EIP a moment ago, but the claimer's reads still show it held (by the
// association released). The claim must not be refused (exit 4, the EIP
// left on nobody): EC2's own AssociateAddress with
// AllowReassociation=false says the EIP is free, and the read-back waits
// until the stale association is gone. Before the fix: exit 4 on the read.
func TestStaleHeldReadDoesNotRefuseAFreeEIP(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	f.addr(alloc).Tags = setTag(f.addr(alloc).Tags, TagEpoch, "3")
	held := f.snapshot()
	a := f.addr(alloc)
	a.AssociationId, a.NetworkInterfaceId, a.InstanceId, a.PrivateIpAddress = nil, nil, aws.String(""), nil // released
	f.stale = [][]*types.Address{held, held}                                                                // the decision, the read-back
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatalf("claim of a free EIP that a stale read shows held: %v (exit %d), want it claimed", err, exitcode.Of(err))
	}
	if got := aws.ToString(f.addr(alloc).InstanceId); got != self || res.Action != "claimed" || res.Epoch != 4 {
		t.Errorf("holder %s, action %q, epoch %d; want %s, claimed, 4", got, res.Action, res.Epoch, self)
	}
	if !strings.Contains(res.Why, "stale") {
		t.Errorf("why %q: want it to say the read was stale", res.Why)
	}
}

// TestStaleHeldReadRefusalConfirmed: the holder really holds the EIP: the
// confirming AssociateAddress is refused by EC2 and the claim is refused,
// naming the holder, with nothing changed.
func TestStaleHeldReadRefusalConfirmed(t *testing.T) {
	for _, policy := range []config.Takeover{config.TakeoverIfHolderDown, config.TakeoverNever} {
		f := newFake()
		holdBy(f, other)
		e, _ := newEngine(t, f)
		_, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc, Takeover: policy}})
		if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "held by "+other) {
			t.Errorf("%s: %v (exit %d), want refused naming %s", policy, err, exitcode.Of(err), other)
		}
		if aws.ToString(f.addr(alloc).AssociationId) != "eipassoc-old" || f.associates != 0 || f.createTags != 0 {
			t.Errorf("%s: the EIP changed: %+v, %d associations, %d CreateTags", policy, f.addr(alloc), f.associates, f.createTags)
		}
		// A dry run refuses on the read, sending nothing.
		_, err = e.Claim(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc, Takeover: policy}, DryRun: true})
		if exitcode.Of(err) != exitcode.Refused {
			t.Errorf("%s dry run: %v, want refused", policy, err)
		}
	}
}

// TestStaleFreeReadLostRace: two claimers of a free EIP; the other won,
// but this claimer's reads, after its AssociateAddress was refused
// (Resource.AlreadyAssociated), still show the EIP free. That is a lost
// race, not a failure: it must read until the winner shows, then refuse
// naming it (exit 4). Before the fix: exit 1 with Resource.AlreadyAssociated.
func TestStaleFreeReadLostRace(t *testing.T) {
	f := newFake()
	free := f.snapshot()
	holdBy(f, other)
	f.stale = [][]*types.Address{free, free, free} // the decision, then two lookups
	e, _ := newEngine(t, f)
	_, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "held by "+other) {
		t.Fatalf("%v (exit %d), want refused naming the winner %s", err, exitcode.Of(err), other)
	}
	if aws.ToString(f.addr(alloc).InstanceId) != other {
		t.Errorf("holder %s, want %s", aws.ToString(f.addr(alloc).InstanceId), other)
	}
}

// TestStaleFreeReadOfOwnEIP: this instance holds the EIP, a stale read
// shows it free: the AssociateAddress is refused (it is ours), and the
// claim must end "already held", epoch unchanged, not "claimed" with the
// next epoch (a move that never was). Before the fix: claimed, epoch 6.
func TestStaleFreeReadOfOwnEIP(t *testing.T) {
	f := newFake()
	free := f.snapshot()
	holdBy(f, self)
	a := f.addr(alloc)
	a.Tags = setTag(setTag(a.Tags, TagHolder, self), TagEpoch, "5")
	f.stale = [][]*types.Address{free}
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "already held" || res.Epoch != 5 || f.createTags != 0 {
		t.Errorf("action %q, epoch %d, %d CreateTags; want already held, 5, 0", res.Action, res.Epoch, f.createTags)
	}
}

// TestStaleTagsEpochFromReadBack: the decision's read shows the EIP free
// with an old epoch tag (the previous holder's CreateTags and release not
// visible yet); the read-back, which shows the new association, shows the
// newer tag. The epoch handed out must be above the newer one, never a
// second copy of it. Before the fix: epoch 4, the previous holder's.
func TestStaleTagsEpochFromReadBack(t *testing.T) {
	f := newFake()
	f.addr(alloc).Tags = setTag(f.addr(alloc).Tags, TagEpoch, "3")
	old := f.snapshot()
	f.addr(alloc).Tags = setTag(f.addr(alloc).Tags, TagEpoch, "4") // the previous holder's epoch, then its release
	f.stale = [][]*types.Address{old}
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 5 || !hasTag(f.addr(alloc), TagEpoch, "5") {
		t.Errorf("epoch %d, tag %q; want 5: above the 4 the read-back shows", res.Epoch, TagValue(f.addr(alloc).Tags, TagEpoch))
	}
}

// TestStaleReadBackShowsReplacedAssociation: a takeover from a stopped
// holder; the read-back first shows the association it replaced. That is
// the state before the move, not another claimer's move after it.
// Before the fix: "another claimer moved it after us".
func TestStaleReadBackShowsReplacedAssociation(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	f.instances[other].state = "stopped"
	before := f.snapshot()
	f.afterAssociate = func() error {
		f.stale = [][]*types.Address{before, before}
		return nil
	}
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatalf("takeover whose read-back first shows the replaced association: %v", err)
	}
	if res.Action != "taken over" || aws.ToString(f.addr(alloc).InstanceId) != self {
		t.Errorf("action %q, holder %s; want taken over by %s", res.Action, aws.ToString(f.addr(alloc).InstanceId), self)
	}
}

// TestStalePoolReadNotExhausted: a pool of one EIP, released by its holder
// a moment ago, but the claimer's first read still shows it held: the pool
// looks exhausted. No AssociateAddress can confirm that (the pool names no
// one EIP), so the pool is read again for a while before the claim is
// refused; the later read shows the EIP free and the claim takes it.
// Before the fix: refused at once as exhausted (exit 4), the EIP left on
// nobody.
func TestStalePoolReadNotExhausted(t *testing.T) {
	pool := &config.Pool{Tags: map[string]string{"eip-pool": "web"}}
	f := newFake()
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String("eip-pool"), Value: aws.String("web")}, {Key: aws.String(TagEpoch), Value: aws.String("2")}}
	holdBy(f, other)
	held := f.snapshot()
	a := f.addr(alloc)
	a.AssociationId, a.NetworkInterfaceId, a.InstanceId, a.PrivateIpAddress = nil, nil, aws.String(""), nil // released
	f.stale = [][]*types.Address{held, held}
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
	if err != nil {
		t.Fatalf("claim of a pool whose only EIP was released, read stale: %v (exit %d), want it claimed", err, exitcode.Of(err))
	}
	if got := aws.ToString(f.addr(alloc).InstanceId); got != self || res.Action != "claimed" || res.Epoch != 3 {
		t.Errorf("holder %s, action %q, epoch %d; want %s, claimed, 3", got, res.Action, res.Epoch, self)
	}
}

// TestStalePoolExhaustedConfirmed: the pool's only EIP really is held:
// the claim is refused as exhausted once the pool has looked so for
// poolSettle (on the engine's clock), nothing changed, reads only.
func TestStalePoolExhaustedConfirmed(t *testing.T) {
	pool := &config.Pool{Tags: map[string]string{"eip-pool": "web"}}
	f := newFake()
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String("eip-pool"), Value: aws.String("web")}}
	holdBy(f, other)
	e, _ := newEngine(t, f)
	clock := e.Clock.(*fakeClock)
	start := clock.now
	_, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("%v (exit %d), want refused as exhausted", err, exitcode.Of(err))
	}
	if waited := clock.now.Sub(start); waited < 5*time.Second || len(clock.sleeps) < 2 {
		t.Errorf("refused after %s and %d re-reads, want at least %s of them", waited, len(clock.sleeps), 5*time.Second)
	}
	if f.associates != 0 || f.createTags != 0 || aws.ToString(f.addr(alloc).AssociationId) != "eipassoc-old" {
		t.Errorf("the EIP changed: %+v, %d associations, %d CreateTags", f.addr(alloc), f.associates, f.createTags)
	}
}

// TestStaleHeldReadOfOwnEIP: this instance holds the EIP (moved here a
// moment ago, by its watcher or an operator), a stale read shows the
// previous holder: the confirming AssociateAddress is refused
// (Resource.AlreadyAssociated) because the EIP is ours. The claim must end
// "already held", not refused as held by the previous holder (exit 4, and
// nothing tagged, published or hooked). Before the fix: exit 4.
func TestStaleHeldReadOfOwnEIP(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	held := f.snapshot()
	holdBy(f, self)
	a := f.addr(alloc)
	a.Tags = setTag(setTag(a.Tags, TagHolder, self), TagEpoch, "5")
	f.stale = [][]*types.Address{held}
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatalf("%v (exit %d), want already held", err, exitcode.Of(err))
	}
	if res.Action != "already held" || res.Epoch != 5 || aws.ToString(f.addr(alloc).InstanceId) != self {
		t.Errorf("action %q, epoch %d, holder %s; want already held, 5, %s", res.Action, res.Epoch, aws.ToString(f.addr(alloc).InstanceId), self)
	}
}
