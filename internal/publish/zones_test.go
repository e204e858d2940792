package publish

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/config"
)

// countingZones counts the calls that read zones and records.
type countingZones struct {
	*fakeRoute53
	lists, byName atomic.Int32
}

func (c *countingZones) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	c.lists.Add(1)
	return c.fakeRoute53.ListResourceRecordSets(ctx, in, o...)
}

func (c *countingZones) ListHostedZonesByName(ctx context.Context, in *route53.ListHostedZonesByNameInput, o ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error) {
	c.byName.Add(1)
	return c.fakeRoute53.ListHostedZonesByName(ctx, in, o...)
}

// TestZones: a zone is read whole once (pages of its size), a zone named
// by name looked up once; a name it shows published costs no request; a
// name that differs is changed and read back; Prefetch sends nothing for
// a zone read; a name outside its zone is still refused.
func TestZones(t *testing.T) {
	api := &countingZones{fakeRoute53: zones()}
	api.pageSize = 5
	var cs []*config.Route53
	for i := range 12 {
		name := fmt.Sprintf("r%d.corp.example", i)
		c := &config.Route53{ZoneID: otherID, Name: name}
		if i%2 == 1 {
			c = &config.Route53{Zone: "corp.example", Name: name}
		}
		cs = append(cs, c)
		value := target
		if i == 7 {
			value = "ec2-192-0-2-9.compute-1.amazonaws.com"
		}
		api.seed(otherID, types.ResourceRecordSet{Name: aws.String(name + "."), Type: types.RRTypeCname, TTL: aws.Int64(config.DefaultTTL),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String(value)}}})
	}
	z := NewZones()
	if errs := z.Load(t.Context(), &Route53{API: api}, cs); len(errs) != 0 {
		t.Fatal(errs)
	}
	// 2 sets at the apex and 12 CNAMEs, 5 a page.
	if got, pages := api.lists.Load(), z.Pages(); got != 3 || pages != 3 {
		t.Errorf("%d ListResourceRecordSets (%d pages counted), want 3", got, pages)
	}
	if got := api.byName.Load(); got != 1 {
		t.Errorf("%d ListHostedZonesByName, want 1", got)
	}
	api.lists.Store(0)
	p := &Route53{API: api, Zones: z}
	for i, c := range cs {
		p.Prefetch(t.Context(), c)
		res, err := p.PublishCNAME(t.Context(), c, target)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if res.Changed != (i == 7) {
			t.Errorf("%s: Changed %v", c.Name, res.Changed)
		}
		wantCNAME(t, api.fakeRoute53, otherID, c.Name, target, config.DefaultTTL)
	}
	if got := api.lists.Load(); got != 1 {
		t.Errorf("%d ListResourceRecordSets publishing 12 names, want 1 (the read-back of the one change)", got)
	}
	if got := api.byName.Load(); got != 1 || api.changeCount() != 1 {
		t.Errorf("%d ListHostedZonesByName, %d changes; want 1 and 1", got, api.changeCount())
	}
	// A name outside the zone is refused as without Zones.
	if _, err := p.PublishCNAME(t.Context(), &config.Route53{Zone: "corp.example", Name: "db.elsewhere.example"}, target); err == nil {
		t.Errorf("a name outside its zone published")
	}
	// A zone that cannot be read is left out: its names are read one by one.
	api.errs["ListResourceRecordSets"] = fmt.Errorf("throttled")
	z2 := NewZones()
	if errs := z2.Load(t.Context(), &Route53{API: api}, cs[:1]); len(errs) != 1 {
		t.Errorf("Load errors %v, want the failed read", errs)
	}
	if _, ok := z2.known(otherID, "r0.corp.example."); ok {
		t.Errorf("a zone that failed to read is known")
	}
}
