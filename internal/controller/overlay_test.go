package controller_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// overlayFleet is 6 overlay roles on moto behind the gate: o0-o3 an
// overlay address alone (192.168.100.10+, a Route 53 A record of it),
// o4-o5 an EIP too (a CNAME); each role two instances (source/destination
// checking off) and two route tables tagged eipclaim:role; the role table
// in moto's S3 is the overlay's compare-and-swap.
type overlayFleet struct {
	*privateFleet
	tables  map[string][]string // role -> its two route tables
	overlay map[string]string   // role -> its overlay address
	enis    map[string]string   // instance -> its interface
}

func newOverlayFleet(t *testing.T) *overlayFleet {
	f := newFixture(t)
	ctx := t.Context()
	of := &overlayFleet{privateFleet: &privateFleet{f: f, eips: map[string]string{}, insts: map[string][]testenv.Instance{}, byENI: map[string]string{}},
		tables: map[string][]string{}, overlay: map[string]string{}, enis: map[string]string{}}
	var doc strings.Builder
	doc.WriteString("repository: s3://" + bucket + "/roles.json\nroles:\n")
	for i := range 6 {
		role := fmt.Sprintf("o%d", i)
		is := f.candidates(role, 2)
		of.insts[role] = is
		for _, in := range is {
			of.byENI[in.ENI], of.enis[in.ID] = in.ID, in.ENI
			if _, err := f.w.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(in.ENI),
				SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := f.w.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{is[0].ENI}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			rt, err := f.w.EC2.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: n.NetworkInterfaces[0].VpcId})
			if err != nil {
				t.Fatal(err)
			}
			of.tables[role] = append(of.tables[role], aws.ToString(rt.RouteTable.RouteTableId))
		}
		if _, err := f.w.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: of.tables[role], Tags: []types.Tag{{Key: aws.String(controller.TagRole), Value: aws.String(role)}}}); err != nil {
			t.Fatal(err)
		}
		of.overlay[role] = fmt.Sprintf("192.168.100.%d", 10+i)
		fmt.Fprintf(&doc, "  %s:\n    overlay: {address: %s, route_tables: [%s]}\n", role, of.overlay[role], strings.Join(of.tables[role], ", "))
		if i >= 4 {
			of.eips[role] = f.w.NewEIP(nil).AllocationID
			fmt.Fprintf(&doc, "    allocation_id: %s\n", of.eips[role])
		}
		fmt.Fprintf(&doc, "    dns:\n      route53: {zone_id: %s, name: %s.example.internal, ttl: 60}\n", f.zone, role)
	}
	cfg, err := config.Parse([]byte(doc.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	of.roles = cfg.Roles
	of.count = &countingTransport{byKey: map[string]int{}, next: http.DefaultTransport}
	acfg := f.moto.ConfigAs(testenv.CallerController)
	acfg.HTTPClient = &http.Client{Transport: of.count}
	of.c = &controller.Controller{
		EC2: ec2.NewFromConfig(acfg), Route53: route53.NewFromConfig(acfg), S3: s3.NewFromConfig(acfg),
		Config: func(context.Context) (*config.Config, error) { return cfg, nil },
		Region: testenv.MotoRegion,
	}
	return of
}

// routes returns the instance each of the role's tables routes its
// overlay address to ("" for none, "?" for an interface of no fleet
// instance).
func (of *overlayFleet) routes(t *testing.T, role string) []string {
	t.Helper()
	out, err := of.f.w.EC2.DescribeRouteTables(t.Context(), &ec2.DescribeRouteTablesInput{RouteTableIds: of.tables[role]})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range of.tables[role] {
		to := ""
		for _, rt := range out.RouteTables {
			if aws.ToString(rt.RouteTableId) != id {
				continue
			}
			for _, r := range rt.Routes {
				if aws.ToString(r.DestinationCidrBlock) == of.overlay[role]+"/32" {
					if to = of.byENI[aws.ToString(r.NetworkInterfaceId)]; to == "" {
						to = "?"
					}
				}
			}
		}
		got = append(got, to)
	}
	return got
}

// holderOf checks that the role table's entry and every route of the role
// name one holder, and returns it.
func (of *overlayFleet) holderOf(t *testing.T, role string, table map[string]tableEntry) string {
	t.Helper()
	e := table[role]
	for i, to := range of.routes(t, role) {
		if to != e.Holder {
			t.Errorf("%s: %s routes %s to %q, the role table names %q", role, of.tables[role][i], of.overlay[role], to, e.Holder)
		}
	}
	if e.PrivateIP != of.overlay[role] {
		t.Errorf("%s: the role table's entry %+v, want %s", role, e, of.overlay[role])
	}
	if alloc, ok := of.eips[role]; ok {
		if eni, _ := of.f.holder(alloc); of.byENI[eni] != e.Holder {
			t.Errorf("%s: the EIP on %s, the overlay on %s: want one holder", role, of.byENI[eni], e.Holder)
		}
	}
	return e.Holder
}

// TestOverlayFleetSteadyAndFailover: the schedule claims every role's
// overlay address (with its EIP where it has one: one holder); a steady
// run costs one DescribeRouteTables and one read of the role table more
// than a fleet of EIPs, whatever the number of overlay roles; three
// holders stop, and the next run moves exactly those roles: the role
// table's entry and every route table name the standby, the A record of
// an overlay-only role is published; a route drifted off a healthy holder
// is repaired by the next run, with no new epoch.
func TestOverlayFleetSteadyAndFailover(t *testing.T) {
	of := newOverlayFleet(t)
	actions, _, _ := of.schedule(t)
	for role := range of.roles {
		if actions[role] != "claimed" {
			t.Errorf("first run: %s %q, want claimed", role, actions[role])
		}
	}
	table := of.table(t)
	holders := map[string]string{}
	for role := range of.roles {
		holders[role] = of.holderOf(t, role, table)
		if holders[role] == "" {
			t.Fatalf("%s: no holder after the claim", role)
		}
	}
	if got := of.f.aRecord("o0.example.internal"); got != of.overlay["o0"] {
		t.Errorf("o0: A record %q after the claim, want %s", got, of.overlay["o0"])
	}

	actions, ec2Steady, bySvc := of.schedule(t)
	for role := range of.roles {
		if actions[role] != "already held" {
			t.Errorf("steady run: %s %q, want already held", role, actions[role])
		}
	}
	want := map[string]int{"ec2:DescribeAddresses": 1, "ec2:DescribeInstances": 1, "ec2:DescribeInstanceStatus": 1, "ec2:DescribeRouteTables": 1}
	if !maps.Equal(ec2Steady, want) {
		t.Errorf("EC2 requests of a steady run: %v, want %v", ec2Steady, want)
	}
	if bySvc["s3"] != 1 {
		t.Errorf("%d S3 requests in a steady run, want 1 (the role table, read once by the observation)", bySvc["s3"])
	}
	t.Logf("steady schedule run over 6 overlay roles (12 route tables): %d AWS requests %v; EC2 %v", total(bySvc), bySvc, ec2Steady)

	stopped := []string{"o0", "o1", "o4"}
	for _, role := range stopped {
		of.f.stop(holders[role])
	}
	actions, ec2Fail, bySvc := of.schedule(t)
	t.Logf("failover run (3 holders stopped): %d AWS requests %v; EC2 %v", total(bySvc), bySvc, ec2Fail)
	table = of.table(t)
	for role := range of.roles {
		moved := role == "o0" || role == "o1" || role == "o4"
		if want := map[bool]string{true: "taken over", false: "already held"}[moved]; actions[role] != want {
			t.Errorf("failover run: %s %q, want %q", role, actions[role], want)
		}
		h := of.holderOf(t, role, table)
		switch {
		case moved && (h == holders[role] || h == ""):
			t.Errorf("%s: held by %q after the failover, want the standby (not %s)", role, h, holders[role])
		case !moved && h != holders[role]:
			t.Errorf("%s: moved from %s to %s, its holder runs", role, holders[role], h)
		}
		holders[role] = h
	}
	if got := ec2Fail["ec2:ReplaceRoute"]; got != 6 {
		t.Errorf("%d ReplaceRoute, want 6 (two tables of each moved role)", got)
	}
	if got := ec2Fail["ec2:CreateRoute"]; got != 0 {
		t.Errorf("%d CreateRoute, want none (the routes were there)", got)
	}
	if got := of.f.aRecord("o0.example.internal"); got != of.overlay["o0"] {
		t.Errorf("o0: A record %q after the failover, want %s", got, of.overlay["o0"])
	}

	// An operator points o2's second table at its standby: the next run
	// repairs it by the holder's claim, the epoch kept.
	standby := of.insts["o2"][0].ID
	if standby == holders["o2"] {
		standby = of.insts["o2"][1].ID
	}
	if _, err := of.f.w.EC2.ReplaceRoute(t.Context(), &ec2.ReplaceRouteInput{RouteTableId: aws.String(of.tables["o2"][1]),
		DestinationCidrBlock: aws.String(of.overlay["o2"] + "/32"), NetworkInterfaceId: aws.String(of.enis[standby])}); err != nil {
		t.Fatal(err)
	}
	epoch := table["o2"].Epoch
	res, err := of.c.Handle(t.Context(), []byte(scheduled))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Decisions {
		if d.Role == "o2" && (d.Action != "already held" || !strings.Contains(d.Reason, of.tables["o2"][1]+" repaired")) {
			t.Errorf("drift: o2 %q (%s), want already held, %s repaired", d.Action, d.Reason, of.tables["o2"][1])
		}
	}
	table = of.table(t)
	if h := of.holderOf(t, "o2", table); h != holders["o2"] || table["o2"].Epoch != epoch {
		t.Errorf("o2 after the repair: held by %s epoch %d, want %s epoch %d", h, table["o2"].Epoch, holders["o2"], epoch)
	}
}

// TestOverlayJoinsTheEIP: a role's EIP on one healthy instance, its
// overlay address routed to another healthy one (an operator's routes,
// no table entry). The schedule moves the overlay to the EIP's holder
// (the EIP leads): the step takes it by force (ForcePrivate), the role
// table's entry and both routes then name the EIP's holder; the next run
// keeps both.
func TestOverlayJoinsTheEIP(t *testing.T) {
	of := newOverlayFleet(t)
	ctx := t.Context()
	a, b := of.insts["o4"][0], of.insts["o4"][1]
	of.f.w.Associate(of.eips["o4"], a.ID)
	for _, rtb := range of.tables["o4"] {
		if _, err := of.f.w.EC2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: aws.String(of.overlay["o4"] + "/32"),
			NetworkInterfaceId: aws.String(b.ENI)}); err != nil {
			t.Fatal(err)
		}
	}
	actions, _, _ := of.schedule(t)
	if actions["o4"] != "taken over" {
		t.Errorf("o4: %q, want taken over (the overlay joins the EIP on %s)", actions["o4"], a.ID)
	}
	if h := of.holderOf(t, "o4", of.table(t)); h != a.ID {
		t.Errorf("o4's overlay on %q, want %s (the EIP's holder)", h, a.ID)
	}
	if actions, _, _ = of.schedule(t); actions["o4"] != "already held" {
		t.Errorf("the next run: o4 %q, want already held", actions["o4"])
	}
}
