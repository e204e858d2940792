package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// privateDemo shows a private address failing over by itself: a role
// with no EIP, only a secondary private IP of the loopback subnet, held
// by one instance, watched by it and a standby; the holder's instance and
// service stop, the standby moves the address to its own interface by
// compare-and-swap (unassign from the interface observed, assign without
// reassignment: the IAM gate's strict layer refuses what EC2 refuses) and
// publishes the Route 53 A record.
func privateDemo(ctx context.Context, emu *testenv.Emulators, world *testenv.World, moto *testenv.Moto, bin, dir, zoneID string) error {
	const (
		role    = "orders-db"
		address = "127.0.1.200"
		port    = "15433"
		name    = "orders-db.example.internal"
	)
	pair, err := world.NewLoopbackInstances(ctx, "127.0.1.20", "127.0.1.21")
	if err != nil {
		return err
	}
	holder, standby := pair[0], pair[1]
	// The shipped policy moves private addresses only on interfaces
	// tagged eipclaim:role.
	if _, err := world.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{holder.ENI, standby.ENI},
		Tags: []ec2types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String(role)}}}); err != nil {
		return err
	}
	if _, err := world.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(holder.ENI), PrivateIpAddresses: []string{address}}); err != nil {
		return err
	}
	svc, err := net.Listen("tcp", net.JoinHostPort(holder.PrivateIP, port))
	if err != nil {
		return fmt.Errorf("the holder's service on %s:%s: %w", holder.PrivateIP, port, err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	step("a private address: role %s has no EIP, only the secondary private IP %s of subnet %s (a VPC without an internet gateway could serve it); it is on the holder %s's interface %s; a standby %s",
		role, address, testenv.LoopbackSubnet, holder.ID, holder.ENI, standby.ID)
	hooksLog := dir + "/private-hooks.log"
	hook := func(event, instance string) string {
		return fmt.Sprintf(`["/bin/sh", "-c", "echo \"  hook on %s: entered %s (address $EIPCLAIM_PRIVATE_ADDRESS, epoch $EIPCLAIM_EPOCH, holder $EIPCLAIM_HOLDER)\" >> %s"]`, instance, event, hooksLog)
	}
	conf := func(inst testenv.Instance) string {
		return fmt.Sprintf(`#cloud-config
eipclaim:
  role: %s
  roles:
    %s:
      private_address: %s
      health_check: tcp:%s
      dns:
        route53: {zone_id: %s, name: %s, ttl: 60}   # an A record of the private address
      watch: {interval: 250ms, fall: 2, hold_down: 10s}
      hooks:
        on_holder: %s
        on_standby: %s
`, role, role, address, port, zoneID, name, hook("holder", inst.ID), hook("standby", inst.ID))
	}
	step("a watcher on each, with this user-data (the standby's)")
	fmt.Print(indent(conf(standby)))
	watchers, stopWatchers, err := startWatchers(ctx, emu, moto, bin, dir, "private-", conf, holder, standby)
	defer stopWatchers()
	if err != nil {
		return err
	}
	waitHooks := func(want ...string) {
		for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(hooksLog)
			all := true
			for _, w := range want {
				all = all && strings.Contains(string(b), w)
			}
			if all {
				break
			}
		}
		b, _ := os.ReadFile(hooksLog)
		fmt.Print(string(b))
		os.Truncate(hooksLog, 0)
	}
	waitHooks("hook on "+holder.ID+": entered holder", "hook on "+standby.ID+": entered standby")

	step("the holder's instance %s stops, and its service with it; the standby moves the address to its own interface by itself", holder.ID)
	stopped := time.Now()
	svc.Close()
	if _, err := world.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{holder.ID}}); err != nil {
		return err
	}
	for {
		enis, err := interfacesWith(ctx, world, address)
		if err != nil {
			return err
		}
		if len(enis) == 1 && enis[0] == standby.ENI {
			fmt.Printf("    %s is on the standby's interface %s (and no other) after %s\n", address, standby.ENI, time.Since(stopped).Round(10*time.Millisecond))
			break
		}
		if time.Since(stopped) > 60*time.Second {
			return fmt.Errorf("the standby did not take %s over within 60s (on %v): see %s", address, enis, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitHooks("hook on "+standby.ID+": entered holder", "hook on "+holder.ID+": entered standby")

	for _, w := range watchers {
		w.Process.Signal(syscall.SIGTERM)
	}
	for _, w := range watchers {
		w.Wait()
	}
	step("what EC2 and Route 53 say now")
	enis, err := interfacesWith(ctx, world, address)
	if err != nil {
		return err
	}
	fmt.Printf("    %s is a secondary private IP of %v\n", address, enis)
	ni, err := world.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{standby.ENI}})
	if err != nil {
		return err
	}
	for _, n := range ni.NetworkInterfaces {
		for _, tg := range n.TagSet {
			if strings.HasSuffix(aws.ToString(tg.Key), ":"+role) {
				fmt.Printf("    tag on %s: %s = %s\n", standby.ENI, aws.ToString(tg.Key), aws.ToString(tg.Value))
			}
		}
	}
	rrs, err := world.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if err != nil {
		return err
	}
	for _, rr := range rrs.ResourceRecordSets {
		if rr.Type == r53types.RRTypeA && strings.TrimSuffix(aws.ToString(rr.Name), ".") == name {
			fmt.Printf("    %s %d A %s\n", aws.ToString(rr.Name), aws.ToInt64(rr.TTL), aws.ToString(rr.ResourceRecords[0].Value))
		}
	}
	return nil
}

// interfacesWith lists the interfaces that carry address, primary or
// secondary (moto's filter on addresses.private-ip-address matches the
// primary only, so every interface of the VPC is read).
func interfacesWith(ctx context.Context, world *testenv.World, address string) ([]string, error) {
	out, err := world.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		return nil, err
	}
	var enis []string
	for _, n := range out.NetworkInterfaces {
		for _, p := range n.PrivateIpAddresses {
			if aws.ToString(p.PrivateIpAddress) == address {
				enis = append(enis, aws.ToString(n.NetworkInterfaceId))
			}
		}
	}
	return enis, nil
}
