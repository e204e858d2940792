package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/table"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWatchOverlayTakeover: a role with only an overlay address on a
// loopback VPC (two route tables, both interfaces without
// source/destination checking), watched by two real `eipclaim watch`
// processes, the role table an S3 object in moto. A claims it first;
// its service stops (its instance runs): the standby's probes of A's
// primary private IP fail fall times, it reads the table and the routes
// afresh, and the step writes the table's entry (compare-and-swap) and
// points both tables at its interface; its on_holder and the deposed
// holder's on_standby run with EIPCLAIM_OVERLAY_ADDRESS: A reads the role
// table at each look (conditionally) and stands down within a look or
// two of B's write, its truth check (10 min here) never due.
func TestWatchOverlayTakeover(t *testing.T) {
	const addr = "192.168.100.20"
	moto := testenv.SharedMoto(t)
	tw := testenv.NewTestWorld(t, moto.Config())
	is, err := tw.World.NewLoopbackInstances(t.Context(), "127.0.1.97", "127.0.1.98")
	if err != nil {
		t.Fatal(err)
	}
	a, b := is[0], is[1]
	n, err := tw.EC2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{a.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for range 2 {
		rt, err := tw.EC2.CreateRouteTable(t.Context(), &ec2.CreateRouteTableInput{VpcId: n.NetworkInterfaces[0].VpcId})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, aws.ToString(rt.RouteTable.RouteTableId))
	}
	// The IAM policy lets a role change only the tables tagged with it.
	if _, err := tw.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: tables, Tags: []ec2types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	for _, eni := range []string{a.ENI, b.ENI} {
		if _, err := tw.EC2.ModifyNetworkInterfaceAttribute(t.Context(), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), SourceDestCheck: &ec2types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
			t.Fatal(err)
		}
	}
	const bucket = "fleet-config" // the shipped policy's table
	s3c := s3.NewFromConfig(moto.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	w := &watchWorld{t: t, bin: testenv.EipclaimTestHooks(t), moto: moto, tw: tw, truthEvery: "10m"}
	w.config = filepath.Join(t.TempDir(), "eipclaim.yaml")
	doc := fmt.Sprintf("role: db\nrepository: s3://%s/roles.json\nroles:\n  db:\n    overlay: {address: %s, route_tables: [%s]}\n    health_check: tcp:5432\n%s",
		bucket, addr, strings.Join(tables, ", "), watchFast) +
		"    hooks:\n      on_holder: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      on_standby: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      timeout: 5s\n"
	if err := os.WriteFile(w.config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	w.dial = []string{a.PrivateIP + "=" + svcA.Addr(), b.PrivateIP + "=" + svcB.Addr()}
	// routes is where each table routes the address: its interfaces.
	routes := func() []string {
		out, err := tw.EC2.DescribeRouteTables(t.Context(), &ec2.DescribeRouteTablesInput{RouteTableIds: tables})
		if err != nil {
			t.Fatal(err)
		}
		var to []string
		for _, rt := range out.RouteTables {
			for _, r := range rt.Routes {
				if aws.ToString(r.DestinationCidrBlock) == addr+"/32" {
					to = append(to, aws.ToString(r.NetworkInterfaceId))
				}
			}
		}
		return to
	}
	entry := func() table.Entry {
		got, err := s3c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("roles.json")})
		if err != nil {
			return table.Entry{}
		}
		defer got.Body.Close()
		data, err := io.ReadAll(got.Body)
		if err != nil {
			t.Fatal(err)
		}
		d, err := table.Parse(data, "s3://"+bucket+"/roles.json")
		if err != nil {
			t.Fatal(err)
		}
		return d.Roles["db"]
	}
	// A claims the overlay before the watchers start.
	mdA := tw.IMDSFor(a, "")
	claim := exec.Command(w.bin, "--config", w.config, "--timeout", "60s")
	claim.Env = append(append(append(os.Environ(), moto.Env()...), mdA.Env()...), "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	if out, err := claim.CombinedOutput(); err != nil {
		t.Fatalf("A's claim: %v\n%s", err, out)
	}
	if e, to := entry(), routes(); e.Holder != a.ID || len(to) != 2 || to[0] != a.ENI || to[1] != a.ENI {
		t.Fatalf("after A's claim: the table names %q, the routes point at %v; want A (%s) and %s twice", e.Holder, to, a.ID, a.ENI)
	}

	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A runs on_holder and B on_standby at start", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	if h := wa.hooks(t, "holder")[0]; h["EIPCLAIM_OVERLAY_ADDRESS"] != addr || h["EIPCLAIM_HOLDER"] != a.ID || h["EIPCLAIM_PUBLIC_IP"] != "" {
		t.Errorf("A's on_holder at start: %v", h)
	}
	if h := wb.hooks(t, "standby")[0]; h["EIPCLAIM_OVERLAY_ADDRESS"] != addr || h["EIPCLAIM_HOLDER"] != a.ID {
		t.Errorf("B's on_standby at start: %v", h)
	}
	epochA := entry().Epoch

	svcA.Stop()
	took := waitFor(t, 20*time.Second, "the table names B and both tables route to B", func() bool {
		to := routes()
		return entry().Holder == b.ID && len(to) == 2 && to[0] == b.ENI && to[1] == b.ENI
	})
	t.Logf("failover: the overlay routed to B %s after the holder's service stopped (interval 1s, fall 2)", took.Round(100*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("failover took %s, want within fall intervals plus one and a move (about 4s)", took)
	}
	if e := entry(); e.Epoch != epochA+1 {
		t.Errorf("the table's epoch %d after the takeover, want %d (one above A's)", e.Epoch, epochA+1)
	}
	waitFor(t, 10*time.Second, "B's on_holder ran", func() bool { return len(wb.hooks(t, "holder")) == 1 })
	h := wb.hooks(t, "holder")[0]
	want := map[string]string{"EIPCLAIM_EVENT": "holder", "EIPCLAIM_ROLE": "db", "EIPCLAIM_OVERLAY_ADDRESS": addr, "EIPCLAIM_PUBLIC_IP": "",
		"EIPCLAIM_PREVIOUS_HOLDER": a.ID, "EIPCLAIM_HOLDER": b.ID, "EIPCLAIM_EPOCH": strconv.FormatInt(epochA+1, 10)}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("B's on_holder %s=%q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	// A learns of it at a look (interval 1s), not at its truth check.
	deposed := waitFor(t, 10*time.Second, "A's on_standby ran (deposed)", func() bool { return len(wa.hooks(t, "standby")) == 1 })
	t.Logf("A ran on_standby %s after B's on_holder", deposed.Round(100*time.Millisecond))
	if deposed > 4*time.Second {
		t.Errorf("A stood down %s after B's on_holder, want within a look or two (interval 1s)", deposed)
	}
	if h := wa.hooks(t, "standby")[0]; h["EIPCLAIM_PREVIOUS_HOLDER"] != a.ID || h["EIPCLAIM_HOLDER"] != b.ID || h["EIPCLAIM_OVERLAY_ADDRESS"] != addr {
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
	if to := routes(); len(to) != 2 || to[0] != b.ENI || to[1] != b.ENI {
		t.Errorf("the routes point at %v at the end, want %s in both tables", to, b.ENI)
	}
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}
