package claim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
)

// TestEpoch: every move eipclaim makes sets eipclaim:epoch one higher,
// tagged by Tag; an EIP that stays keeps its epoch and costs no CreateTags;
// a holder tag naming another instance (a move that was never tagged) is
// repaired with the epoch one higher.
func TestEpoch(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(other)}, {Key: aws.String(TagEpoch), Value: aws.String("41")}}
	e, _ := newEngine(t, f)
	spec := &config.Role{AllocationID: alloc}

	res, err := e.Claim(context.Background(), Request{Role: "db", Spec: spec, Force: true})
	if err != nil || res.Action != "taken over" || res.Epoch != 42 || !res.TagsStale {
		t.Fatalf("takeover: %+v, %v; want epoch 42 and tags to write", res, err)
	}
	if got := tagOf(f.addr(alloc), TagEpoch); got != "41" {
		t.Errorf("Claim wrote %s=%s itself: the caller tags", TagEpoch, got)
	}
	e.Tag(context.Background(), res)
	if got, holder := tagOf(f.addr(alloc), TagEpoch), tagOf(f.addr(alloc), TagHolder); got != "42" || holder != self || res.TagsStale {
		t.Errorf("after Tag: %s=%s %s=%s stale=%v, want 42, %s, false", TagEpoch, got, TagHolder, holder, res.TagsStale, self)
	}

	tags := f.createTags
	res, err = e.claimTagged(context.Background(), Request{Role: "db", Spec: spec})
	if err != nil || res.Action != "already held" || res.Epoch != 42 || res.TagsStale || f.createTags != tags {
		t.Errorf("rerun: %+v, %v, %d CreateTags; want epoch 42 and no tagging", res, err, f.createTags-tags)
	}

	// Someone moved it here without tagging (an interrupted claim).
	f.addr(alloc).Tags = []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(other)}, {Key: aws.String(TagEpoch), Value: aws.String("42")}}
	res, err = e.claimTagged(context.Background(), Request{Role: "db", Spec: spec})
	if err != nil || res.Epoch != 43 || tagOf(f.addr(alloc), TagEpoch) != "43" || tagOf(f.addr(alloc), TagHolder) != self {
		t.Errorf("repair: %+v, %v, tags %v; want epoch 43 and holder %s", res, err, f.addr(alloc).Tags, self)
	}
}
