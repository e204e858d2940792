package observe

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
)

// eni adds an interface of vpc attached to instance ("" for none) whose
// primary address is primary, with secondaries and tags.
func (w *world) eni(id, vpc, instance, primary string, secondaries []string, tags map[string]string) {
	n := types.NetworkInterface{NetworkInterfaceId: aws.String(id), VpcId: aws.String(vpc), PrivateIpAddress: aws.String(primary),
		PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{{PrivateIpAddress: aws.String(primary), Primary: aws.Bool(true)}}}
	for _, s := range secondaries {
		n.PrivateIpAddresses = append(n.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: aws.String(s), Primary: aws.Bool(false)})
	}
	if instance != "" {
		n.Attachment = &types.NetworkInterfaceAttachment{InstanceId: aws.String(instance)}
	}
	for k, v := range tags {
		n.TagSet = append(n.TagSet, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	w.f.enis = append(w.f.enis, n)
}

func (w *world) inVPC(id, vpc string) {
	for k := range w.f.instances {
		if aws.ToString(w.f.instances[k].InstanceId) == id {
			w.f.instances[k].VpcId = aws.String(vpc)
		}
	}
}

func TestFleetPrivateAddresses(t *testing.T) {
	w := newWorld()
	// db: an EIP and 10.0.1.50, both on the holder; epoch 4 on its interface.
	dbH, dbENI := w.instance("db", types.InstanceStateNameRunning)
	dbS, _ := w.instance("db", types.InstanceStateNameRunning)
	w.inVPC(dbH, "vpc-1")
	w.inVPC(dbS, "vpc-1")
	dbAlloc, _ := w.eip(1, dbENI, dbH, map[string]string{"eipclaim:holder": dbH, "eipclaim:epoch": "4"})
	w.eni(dbENI, "vpc-1", dbH, "10.0.1.10", []string{"10.0.1.50"}, map[string]string{"eipclaim:holder:db": dbH, "eipclaim:epoch:db": "4"})
	// cache: only 10.0.1.60, on an untagged instance that is stopped (read
	// by id); the same address in another VPC is not the role's.
	cacheH, cacheENI := w.instance("", types.InstanceStateNameStopped)
	cacheS, _ := w.instance("cache", types.InstanceStateNameRunning)
	w.inVPC(cacheS, "vpc-1")
	w.eni(cacheENI, "vpc-1", cacheH, "10.0.1.11", []string{"10.0.1.60"}, map[string]string{"eipclaim:epoch:cache": "x"})
	w.eni("eni-other", "vpc-2", "i-other", "10.0.1.12", []string{"10.0.1.60"}, nil)
	// queue: 10.0.1.70 is free.
	w.instance("queue", types.InstanceStateNameRunning)
	// twice: 10.0.1.80 on two interfaces of the role's VPC.
	tw, _ := w.instance("twice", types.InstanceStateNameRunning)
	w.inVPC(tw, "vpc-1")
	w.eni("eni-t1", "vpc-1", "", "10.0.1.13", []string{"10.0.1.80"}, nil)
	w.eni("eni-t2", "vpc-1", "", "10.0.1.14", []string{"10.0.1.80"}, nil)
	// primary: 10.0.1.10 is db's holder's primary address.
	w.instance("primary", types.InstanceStateNameRunning)

	f, err := (&Observer{EC2: w.f}).Fleet(t.Context(), map[string]*config.Role{
		"db":      {AllocationID: dbAlloc, PrivateAddress: "10.0.1.50"},
		"cache":   {PrivateAddress: "10.0.1.60"},
		"queue":   {PrivateAddress: "10.0.1.70"},
		"twice":   {PrivateAddress: "10.0.1.80"},
		"primary": {PrivateAddress: "10.0.1.10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.f.calls["DescribeNetworkInterfaces"]; got != 1 {
		t.Errorf("%d DescribeNetworkInterfaces, want 1 for every role's private address", got)
	}
	db := f.Roles["db"]
	if p := db.Private; db.Err != nil || p == nil || p.ENI != dbENI || p.Epoch != 4 || p.HolderTag != dbH ||
		p.Holder != (decide.Holder{Instance: dbH, State: "running", InstanceStatus: "ok", SystemStatus: "ok"}) {
		t.Errorf("db: %+v (err %v)", p, db.Err)
	}
	if o := db.Observed(); o.Private == nil || !o.Private.Held || o.Private.Holder.Instance != dbH || len(o.Addresses) != 1 {
		t.Errorf("db observed: %+v", o)
	}
	cache := f.Roles["cache"]
	if p := cache.Private; cache.Err != nil || p.ENI != cacheENI || p.Holder.Instance != cacheH || p.Holder.State != "stopped" || p.EpochErr == nil || p.HolderIP != "10.0.1.11" {
		t.Errorf("cache: %+v (err %v)", p, cache.Err)
	}
	if o := cache.Observed(); !o.Private.EpochBad || len(o.Addresses) != 0 || o.Problem != "" {
		t.Errorf("cache observed: %+v", o)
	}
	if m := decide.Plan(cache.Observed(), decide.Situation{}); m[0].Action != decide.TakeOver || m[0].Candidate != cacheS {
		t.Errorf("cache plan: %+v, want taken over for %s", m, cacheS)
	}
	if q := f.Roles["queue"]; q.Err != nil || q.Private.ENI != "" || q.Observed().Private.Held {
		t.Errorf("queue: %+v (err %v)", q.Private, q.Err)
	}
	if tw := f.Roles["twice"]; tw.Err == nil || !strings.Contains(tw.Err.Error(), "eni-t1, eni-t2") {
		t.Errorf("twice: err %v, want the two interfaces named", tw.Err)
	}
	if p := f.Roles["primary"]; p.Err == nil || !strings.Contains(p.Err.Error(), "primary private address") {
		t.Errorf("primary: err %v, want the primary address refused", p.Err)
	}
}

func TestFleetPrivateRequestsGrowWithChunksOnly(t *testing.T) {
	for _, n := range []int{1, 40, 401} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := newWorld()
			roles := map[string]*config.Role{}
			for i := range n {
				name := fmt.Sprintf("r%d", i)
				h, eni := w.instance(name, types.InstanceStateNameRunning)
				w.instance(name, types.InstanceStateNameRunning)
				addr := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
				w.eni(eni, "", h, fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), []string{addr}, map[string]string{"eipclaim:holder:" + name: h})
				roles[name] = &config.Role{PrivateAddress: addr}
			}
			f, err := (&Observer{EC2: w.f}).Fleet(t.Context(), roles)
			if err != nil {
				t.Fatal(err)
			}
			for name, r := range f.Roles {
				if r.Err != nil || r.Private.Holder.State != "running" || len(r.Candidates) != 2 {
					t.Fatalf("role %s: %+v %v", name, r.Private, r.Err)
				}
			}
			want := map[string]int{
				"DescribeNetworkInterfaces": (n + 199) / 200,
				"DescribeInstances":         (2*n + 999) / 1000,
				"DescribeInstanceStatus":    map[bool]int{true: 1, false: (2*n + 999) / 1000}[2*n <= 100],
			}
			if !reflect.DeepEqual(want, w.f.calls) {
				t.Errorf("calls for %d roles:\ngot  %+v\nwant %+v", n, w.f.calls, want)
			}
		})
	}
}
