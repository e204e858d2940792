package claim

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// tagOf returns the value of the EIP's tag k, "" when absent.
func tagOf(a *types.Address, k string) string {
	for _, t := range a.Tags {
		if aws.ToString(t.Key) == k {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// TestInterruptedTakeoverFinishes: SIGTERM, Ctrl-C or the --timeout
// deadline arriving once the old holder's association is gone must not
// leave the EIP on nobody: the move is finished on a context of its own.
func TestInterruptedTakeoverFinishes(t *testing.T) {
	for _, tc := range []struct {
		name string
		// after runs once DisassociateAddress has changed the state, with
		// the claim's cancel; its error is the call's answer.
		after func(cancel context.CancelFunc) error
	}{
		{"cancelled after the answer", func(cancel context.CancelFunc) error { cancel(); return nil }},
		{"cancelled in flight, answer lost", func(cancel context.CancelFunc) error { cancel(); return context.Canceled }},
		{"deadline in flight, answer lost", func(cancel context.CancelFunc) error { cancel(); return context.DeadlineExceeded }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			holdBy(f, other)
			f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(other)}}
			e, logs := newEngine(t, f)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.afterDisassociate = func() error { return tc.after(cancel) }
			res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, Force: true})
			if err != nil {
				t.Fatalf("Claim: %v (exit %d)\nlogs:\n%s", err, exitcode.Of(err), logs)
			}
			if res.Action != "taken over" || res.PreviousHolder != other {
				t.Errorf("result %+v, want taken over from %s", res, other)
			}
			a := f.addr(alloc)
			if got := aws.ToString(a.InstanceId); got != self {
				t.Errorf("the EIP is on %q, want %s: an interrupted takeover left it elsewhere", got, self)
			}
			if got := tagOf(a, TagHolder); got != self {
				t.Errorf("%s = %q, want %s", TagHolder, got, self)
			}
		})
	}
}

// TestInterruptedBeforeDisassociateChangesNothing: interrupted before the
// disassociation was sent, the EIP stays with its holder and the message
// says nothing changed.
func TestInterruptedBeforeDisassociateChangesNothing(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	e, _ := newEngine(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.beforeDisassociate = cancel
	_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, Force: true})
	if err == nil || !strings.Contains(err.Error(), "nothing changed") || !strings.Contains(err.Error(), other+" still holds it") {
		t.Fatalf("err = %v, want nothing changed, %s still holds it", err, other)
	}
	if got := aws.ToString(f.addr(alloc).InstanceId); got != other {
		t.Errorf("the EIP is on %q, want still %s", got, other)
	}
}

// TestTakeoverLeftFreeSaysSo: when the association cannot be made once the
// old one is gone, the message says plainly that the EIP is free and what
// to run.
func TestTakeoverLeftFreeSaysSo(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	f.fail["AssociateAddress"] = []error{apiErr("Gateway.NotAttached")}
	e, _ := newEngine(t, f)
	_, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, Force: true})
	want := "the EIP 203.0.113.10 (" + alloc + ") is now FREE (associated with no instance); run `eipclaim --role db` to claim it"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Gateway.NotAttached") {
		t.Fatalf("err = %v, want it to contain %q and the cause", err, want)
	}
	if exitcode.Of(err) != exitcode.Failed {
		t.Errorf("exit %d, want 1", exitcode.Of(err))
	}
}

// TestInterruptedAssociationThatSucceeded: cancelled while AssociateAddress
// is in flight, the association was made though its answer was lost: the
// claim reports success and tags the EIP.
func TestInterruptedAssociationThatSucceeded(t *testing.T) {
	f := newFake()
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(other)}}
	e, logs := newEngine(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.afterAssociate = func() error { cancel(); return context.Canceled }
	res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
	}
	if res.Action != "claimed" || res.AssociationID == "" || res.AssociationID != aws.ToString(f.addr(alloc).AssociationId) {
		t.Errorf("result %+v, want claimed with the association %s", res, aws.ToString(f.addr(alloc).AssociationId))
	}
	if got := tagOf(f.addr(alloc), TagHolder); got != self {
		t.Errorf("%s = %q, want %s", TagHolder, got, self)
	}
}

// TestInterruptedAssociationThatFailed: cancelled before AssociateAddress
// was sent, a free EIP stays free and the error is the cancellation, not
// a FREE warning (nothing was taken from anyone).
func TestInterruptedAssociationThatFailed(t *testing.T) {
	f := newFake()
	e, _ := newEngine(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.beforeAssociate = cancel
	_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err == nil || !strings.Contains(err.Error(), "context canceled") || strings.Contains(err.Error(), "FREE") {
		t.Fatalf("err = %v, want context canceled without a FREE warning", err)
	}
	if f.associates != 0 {
		t.Errorf("%d associations", f.associates)
	}
}

// TestAlreadyHeldRepairsTag: a rerun on the holder repairs an audit tag
// that names another instance (left by an interrupted claim), and costs no
// CreateTags call when the tag is right.
func TestAlreadyHeldRepairsTag(t *testing.T) {
	f := newFake()
	holdBy(f, self)
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(other)}}
	e, logs := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil || res.Action != "already held" {
		t.Fatalf("Claim = %+v, %v\nlogs:\n%s", res, err, logs)
	}
	if got := tagOf(f.addr(alloc), TagHolder); got != self {
		t.Errorf("%s = %q after a rerun, want it repaired to %s", TagHolder, got, self)
	}
	if f.createTags != 1 || f.associates != 0 {
		t.Errorf("%d CreateTags and %d AssociateAddress calls, want 1 and 0", f.createTags, f.associates)
	}
	if _, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}}); err != nil {
		t.Fatal(err)
	}
	if f.createTags != 1 {
		t.Errorf("a rerun with the right tag made %d CreateTags calls in all, want 1", f.createTags)
	}

	// A dry run says so and changes nothing.
	f.addr(alloc).Tags = nil
	res, err = e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, DryRun: true})
	if err != nil || f.createTags != 1 || len(f.addr(alloc).Tags) != 0 {
		t.Errorf("dry run: %+v, %v, %d CreateTags, tags %v", res, err, f.createTags, f.addr(alloc).Tags)
	}
}

// TestReleaseRemovesHolderTag: a released EIP no longer names a holder.
func TestReleaseRemovesHolderTag(t *testing.T) {
	f := newFake()
	holdBy(f, self)
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(self)}, {Key: aws.String("eip-pool"), Value: aws.String("db")}}
	e, _ := newEngine(t, f)
	what, err := e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false)
	if err != nil || !strings.HasPrefix(what, "released") {
		t.Fatalf("Release = %q, %v", what, err)
	}
	a := f.addr(alloc)
	if got := tagOf(a, TagHolder); got != "" {
		t.Errorf("%s = %q on a free EIP, want no such tag", TagHolder, got)
	}
	if tagOf(a, "eip-pool") != "db" {
		t.Errorf("release removed other tags: %v", a.Tags)
	}
	if f.deleteTags != 1 {
		t.Errorf("%d DeleteTags calls, want 1", f.deleteTags)
	}

	// Without the tag, there is nothing to delete and no call.
	holdBy(f, self)
	if _, err := e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false); err != nil {
		t.Fatal(err)
	}
	if f.deleteTags != 1 {
		t.Errorf("%d DeleteTags calls in all after releasing an untagged EIP, want 1", f.deleteTags)
	}

	// Interrupted in flight with the answer lost, the release is still
	// reported (and untagged) as done.
	holdBy(f, self)
	a.Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(self)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.afterDisassociate = func() error { cancel(); return context.Canceled }
	what, err = e.Release(ctx, "db", &config.Role{AllocationID: alloc}, false)
	if err != nil || !strings.HasPrefix(what, "released") {
		t.Fatalf("interrupted Release = %q, %v", what, err)
	}
	if got := tagOf(a, TagHolder); got != "" {
		t.Errorf("%s = %q after an interrupted release, want no such tag", TagHolder, got)
	}
}
