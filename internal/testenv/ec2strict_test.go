package testenv_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// holdersOf lists the interfaces that hold ip, as DescribeNetworkInterfaces
// filtered by addresses.private-ip-address answers (through the gate).
func holdersOf(t *testing.T, c *ec2.Client, ip string) []string {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{ip}}},
	})
	if err != nil {
		t.Fatalf("DescribeNetworkInterfaces by %s: %v", ip, err)
	}
	var enis []string
	for _, n := range out.NetworkInterfaces {
		enis = append(enis, aws.ToString(n.NetworkInterfaceId))
	}
	slices.Sort(enis)
	return enis
}

// TestGateSecondaryIPsLikeAWS: the gate answers AssignPrivateIpAddresses
// and UnassignPrivateIpAddresses as AWS does where moto differs: an
// address another interface holds is refused without AllowReassignment,
// one outside the subnet is refused, an unassign of an address the
// interface does not hold is refused, an address AWS reserves is refused, and
// DescribeNetworkInterfaces finds an interface by a secondary address; of
// eight concurrent assigns of one address exactly one succeeds.
func TestGateSecondaryIPsLikeAWS(t *testing.T) {
	moto := testenv.SharedMoto(t)
	w := testenv.NewWorld(moto.Config())
	ctx := t.Context()
	ips := []string{"127.0.1.31", "127.0.1.32", "127.0.1.33", "127.0.1.34", "127.0.1.35", "127.0.1.36", "127.0.1.37", "127.0.1.38"}
	is, err := w.NewLoopbackInstances(ctx, ips...)
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(moto.Config())
	const addr = "127.0.1.200"
	assign := func(eni string, allow bool) error {
		_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{addr}, AllowReassignment: aws.Bool(allow)})
		return err
	}
	unassign := func(eni string) error {
		_, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{addr}})
		return err
	}

	if got := holdersOf(t, c, addr); len(got) != 0 {
		t.Fatalf("before any assign, %s is on %v", addr, got)
	}
	for _, a := range []string{"127.0.1.0", "127.0.1.3", "127.0.1.255"} {
		if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(is[0].ENI), PrivateIpAddresses: []string{a}}); errCode(err) != "InvalidParameterValue" {
			t.Errorf("assign of %s, reserved by AWS: %v, want InvalidParameterValue", a, err)
		}
	}
	if err := unassign(is[0].ENI); errCode(err) != "InvalidParameterValue" {
		t.Errorf("unassign of an address the interface does not hold: %v, want InvalidParameterValue", err)
	}
	if err := unassign(is[0].ENI); err == nil {
		t.Errorf("unassign %s twice: no error", addr)
	}
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(is[0].ENI), PrivateIpAddresses: []string{"127.0.2.9"}}); errCode(err) != "InvalidParameterValue" {
		t.Errorf("assign of an address outside the subnet: %v, want InvalidParameterValue", err)
	}
	if err := assign(is[0].ENI, false); err != nil {
		t.Fatalf("assign %s to a free interface: %v", addr, err)
	}
	if got := holdersOf(t, c, addr); !slices.Equal(got, []string{is[0].ENI}) {
		t.Fatalf("after the assign, %s is on %v, want [%s] (the filter finds secondary addresses)", addr, got, is[0].ENI)
	}
	if err := assign(is[1].ENI, false); errCode(err) != "InvalidIPAddress.InUse" {
		t.Errorf("assign of an address another interface holds, without AllowReassignment: %v, want InvalidIPAddress.InUse", err)
	}
	if err := unassign(is[1].ENI); errCode(err) != "InvalidParameterValue" {
		t.Errorf("unassign from an interface that does not hold it: %v, want InvalidParameterValue", err)
	}
	if got := holdersOf(t, c, addr); !slices.Equal(got, []string{is[0].ENI}) {
		t.Fatalf("after the refusals, %s is on %v, want [%s]", addr, got, is[0].ENI)
	}
	if err := unassign(is[0].ENI); err != nil {
		t.Fatalf("unassign from the holder: %v", err)
	}

	// Eight at once: one wins, seven are refused.
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, len(is))
		for i := range is {
			wg.Go(func() { errs[i] = assign(is[i].ENI, false) })
		}
		wg.Wait()
		var won []string
		for i, err := range errs {
			switch {
			case err == nil:
				won = append(won, is[i].ENI)
			case errCode(err) != "InvalidIPAddress.InUse":
				t.Errorf("round %d: %s: %v, want success or InvalidIPAddress.InUse", round, is[i].ENI, err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d assigns succeeded (%v), want 1", round, len(won), won)
		}
		if got := holdersOf(t, c, addr); !slices.Equal(got, won) {
			t.Fatalf("round %d: %s is on %v, want %v", round, addr, got, won)
		}
		if err := unassign(won[0]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGateRoutesLikeAWS: the gate answers route changes as AWS does where
// moto differs: CreateRoute of a destination the table has is refused
// (RouteAlreadyExists; moto replaces the route), a DryRun changes nothing
// (DryRunOperation; moto carries it out); of eight concurrent CreateRoute
// of one destination exactly one succeeds. ReplaceRoute of a route the
// table lacks is moto's own refusal, as AWS's.
func TestGateRoutesLikeAWS(t *testing.T) {
	moto := testenv.SharedMoto(t)
	w := testenv.NewWorld(moto.Config())
	ctx := t.Context()
	is, err := w.NewLoopbackInstances(ctx, "127.0.1.41", "127.0.1.42")
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(moto.Config())
	n, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{is[0].ENI}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: n.NetworkInterfaces[0].VpcId})
	if err != nil {
		t.Fatal(err)
	}
	rtb, dest := rt.RouteTable.RouteTableId, aws.String("192.168.100.10/32")
	target := func() string {
		t.Helper()
		out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{aws.ToString(rtb)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.RouteTables[0].Routes {
			if aws.ToString(r.DestinationCidrBlock) == aws.ToString(dest) {
				return aws.ToString(r.NetworkInterfaceId)
			}
		}
		return ""
	}
	_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: rtb, DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(is[0].ENI)})
	if errCode(err) != "InvalidParameterValue" {
		t.Errorf("ReplaceRoute of a missing route: %v, want InvalidParameterValue", err)
	}
	_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rtb, DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(is[0].ENI), DryRun: aws.Bool(true)})
	if errCode(err) != "DryRunOperation" || target() != "" {
		t.Errorf("CreateRoute DryRun: %v, route -> %q; want DryRunOperation and no route", err, target())
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rtb, DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(is[i%2].ENI)})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errCode(err) != "RouteAlreadyExists":
			t.Errorf("concurrent CreateRoute: %v, want RouteAlreadyExists", err)
		}
	}
	if ok != 1 || target() == "" {
		t.Errorf("%d of 8 concurrent CreateRoute succeeded (route -> %q), want exactly one", ok, target())
	}
	was := target()
	_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: rtb, DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(is[1].ENI), DryRun: aws.Bool(true)})
	if errCode(err) != "DryRunOperation" || target() != was {
		t.Errorf("ReplaceRoute DryRun: %v, route -> %q; want DryRunOperation and %s kept", err, target(), was)
	}
	_, err = c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: rtb, DestinationCidrBlock: dest, DryRun: aws.Bool(true)})
	if errCode(err) != "DryRunOperation" || target() != was {
		t.Errorf("DeleteRoute DryRun: %v, route -> %q; want DryRunOperation and the route kept", err, target())
	}
}
