package publish

import (
	"github.com/eipclaim/eipclaim/internal/dnsname"

	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
)

// fakeRoute53 is a small stateful Route 53: hosted zones, their record
// sets, and changes that stay PENDING for a number of GetChange calls. It
// answers names as Route 53 does (final dot, '*' as \052) and refuses a
// CNAME next to other records as Route 53 does. Unit tests only: the
// integration tests run moto.
type fakeRoute53 struct {
	mu      sync.Mutex
	zones   []fakeZone
	records map[string][]types.ResourceRecordSet // by zone id
	changes map[string]int                       // change id -> GetChange calls left before INSYNC
	nChange int

	pageSize     int              // items per List page; 100 when 0
	pendingPolls int              // GetChange answers PENDING this many times per change
	errs         map[string]error // operation name -> error to return
	dropChanges  bool             // accept changes but do not apply them
	noChangeInfo bool             // answer ChangeResourceRecordSets without ChangeInfo
}

var _ Route53API = (*fakeRoute53)(nil)

type fakeZone struct {
	id, name string
	private  bool
}

func newFake(zones ...fakeZone) *fakeRoute53 {
	f := &fakeRoute53{records: map[string][]types.ResourceRecordSet{}, changes: map[string]int{}, errs: map[string]error{}}
	for _, z := range zones {
		f.zones = append(f.zones, z)
		f.records[z.id] = []types.ResourceRecordSet{
			{Name: aws.String(z.name), Type: types.RRTypeSoa, TTL: aws.Int64(900), ResourceRecords: []types.ResourceRecord{{Value: aws.String("ns-1.awsdns. hostmaster. 1 7200 900 1209600 86400")}}},
			{Name: aws.String(z.name), Type: types.RRTypeNs, TTL: aws.Int64(172800), ResourceRecords: []types.ResourceRecord{{Value: aws.String("ns-1.awsdns.")}}},
		}
	}
	return f
}

// seed adds a record set as is.
func (f *fakeRoute53) seed(zoneID string, s types.ResourceRecordSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Name = aws.String(r53Escape(aws.ToString(s.Name)))
	f.records[zoneID] = append(f.records[zoneID], s)
}

// at returns the record sets named name in the zone.
func (f *fakeRoute53) at(zoneID, name string) []types.ResourceRecordSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []types.ResourceRecordSet
	for _, s := range f.records[zoneID] {
		if dnsname.Route53(aws.ToString(s.Name)) == dnsname.Route53(name) {
			out = append(out, s)
		}
	}
	return out
}

// changeCount is how many changes were accepted.
func (f *fakeRoute53) changeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nChange
}

func (f *fakeRoute53) fail(op string) error {
	return f.errs[op]
}

// r53Escape spells a name as Route 53 answers it.
func r53Escape(name string) string {
	name = strings.ReplaceAll(strings.ToLower(name), "*", `\052`)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// reversed is the sort key Route 53 lists names by: labels reversed.
func reversed(name string) string {
	labels := strings.Split(strings.TrimSuffix(dnsname.Route53(name), "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func (f *fakeRoute53) page() int {
	if f.pageSize > 0 {
		return f.pageSize
	}
	return 100
}

func noSuchZone(id string) error {
	return &types.NoSuchHostedZone{Message: aws.String("No hosted zone found with ID: " + id)}
}

func (f *fakeRoute53) zone(id string) (fakeZone, bool) {
	id = strings.TrimPrefix(id, "/hostedzone/")
	for _, z := range f.zones {
		if z.id == id {
			return z, true
		}
	}
	return fakeZone{}, false
}

func (z fakeZone) hostedZone() types.HostedZone {
	return types.HostedZone{
		Id:     aws.String("/hostedzone/" + z.id),
		Name:   aws.String(r53Escape(z.name)),
		Config: &types.HostedZoneConfig{PrivateZone: z.private},
	}
}

func (f *fakeRoute53) GetHostedZone(ctx context.Context, in *route53.GetHostedZoneInput, _ ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("GetHostedZone"); err != nil {
		return nil, err
	}
	z, ok := f.zone(aws.ToString(in.Id))
	if !ok {
		return nil, noSuchZone(aws.ToString(in.Id))
	}
	hz := z.hostedZone()
	return &route53.GetHostedZoneOutput{HostedZone: &hz}, nil
}

func (f *fakeRoute53) ListHostedZonesByName(ctx context.Context, in *route53.ListHostedZonesByNameInput, _ ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListHostedZonesByName"); err != nil {
		return nil, err
	}
	zones := slices.Clone(f.zones)
	slices.SortStableFunc(zones, func(a, b fakeZone) int {
		if c := strings.Compare(reversed(a.name), reversed(b.name)); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	i := 0
	if in.DNSName != nil {
		start := reversed(aws.ToString(in.DNSName))
		for i < len(zones) && (reversed(zones[i].name) < start ||
			reversed(zones[i].name) == start && in.HostedZoneId != nil && zones[i].id < aws.ToString(in.HostedZoneId)) {
			i++
		}
	}
	out := &route53.ListHostedZonesByNameOutput{}
	for ; i < len(zones) && len(out.HostedZones) < f.page(); i++ {
		out.HostedZones = append(out.HostedZones, zones[i].hostedZone())
	}
	if i < len(zones) {
		out.IsTruncated = true
		out.NextDNSName = aws.String(r53Escape(zones[i].name))
		out.NextHostedZoneId = aws.String(zones[i].id)
	}
	return out, nil
}

func (f *fakeRoute53) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, _ ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListResourceRecordSets"); err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(aws.ToString(in.HostedZoneId), "/hostedzone/")
	if _, ok := f.zone(id); !ok {
		return nil, noSuchZone(id)
	}
	sets := slices.Clone(f.records[id])
	key := func(s types.ResourceRecordSet) string {
		return reversed(aws.ToString(s.Name)) + " " + string(s.Type) + " " + aws.ToString(s.SetIdentifier)
	}
	slices.SortStableFunc(sets, func(a, b types.ResourceRecordSet) int { return strings.Compare(key(a), key(b)) })
	i := 0
	if in.StartRecordName != nil {
		start := reversed(aws.ToString(in.StartRecordName)) + " " + string(in.StartRecordType)
		for i < len(sets) && key(sets[i]) < start {
			i++
		}
	}
	out := &route53.ListResourceRecordSetsOutput{}
	for ; i < len(sets) && len(out.ResourceRecordSets) < f.page(); i++ {
		out.ResourceRecordSets = append(out.ResourceRecordSets, sets[i])
	}
	if i < len(sets) {
		out.IsTruncated = true
		out.NextRecordName = sets[i].Name
		out.NextRecordType = sets[i].Type
	}
	return out, nil
}

func (f *fakeRoute53) ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, _ ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ChangeResourceRecordSets"); err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(aws.ToString(in.HostedZoneId), "/hostedzone/")
	if _, ok := f.zone(id); !ok {
		return nil, noSuchZone(id)
	}
	sets := slices.Clone(f.records[id])
	for _, c := range in.ChangeBatch.Changes {
		s := *c.ResourceRecordSet
		s.Name = aws.String(r53Escape(aws.ToString(s.Name)))
		same := func(o types.ResourceRecordSet) bool {
			return dnsname.Route53(aws.ToString(o.Name)) == dnsname.Route53(aws.ToString(s.Name)) && o.Type == s.Type &&
				aws.ToString(o.SetIdentifier) == aws.ToString(s.SetIdentifier)
		}
		for _, o := range sets {
			sameName := dnsname.Route53(aws.ToString(o.Name)) == dnsname.Route53(aws.ToString(s.Name))
			if sameName && (o.Type == types.RRTypeCname) != (s.Type == types.RRTypeCname) {
				return nil, &types.InvalidChangeBatch{Messages: []string{fmt.Sprintf(
					"RRSet of type %s with DNS name %s is not permitted as it conflicts with other records with the same DNS name in zone %s.", s.Type, aws.ToString(s.Name), id)}}
			}
		}
		switch c.Action {
		case types.ChangeActionUpsert:
			sets = slices.DeleteFunc(sets, same)
			sets = append(sets, s)
		case types.ChangeActionCreate:
			if slices.ContainsFunc(sets, same) {
				return nil, &types.InvalidChangeBatch{Messages: []string{"Tried to create resource record set " + aws.ToString(s.Name) + " type " + string(s.Type) + " but it already exists"}}
			}
			sets = append(sets, s)
		case types.ChangeActionDelete:
			sets = slices.DeleteFunc(sets, same)
		}
	}
	if !f.dropChanges {
		f.records[id] = sets
	}
	f.nChange++
	changeID := fmt.Sprintf("C%04d", f.nChange)
	f.changes[changeID] = f.pendingPolls
	if f.noChangeInfo {
		return &route53.ChangeResourceRecordSetsOutput{}, nil
	}
	return &route53.ChangeResourceRecordSetsOutput{ChangeInfo: &types.ChangeInfo{
		Id: aws.String("/change/" + changeID), Status: types.ChangeStatusPending, Comment: in.ChangeBatch.Comment,
	}}, nil
}

func (f *fakeRoute53) GetChange(ctx context.Context, in *route53.GetChangeInput, _ ...func(*route53.Options)) (*route53.GetChangeOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("GetChange"); err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(aws.ToString(in.Id), "/change/")
	left, ok := f.changes[id]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchChange", Message: "A change with the specified change ID does not exist: " + id}
	}
	status := types.ChangeStatusInsync
	if left > 0 {
		status = types.ChangeStatusPending
		f.changes[id] = left - 1
	}
	return &route53.GetChangeOutput{ChangeInfo: &types.ChangeInfo{Id: aws.String("/change/" + id), Status: status}}, nil
}

// insync reports whether the change is INSYNC.
func (f *fakeRoute53) insync(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	left, ok := f.changes[id]
	return ok && left == 0
}
