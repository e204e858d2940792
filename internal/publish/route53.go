package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Route53API is the part of the Route 53 API that [Route53] uses, with the
// SDK's signatures, so that *route53.Client satisfies it.
type Route53API interface {
	GetHostedZone(ctx context.Context, params *route53.GetHostedZoneInput, optFns ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error)
	ListHostedZonesByName(ctx context.Context, params *route53.ListHostedZonesByNameInput, optFns ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error)
	ListResourceRecordSets(ctx context.Context, params *route53.ListResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	ChangeResourceRecordSets(ctx context.Context, params *route53.ChangeResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(ctx context.Context, params *route53.GetChangeInput, optFns ...func(*route53.Options)) (*route53.GetChangeOutput, error)
}

var _ Route53API = (*route53.Client)(nil)

// DefaultPoll is how often [Route53] asks whether a change is INSYNC.
const DefaultPoll = 5 * time.Second

// Route53 publishes names in Route 53 hosted zones.
type Route53 struct {
	API Route53API
	// Log receives one line per change (Info) or per name found already
	// published (Debug). The caller adds the role with Log.With.
	Log *slog.Logger
	// Wait makes PublishCNAME wait until the change is INSYNC (--wait-dns).
	Wait bool
	// Poll is the interval between GetChange calls; DefaultPoll when 0.
	Poll time.Duration
	// Retry runs each API call until it succeeds, fails for good or the
	// deadline comes (retry.Retrier.Do), so that a throttled call is
	// retried alone, not the whole publication; nil calls it once.
	Retry func(ctx context.Context, op string, fn func(context.Context) error) error

	// Zones, when set, holds whole zones read once (see Zones): the first
	// read of a name in them, and the lookup of a zone named by name.
	Zones *Zones

	// pre is the first read of a record, sent ahead (Prefetch).
	pre *recordRead
}

// recordRead is a read of the record sets at a name, sent ahead.
type recordRead struct {
	zoneID, name string
	used         atomic.Bool
	done         chan struct{}
	sets         []types.ResourceRecordSet
	err          error
}

// Prefetch sends the first read of the record c names now, for the next
// PublishCNAME of that record: the read does not depend on the claim (a
// CNAME's value is the EIP's name, whoever holds it), so the failover step
// overlaps it with the claim. Only a zone named by zone_id is read ahead.
func (p *Route53) Prefetch(ctx context.Context, c *config.Route53) {
	if c == nil || c.ZoneID == "" {
		return
	}
	zoneID, err := p.publishZone(ctx, c)
	if err != nil {
		return
	}
	if _, ok := p.Zones.known(zoneID, dnsname.Canonical(c.Name)); ok {
		return // read already, with its whole zone
	}
	r := &recordRead{zoneID: zoneID, name: dnsname.Canonical(c.Name), done: make(chan struct{})}
	p.pre = r
	go func() {
		defer close(r.done)
		r.sets, r.err = p.recordSets(ctx, r.zoneID, r.name)
	}()
}

// firstRead returns the record sets at name: the read sent ahead, once,
// when there is one for it, else a read now.
func (p *Route53) firstRead(ctx context.Context, zoneID, name string) ([]types.ResourceRecordSet, error) {
	if sets, ok := p.Zones.known(zoneID, name); ok {
		return sets, nil
	}
	if r := p.pre; r != nil && r.zoneID == zoneID && r.name == name && !r.used.Swap(true) {
		select {
		case <-r.done:
			if r.err == nil {
				return r.sets, nil
			}
			// A failed read ahead is read again, retried as usual.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.recordSets(ctx, zoneID, name)
}

// call makes one API call, retried.
func (p *Route53) call(ctx context.Context, op string, fn func(context.Context) error) error {
	if p.Retry == nil {
		return fn(ctx)
	}
	return p.Retry(ctx, op, fn)
}

// CNAMEResult says what PublishCNAME found and did.
type CNAMEResult struct {
	Record   string // the name, fully qualified, lower case: "master-db.example.internal."
	Value    string // the CNAME's target, fully qualified, lower case
	ZoneID   string // the hosted zone's id, without /hostedzone/
	Changed  bool   // whether a change was submitted
	ChangeID string // the change's id, without /change/; "" when nothing changed
}

// maxComment is the longest change batch comment Route 53 accepts.
const maxComment = 256

// PublishCNAME makes c.Name a CNAME to target in the zone c names, with
// c.TTL (config.DefaultTTL when 0). When the name already is that CNAME
// with that TTL it changes nothing. It refuses to replace records of
// another type, or a CNAME with a routing policy ([ErrConflict]). After an
// UPSERT it reads the record back, and with Wait it waits for INSYNC until
// ctx is done; a CNAMEResult with Changed set comes back with that error.
func (p *Route53) PublishCNAME(ctx context.Context, c *config.Route53, target string) (CNAMEResult, error) {
	if c != nil && !dnsname.IsDomainName(target) {
		return CNAMEResult{}, fmt.Errorf("route53 %s: CNAME target %q is not a DNS name", c.Name, target)
	}
	return p.publish(ctx, c, types.RRTypeCname, dnsname.Canonical(target))
}

// PublishA makes c.Name an A record of addr (the role's private address,
// for a private hosted zone), as PublishCNAME does a CNAME: unchanged when
// it already is that record with that TTL, refused over records of
// another type or with a routing policy, read back after an UPSERT.
func (p *Route53) PublishA(ctx context.Context, c *config.Route53, addr netip.Addr) (CNAMEResult, error) {
	if c != nil && (!addr.IsValid() || !addr.Is4()) {
		return CNAMEResult{}, fmt.Errorf("route53 %s: A record of %q: want an IPv4 address", c.Name, placement.String(addr))
	}
	return p.publish(ctx, c, types.RRTypeA, addr.String())
}

// publish makes c.Name the simple record of type typ with value (a
// CNAME's target fully qualified, an A record's address).
func (p *Route53) publish(ctx context.Context, c *config.Route53, typ types.RRType, value string) (CNAMEResult, error) {
	if c == nil {
		return CNAMEResult{}, exitcode.With(exitcode.Usage, errors.New("route53: no configuration"))
	}
	ttl := ttlOf(c.TTL)
	if ttl < 1 || ttl > maxTTL {
		return CNAMEResult{}, exitcode.With(exitcode.Usage, fmt.Errorf("route53 %s: ttl %d: want seconds from 1 to %d", c.Name, ttl, maxTTL))
	}
	zoneID, err := p.publishZone(ctx, c)
	if err != nil {
		return CNAMEResult{}, err
	}
	res := CNAMEResult{Record: dnsname.Canonical(c.Name), Value: value, ZoneID: zoneID}
	log := logger(p.Log).With("zone_id", zoneID, "record", res.Record)

	have, err := p.firstRead(ctx, zoneID, res.Record)
	if err != nil {
		return res, err
	}
	same, err := compareRecord(zoneID, res.Record, have, typ, res.Value, ttl)
	if err != nil {
		return res, err
	}
	if same {
		log.Debug("route53 record already published", "value", res.Value, "ttl", ttl)
		return res, nil
	}

	comment := "eipclaim: " + res.Record + " -> " + res.Value
	if len(comment) > maxComment {
		comment = comment[:maxComment]
	}
	in := &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(comment),
			Changes: []types.Change{{
				Action: types.ChangeActionUpsert,
				ResourceRecordSet: &types.ResourceRecordSet{
					Name:            aws.String(res.Record),
					Type:            typ,
					TTL:             aws.Int64(ttl),
					ResourceRecords: []types.ResourceRecord{{Value: aws.String(res.Value)}},
				},
			}},
		},
	}
	// An UPSERT of the same record is idempotent: a throttled one is sent again.
	var out *route53.ChangeResourceRecordSetsOutput
	err = p.call(ctx, "route53:ChangeResourceRecordSets", func(ctx context.Context) error {
		var err error
		out, err = p.API.ChangeResourceRecordSets(ctx, in)
		return err
	})
	if err != nil {
		return res, apiError("route53:ChangeResourceRecordSets", fmt.Sprintf("upsert %s %s -> %s in route53 zone %s", typ, res.Record, res.Value, zoneID), err)
	}
	res.Changed = true
	if out == nil || out.ChangeInfo == nil || aws.ToString(out.ChangeInfo.Id) == "" {
		return res, fmt.Errorf("upsert %s %s in route53 zone %s: the answer has no change id", typ, res.Record, zoneID)
	}
	res.ChangeID = strings.TrimPrefix(aws.ToString(out.ChangeInfo.Id), "/change/")
	log.Info("route53 record published", "value", res.Value, "ttl", ttl, "change_id", res.ChangeID, "previous", describe(have))

	after, err := p.recordSets(ctx, zoneID, res.Record)
	if err != nil {
		return res, fmt.Errorf("read back: %w", err)
	}
	if same, err := compareRecord(zoneID, res.Record, after, typ, res.Value, ttl); err != nil || !same {
		return res, fmt.Errorf("read back %s in route53 zone %s after change %s: want %s %s TTL %d, found %s",
			res.Record, zoneID, res.ChangeID, typ, res.Value, ttl, describe(after))
	}

	if p.Wait {
		if err := p.waitInsync(ctx, log, zoneID, res.ChangeID); err != nil {
			return res, err
		}
	}
	return res, nil
}

// waitInsync polls GetChange until the change is INSYNC or ctx is done. It
// asks at once, whatever status the change had when submitted: Route 53
// answers PENDING, moto INSYNC.
func (p *Route53) waitInsync(ctx context.Context, log *slog.Logger, zoneID, changeID string) error {
	poll := p.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		var out *route53.GetChangeOutput
		err := p.call(ctx, "route53:GetChange", func(ctx context.Context) error {
			var err error
			out, err = p.API.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(changeID)})
			return err
		})
		if err != nil {
			return apiError("route53:GetChange", fmt.Sprintf("wait for change %s in route53 zone %s", changeID, zoneID), err)
		}
		if out == nil || out.ChangeInfo == nil {
			return fmt.Errorf("wait for change %s in route53 zone %s: the answer has no change status", changeID, zoneID)
		}
		if out.ChangeInfo.Status == types.ChangeStatusInsync {
			log.Info("route53 change in sync", "change_id", changeID, "attempt", attempt)
			return nil
		}
		log.Debug("route53 change not in sync yet", "change_id", changeID, "status", string(out.ChangeInfo.Status), "attempt", attempt, "next_delay", poll)
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for change %s in route53 zone %s: still %s after %d checks: %w",
				changeID, zoneID, out.ChangeInfo.Status, attempt, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// Zone resolves the hosted zone c names, by id or by name (choosing the
// private or public one as c.PrivateZone says), and checks that c.Name is
// inside it and not its apex. It returns the zone's id, without
// /hostedzone/, and its name, fully qualified in lower case.
func (p *Route53) Zone(ctx context.Context, c *config.Route53) (id, name string, err error) {
	if c == nil {
		return "", "", exitcode.With(exitcode.Usage, errors.New("route53: no configuration"))
	}
	switch {
	case c.ZoneID != "":
		id, name, err = p.zoneByID(ctx, c)
	case c.Zone != "":
		id, name, err = p.zoneByName(ctx, c)
	default:
		err = exitcode.With(exitcode.Usage, fmt.Errorf("route53 %s: want zone_id or zone", c.Name))
	}
	if err != nil {
		return "", "", err
	}
	if err := checkInZone(c, id, name); err != nil {
		return "", "", err
	}
	return id, name, nil
}

// checkInZone checks that c.Name is inside the zone (id, name) and not
// its apex.
func checkInZone(c *config.Route53, id, name string) error {
	record := dnsname.Canonical(c.Name)
	switch {
	case record == name:
		return exitcode.With(exitcode.Usage, fmt.Errorf("route53 name %s is the apex of zone %s (%s): a CNAME cannot be at the apex: want a name below it", record, name, id))
	case !dnsname.InZone(record, name):
		return exitcode.With(exitcode.Usage, fmt.Errorf("route53 name %s is not inside zone %s (%s)", record, name, id))
	}
	return nil
}

// publishZone returns the id of the zone to publish in without asking
// Route 53 when c names it by id: Route 53 itself refuses a change outside
// the zone, and `eipclaim check` (Zone) is where zones are checked. A zone
// named by name is looked up.
func (p *Route53) publishZone(ctx context.Context, c *config.Route53) (string, error) {
	if c.ZoneID == "" && p.Zones != nil {
		return p.Zones.zoneOf(ctx, p, c)
	}
	if c.ZoneID == "" {
		id, _, err := p.Zone(ctx, c)
		return id, err
	}
	return strings.TrimPrefix(c.ZoneID, "/hostedzone/"), nil
}

func (p *Route53) zoneByID(ctx context.Context, c *config.Route53) (string, string, error) {
	id := strings.TrimPrefix(c.ZoneID, "/hostedzone/")
	var out *route53.GetHostedZoneOutput
	err := p.call(ctx, "route53:GetHostedZone", func(ctx context.Context) error {
		var err error
		out, err = p.API.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
		return err
	})
	if err != nil {
		return "", "", apiError("route53:GetHostedZone", "get route53 zone "+id, err)
	}
	if out == nil || out.HostedZone == nil || aws.ToString(out.HostedZone.Name) == "" {
		return "", "", fmt.Errorf("get route53 zone %s: the answer has no zone", id)
	}
	z := out.HostedZone
	if c.PrivateZone != nil && *c.PrivateZone != isPrivate(z) {
		return "", "", exitcode.With(exitcode.Usage, fmt.Errorf("route53 zone %s (%s) is %s, but private_zone is %t",
			id, dnsname.Route53(aws.ToString(z.Name)), visibility(z), *c.PrivateZone))
	}
	return id, dnsname.Route53(aws.ToString(z.Name)), nil
}

// maxZonePages bounds the ListHostedZonesByName pages read for one name.
const maxZonePages = 20

func (p *Route53) zoneByName(ctx context.Context, c *config.Route53) (string, string, error) {
	want := dnsname.Canonical(c.Zone)
	var found []types.HostedZone
	in := &route53.ListHostedZonesByNameInput{DNSName: aws.String(want)}
	for range maxZonePages {
		var out *route53.ListHostedZonesByNameOutput
		err := p.call(ctx, "route53:ListHostedZonesByName", func(ctx context.Context) error {
			var err error
			out, err = p.API.ListHostedZonesByName(ctx, in)
			return err
		})
		if err != nil {
			return "", "", apiError("route53:ListHostedZonesByName", "find route53 zone "+want, err)
		}
		if out == nil {
			return "", "", fmt.Errorf("find route53 zone %s: empty answer", want)
		}
		past := false
		for _, z := range out.HostedZones {
			// Zones come sorted by name from DNSName on: the matches first.
			if dnsname.Route53(aws.ToString(z.Name)) != want {
				past = true
				break
			}
			found = append(found, z)
		}
		if past || !out.IsTruncated || out.NextDNSName == nil {
			break
		}
		in = &route53.ListHostedZonesByNameInput{DNSName: out.NextDNSName, HostedZoneId: out.NextHostedZoneId}
	}

	matches := found
	if c.PrivateZone != nil {
		matches = nil
		for i := range found {
			if isPrivate(&found[i]) == *c.PrivateZone {
				matches = append(matches, found[i])
			}
		}
	}
	switch {
	case len(found) == 0:
		return "", "", exitcode.With(exitcode.Usage, fmt.Errorf("route53 zone %s not found: no hosted zone has this name in the account", want))
	case len(matches) == 0:
		return "", "", exitcode.With(exitcode.Usage, fmt.Errorf("route53 zone %s not found among the %s zones (there is %s): check private_zone",
			want, map[bool]string{true: "private", false: "public"}[*c.PrivateZone], listZones(found)))
	case len(matches) > 1:
		hint := "set zone_id to the one to use"
		if c.PrivateZone == nil && hasBoth(matches) {
			hint = "set private_zone: true or private_zone: false (or zone_id)"
		}
		return "", "", exitcode.With(exitcode.Usage, fmt.Errorf("route53 zone %s is ambiguous: %d hosted zones have this name (%s): %s",
			want, len(matches), listZones(matches), hint))
	}
	return strings.TrimPrefix(aws.ToString(matches[0].Id), "/hostedzone/"), want, nil
}

func isPrivate(z *types.HostedZone) bool { return z.Config != nil && z.Config.PrivateZone }

func visibility(z *types.HostedZone) string {
	if isPrivate(z) {
		return "private"
	}
	return "public"
}

func hasBoth(zones []types.HostedZone) bool {
	var pub, priv bool
	for i := range zones {
		if isPrivate(&zones[i]) {
			priv = true
		} else {
			pub = true
		}
	}
	return pub && priv
}

func listZones(zones []types.HostedZone) string {
	s := make([]string, len(zones))
	for i := range zones {
		s[i] = strings.TrimPrefix(aws.ToString(zones[i].Id), "/hostedzone/") + " " + visibility(&zones[i])
	}
	return strings.Join(s, ", ")
}

// maxRecordPages bounds the ListResourceRecordSets pages read for one name.
const maxRecordPages = 10

// recordSets returns every record set named name (canonical) in the zone.
func (p *Route53) recordSets(ctx context.Context, zoneID, name string) ([]types.ResourceRecordSet, error) {
	var sets []types.ResourceRecordSet
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), StartRecordName: aws.String(name)}
	for range maxRecordPages {
		var out *route53.ListResourceRecordSetsOutput
		err := p.call(ctx, "route53:ListResourceRecordSets", func(ctx context.Context) error {
			var err error
			out, err = p.API.ListResourceRecordSets(ctx, in)
			return err
		})
		if err != nil {
			return nil, apiError("route53:ListResourceRecordSets", fmt.Sprintf("read %s in route53 zone %s", name, zoneID), err)
		}
		if out == nil {
			return nil, fmt.Errorf("read %s in route53 zone %s: empty answer", name, zoneID)
		}
		for _, s := range out.ResourceRecordSets {
			// The sets come sorted from StartRecordName on: ours first.
			if dnsname.Route53(aws.ToString(s.Name)) != name {
				return sets, nil
			}
			sets = append(sets, s)
		}
		if !out.IsTruncated || out.NextRecordName == nil {
			return sets, nil
		}
		in = &route53.ListResourceRecordSetsInput{
			HostedZoneId:          aws.String(zoneID),
			StartRecordName:       out.NextRecordName,
			StartRecordType:       out.NextRecordType,
			StartRecordIdentifier: out.NextRecordIdentifier,
		}
	}
	return sets, nil
}

// compareRecord reports whether sets, the record sets at name, are exactly
// one simple record of type typ with value and ttl. It refuses sets of
// other types (a CNAME cannot coexist with any; eipclaim replaces no
// record of another type) and records with a routing policy, which an
// UPSERT would not replace cleanly.
func compareRecord(zoneID, name string, sets []types.ResourceRecordSet, typ types.RRType, value string, ttl int64) (bool, error) {
	if len(sets) == 0 {
		return false, nil
	}
	var other []string
	for _, s := range sets {
		switch {
		case s.Type != typ:
			other = append(other, string(s.Type))
		case s.SetIdentifier != nil:
			return false, fmt.Errorf("route53 zone %s: %s is a %s with a routing policy (set identifier %q); eipclaim publishes only a simple %s: %w",
				zoneID, name, typ, aws.ToString(s.SetIdentifier), typ, ErrConflict)
		}
	}
	if len(other) > 0 {
		return false, fmt.Errorf("route53 zone %s: %s already has %s records, which eipclaim's %s would replace; eipclaim does not delete them: remove them (or set dns.route53.record to their type) or publish another name: %w",
			zoneID, name, strings.Join(other, ", "), typ, ErrConflict)
	}
	s := sets[0]
	got := ""
	if len(s.ResourceRecords) == 1 {
		got = aws.ToString(s.ResourceRecords[0].Value)
		if typ == types.RRTypeCname {
			got = dnsname.Route53(got)
		}
	}
	return len(sets) == 1 && s.AliasTarget == nil && len(s.ResourceRecords) == 1 && got == value && aws.ToInt64(s.TTL) == ttl, nil
}

// describe renders record sets for messages: "CNAME a.example. TTL 60".
func describe(sets []types.ResourceRecordSet) string {
	if len(sets) == 0 {
		return "no record"
	}
	var parts []string
	for _, s := range sets {
		var vals []string
		for _, r := range s.ResourceRecords {
			vals = append(vals, aws.ToString(r.Value))
		}
		if s.AliasTarget != nil {
			vals = append(vals, "alias "+aws.ToString(s.AliasTarget.DNSName))
		}
		parts = append(parts, fmt.Sprintf("%s %s TTL %d", s.Type, strings.Join(vals, " "), aws.ToInt64(s.TTL)))
	}
	return strings.Join(parts, "; ")
}

// apiError describes a failed Route 53 call: what was done, and the
// class, exit code and hint of the error (internal/retry's table for
// Route 53) unless the retrier already gave them.
func apiError(action, what string, err error) error {
	var coded *exitcode.Error
	if errors.As(err, &coded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	class, code := retry.Classify(action, err)
	hint := retry.Hint(action, class, code)
	switch class {
	case retry.Denied:
		if strings.HasPrefix(hint, "grant ") {
			hint = "not permitted: " + hint
		}
		return exitcode.With(exitcode.Denied, fmt.Errorf("%s: %s: %w", what, hint, err))
	case retry.Invalid:
		return exitcode.With(exitcode.Usage, fmt.Errorf("%s: %s: %w", what, hint, err))
	}
	if code == "InvalidChangeBatch" {
		// The message names the problem and is in err's text; a batch
		// with several problems lists them in Messages, which is not.
		var icb *types.InvalidChangeBatch
		if errors.As(err, &icb) && len(icb.Messages) > 0 {
			return fmt.Errorf("%s: route 53 rejected the change (%s): %w", what, strings.Join(icb.Messages, "; "), err)
		}
		return fmt.Errorf("%s: route 53 rejected the change: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
