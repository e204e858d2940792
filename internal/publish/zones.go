package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
)

// Zones is a read of whole hosted zones, each once (ListResourceRecordSets
// in pages of 300), for a driver that publishes many names in few zones
// (the off-box controller's schedule): given to [Deps] (or [Route53]), it
// is the first read of every PublishCNAME in those zones, so that a name
// already published costs no request, and a zone named by name is looked
// up once. A change is still read back from Route 53 itself. The record
// values a Zones holds stay true for a run: a CNAME's value is the EIP's
// name, whoever holds it.
type Zones struct {
	mu    sync.Mutex
	ids   map[string]zoneID                               // a zone named by name, resolved: by zoneKey
	sets  map[string]map[string][]types.ResourceRecordSet // by zone id, then canonical name
	pages int                                             // ListResourceRecordSets pages read
}

type zoneID struct {
	id, name string
	err      error
}

// maxZoneReadPages bounds the pages of one zone read whole (300 sets a
// page): a zone larger than that is not held, and its names are read one
// by one as without Zones.
const maxZoneReadPages = 100

// NewZones returns an empty Zones.
func NewZones() *Zones {
	return &Zones{ids: map[string]zoneID{}, sets: map[string]map[string][]types.ResourceRecordSet{}}
}

// Pages is how many ListResourceRecordSets pages Load read.
func (z *Zones) Pages() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.pages
}

// Load reads every zone that cs name, once each, through p (its API and
// retries). A zone that cannot be read is left out, and its names are
// read one by one at their publication, which reports the error; Load
// returns the errors for the log.
func (z *Zones) Load(ctx context.Context, p *Route53, cs []*config.Route53) []error {
	var errs []error
	done := map[string]bool{}
	for _, c := range cs {
		if c == nil {
			continue
		}
		id, err := z.zoneOf(ctx, p, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done[id] {
			continue
		}
		done[id] = true
		sets, pages, err := p.readZone(ctx, id)
		z.mu.Lock()
		z.pages += pages
		if err == nil {
			z.sets[id] = sets
		}
		z.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func zoneKey(c *config.Route53) string {
	key := dnsname.Canonical(c.Zone)
	if c.PrivateZone != nil {
		key += fmt.Sprintf(" private=%t", *c.PrivateZone)
	}
	return key
}

// zoneOf returns the id of the zone c names: by id as is, by name looked
// up once (the answer, an error too, kept for the next names), c.Name
// checked to be inside it.
func (z *Zones) zoneOf(ctx context.Context, p *Route53, c *config.Route53) (string, error) {
	if c.ZoneID != "" {
		return strings.TrimPrefix(c.ZoneID, "/hostedzone/"), nil
	}
	key := zoneKey(c)
	z.mu.Lock()
	r, ok := z.ids[key]
	z.mu.Unlock()
	if !ok {
		r.id, r.name, r.err = p.zoneByName(ctx, c)
		z.mu.Lock()
		z.ids[key] = r
		z.mu.Unlock()
	}
	if r.err != nil {
		return "", r.err
	}
	if err := checkInZone(c, r.id, r.name); err != nil {
		return "", err
	}
	return r.id, nil
}

// known returns the record sets at name in zoneID as read by Load, and
// whether the zone was read.
func (z *Zones) known(zoneID, name string) ([]types.ResourceRecordSet, bool) {
	if z == nil {
		return nil, false
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	sets, ok := z.sets[zoneID]
	if !ok {
		return nil, false
	}
	return slices.Clone(sets[name]), true
}

// readZone reads every record set of a zone, by canonical name.
func (p *Route53) readZone(ctx context.Context, zoneID string) (map[string][]types.ResourceRecordSet, int, error) {
	sets := map[string][]types.ResourceRecordSet{}
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), MaxItems: aws.Int32(300)}
	for page := 1; page <= maxZoneReadPages; page++ {
		var out *route53.ListResourceRecordSetsOutput
		err := p.call(ctx, "route53:ListResourceRecordSets", func(ctx context.Context) error {
			var err error
			out, err = p.API.ListResourceRecordSets(ctx, in)
			return err
		})
		if err != nil {
			return nil, page, apiError("route53:ListResourceRecordSets", "read route53 zone "+zoneID, err)
		}
		if out == nil {
			return nil, page, fmt.Errorf("read route53 zone %s: empty answer", zoneID)
		}
		for _, s := range out.ResourceRecordSets {
			name := dnsname.Route53(aws.ToString(s.Name))
			sets[name] = append(sets[name], s)
		}
		if !out.IsTruncated || out.NextRecordName == nil {
			return sets, page, nil
		}
		in = &route53.ListResourceRecordSetsInput{
			HostedZoneId: aws.String(zoneID), MaxItems: aws.Int32(300),
			StartRecordName: out.NextRecordName, StartRecordType: out.NextRecordType, StartRecordIdentifier: out.NextRecordIdentifier,
		}
	}
	return nil, maxZoneReadPages, fmt.Errorf("read route53 zone %s: more than %d pages of record sets: its names are read one by one", zoneID, maxZoneReadPages)
}
