package claim

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
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

// TestEpochSurvivesTags: the epoch tag deleted or set to something that is
// not an epoch is never silently reset or wrapped: the claim's epoch goes
// above the role table's record, the problem is logged with the role and
// allocation id and said in the result, and the tag is rewritten.
func TestEpochSurvivesTags(t *testing.T) {
	spec := &config.Role{AllocationID: alloc}
	for _, tc := range []struct {
		name     string
		tag      *string // nil: no tag
		rec      *epoch.Recorded
		holder   string // the EIP's holder before the claim
		want     int64
		problem  string
		tableLog bool
	}{
		{name: "tag deleted, table at 7", rec: &epoch.Recorded{Epoch: 7, Holder: other}, holder: other, want: 8, tableLog: true},
		{name: "tag garbage, table at 8", tag: aws.String("garbage"), rec: &epoch.Recorded{Epoch: 8, Holder: other}, holder: other, want: 9, problem: "not a decimal integer", tableLog: true},
		{name: "tag max int64, no table", tag: aws.String("9223372036854775807"), holder: other, want: 1, problem: "above the greatest epoch"},
		{name: "tag max int64, table at 9", tag: aws.String("9223372036854775807"), rec: &epoch.Recorded{Epoch: 9, Holder: other}, holder: other, want: 10, problem: "above the greatest epoch", tableLog: true},
		{name: "table greater than tag", tag: aws.String("3"), rec: &epoch.Recorded{Epoch: 20, Holder: other}, holder: other, want: 21, tableLog: true},
		{name: "held, tag set back, table names self", tag: aws.String("3"), rec: &epoch.Recorded{Epoch: 20, Holder: self}, holder: self, want: 20, tableLog: true},
		{name: "held, tag garbage", tag: aws.String("garbage"), rec: &epoch.Recorded{Epoch: 4, Holder: self}, holder: self, want: 5, problem: "not a decimal integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			holdBy(f, tc.holder)
			tags := []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(tc.holder)}}
			if tc.tag != nil {
				tags = append(tags, types.Tag{Key: aws.String(TagEpoch), Value: tc.tag})
			}
			f.addr(alloc).Tags = tags
			e, logs := newEngine(t, f)
			res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: spec, Force: true,
				Recorded: func() *epoch.Recorded { return tc.rec }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Epoch != tc.want || tagOf(f.addr(alloc), TagEpoch) != strconv.FormatInt(tc.want, 10) {
				t.Errorf("epoch %d, tag %q; want %d", res.Epoch, tagOf(f.addr(alloc), TagEpoch), tc.want)
			}
			got := strings.Join(res.EpochProblems, "; ")
			switch {
			case tc.problem == "" && got != "":
				t.Errorf("problems %q, want none", got)
			case tc.problem != "" && !strings.Contains(got, tc.problem):
				t.Errorf("problems %q, want one saying %q", got, tc.problem)
			case tc.problem != "" && !strings.Contains(logs.String(), "level=WARN") || tc.problem != "" && !strings.Contains(logs.String(), "allocation_id="+alloc):
				t.Errorf("the problem is not logged as a warning with the allocation id:\n%s", logs)
			}
			if tc.tableLog && !strings.Contains(logs.String(), "table_epoch=") {
				t.Errorf("the table's greater epoch is not logged:\n%s", logs)
			}
		})
	}
}
