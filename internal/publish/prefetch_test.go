package publish

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/eipclaim/eipclaim/internal/config"
)

// countingRoute53 counts ListResourceRecordSets calls and fails the first
// one when told to.
type countingRoute53 struct {
	*fakeRoute53
	lists     atomic.Int32
	failFirst bool
}

func (c *countingRoute53) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	if c.lists.Add(1) == 1 && c.failFirst {
		return nil, errors.New("connection reset")
	}
	return c.fakeRoute53.ListResourceRecordSets(ctx, in, o...)
}

// TestPrefetch: the read sent ahead is the publication's first read (one
// read before the change, one read-back: two in all); a read ahead that
// failed is read again; a record of another zone or name is read anew.
func TestPrefetch(t *testing.T) {
	c := &config.Route53{ZoneID: otherID, Name: "db.corp.example"}
	for _, tc := range []struct {
		name      string
		failFirst bool
		prefetch  *config.Route53
		wantLists int32
	}{
		{"used", false, c, 2},
		{"failed ahead, read again", true, c, 3},
		{"another name", false, &config.Route53{ZoneID: otherID, Name: "web.corp.example"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &countingRoute53{fakeRoute53: zones(), failFirst: tc.failFirst}
			p := &Route53{API: api}
			p.Prefetch(t.Context(), tc.prefetch)
			res, err := p.PublishCNAME(t.Context(), c, target)
			if err != nil || !res.Changed {
				t.Fatalf("PublishCNAME = %+v, %v; want a change", res, err)
			}
			<-p.pre.done // a read ahead that was not used has ended too
			if got := api.lists.Load(); got != tc.wantLists {
				t.Errorf("%d ListResourceRecordSets, want %d", got, tc.wantLists)
			}
			wantCNAME(t, api.fakeRoute53, otherID, "db.corp.example", target, config.DefaultTTL)
		})
	}
}
