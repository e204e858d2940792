package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWatchPrivateAddressTakeover: a role with only private_address (a
// secondary private IP) on a loopback VPC, watched by two real `eipclaim
// watch` processes. The holder's service stops (its instance runs): the
// standby's probes of the holder's primary private IP fail fall times, it
// reads EC2 afresh and the step moves the address to its interface by
// compare-and-swap; its on_holder and the deposed holder's on_standby run
// with EIPCLAIM_PRIVATE_ADDRESS, and the deposed holder's IMDS
// (local-ipv4s) no longer lists the address.
func TestWatchPrivateAddressTakeover(t *testing.T) {
	const addr = "127.0.1.230"
	moto := testenv.SharedMoto(t)
	tw := testenv.NewTestWorld(t, moto.Config())
	is, err := tw.World.NewLoopbackInstances(t.Context(), "127.0.1.93", "127.0.1.94")
	if err != nil {
		t.Fatal(err)
	}
	a, b := is[0], is[1]
	if _, err := tw.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{a.ENI, b.ENI},
		Tags: []ec2types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	// A holds the address before the watchers start.
	if _, err := tw.EC2.AssignPrivateIpAddresses(t.Context(), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(a.ENI), PrivateIpAddresses: []string{addr}}); err != nil {
		t.Fatal(err)
	}
	w := &watchWorld{t: t, bin: testenv.EipclaimTestHooks(t), moto: moto, tw: tw}
	w.config = filepath.Join(t.TempDir(), "eipclaim.yaml")
	doc := fmt.Sprintf("role: db\nroles:\n  db:\n    private_address: %s\n    health_check: tcp:5432\n%s", addr, watchFast) +
		"    hooks:\n      on_holder: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      on_standby: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      timeout: 5s\n"
	if err := os.WriteFile(w.config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	w.dial = []string{a.PrivateIP + "=" + svcA.Addr(), b.PrivateIP + "=" + svcB.Addr()}
	holderOf := func() string {
		out, err := tw.EC2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
			{Name: aws.String("addresses.private-ip-address"), Values: []string{addr}}, {Name: aws.String("subnet-id"), Values: []string{a.SubnetID}}}})
		if err != nil || len(out.NetworkInterfaces) != 1 {
			return ""
		}
		return aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId)
	}

	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A runs on_holder and B on_standby at start", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	if h := wa.hooks(t, "holder")[0]; h["EIPCLAIM_PRIVATE_ADDRESS"] != addr || h["EIPCLAIM_HOLDER"] != a.ID || h["EIPCLAIM_PUBLIC_IP"] != "" {
		t.Errorf("A's on_holder at start: %v", h)
	}
	if h := wb.hooks(t, "standby")[0]; h["EIPCLAIM_PRIVATE_ADDRESS"] != addr || h["EIPCLAIM_HOLDER"] != a.ID {
		t.Errorf("B's on_standby at start: %v", h)
	}
	epochA := wa.hooks(t, "holder")[0]["EIPCLAIM_EPOCH"]

	svcA.Stop()
	took := waitFor(t, 20*time.Second, "B holds the private address", func() bool { return holderOf() == b.ENI })
	t.Logf("failover: the private address on B %s after the holder's service stopped (interval 1s, fall 2)", took.Round(100*time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("failover took %s, want within fall intervals plus one and a move (about 3s)", took)
	}
	waitFor(t, 10*time.Second, "B's on_holder ran", func() bool { return len(wb.hooks(t, "holder")) == 1 })
	h := wb.hooks(t, "holder")[0]
	want := map[string]string{"EIPCLAIM_EVENT": "holder", "EIPCLAIM_ROLE": "db", "EIPCLAIM_PRIVATE_ADDRESS": addr, "EIPCLAIM_PUBLIC_IP": "",
		"EIPCLAIM_PREVIOUS_HOLDER": a.ID, "EIPCLAIM_HOLDER": b.ID}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("B's on_holder %s=%q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	if h["EIPCLAIM_EPOCH"] == epochA || h["EIPCLAIM_EPOCH"] == "" {
		t.Errorf("B's epoch %q, want one above A's %q", h["EIPCLAIM_EPOCH"], epochA)
	}
	waitFor(t, 10*time.Second, "A's on_standby ran (deposed)", func() bool { return len(wa.hooks(t, "standby")) == 1 })
	if h := wa.hooks(t, "standby")[0]; h["EIPCLAIM_PREVIOUS_HOLDER"] != a.ID || h["EIPCLAIM_HOLDER"] != b.ID || h["EIPCLAIM_PRIVATE_ADDRESS"] != addr {
		t.Errorf("A's on_standby: %v", h)
	}
	if !eventually(5*time.Second, func() bool {
		return metricHas(t, wb.metrics, `eipclaim_takeovers_total{role="db"} 1`, `eipclaim_watch_state{role="db",state="holder"} 1`)
	}) {
		t.Errorf("B's metrics:\n%s", readFile(t, wb.metrics))
	}
	if !eventually(5*time.Second, func() bool {
		return metricHas(t, wa.metrics, `eipclaim_losses_total{role="db"} 1`, `eipclaim_watch_state{role="db",state="standby"} 1`)
	}) {
		t.Errorf("A's metrics:\n%s", readFile(t, wa.metrics))
	}
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}
