package claim

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

const (
	self  = "i-0000000000000self"
	other = "i-00000000000other"
	alloc = "eipalloc-0123456789abcdef0"
)

// fakeClock advances instantly on Sleep.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func newFake() *fakeEC2 {
	return &fakeEC2{
		instances: map[string]*fakeInstance{
			self: {state: types.InstanceStateNameRunning, nics: []types.InstanceNetworkInterface{
				nic("eni-00000000000self0", 0, "10.0.1.5", "10.0.1.6"),
				nic("eni-0000000000005e1f1", 1, "10.0.2.5"),
			}},
			other: {state: types.InstanceStateNameRunning, nics: []types.InstanceNetworkInterface{
				nic("eni-0000000000other0", 0, "10.0.1.9"),
			}},
		},
		addrs: []*types.Address{{AllocationId: aws.String(alloc), PublicIp: aws.String("203.0.113.10"), InstanceId: aws.String("")}},
		fail:  map[string][]error{},
	}
}

func newEngine(t *testing.T, f *fakeEC2) (*Engine, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return &Engine{
		EC2:        f,
		InstanceID: self,
		Log:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:      &fakeClock{now: time.Now()},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, errors.New("connection refused")
		},
	}, &logs
}

func holdBy(f *fakeEC2, instance string) {
	_, n := f.eniOwner(aws.ToString(f.instances[instance].nics[0].NetworkInterfaceId))
	a := f.addr(alloc)
	a.AssociationId = aws.String("eipassoc-old")
	a.InstanceId = aws.String(instance)
	a.NetworkInterfaceId = n.NetworkInterfaceId
	a.PrivateIpAddress = n.PrivateIpAddress
}

func TestClaim(t *testing.T) {
	tests := []struct {
		name       string
		spec       config.Role
		force      bool
		setup      func(f *fakeEC2)
		wantCode   int
		wantAction string
		wantENI    string
		wantIP     string
		wantRemaps int
		wantErr    string
	}{
		{name: "free", spec: config.Role{AllocationID: alloc}, wantAction: "claimed", wantENI: "eni-00000000000self0", wantIP: "10.0.1.5", wantRemaps: 1},
		{name: "by public ip", spec: config.Role{PublicIP: "203.0.113.10"}, wantAction: "claimed", wantENI: "eni-00000000000self0", wantRemaps: 1},
		{name: "already held", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) { holdBy(f, self) }, wantAction: "already held", wantENI: "eni-00000000000self0", wantRemaps: 0},
		{name: "ours on another interface moves", spec: config.Role{AllocationID: alloc, Interface: iface("1")}, setup: func(f *fakeEC2) { holdBy(f, self) }, wantAction: "claimed", wantENI: "eni-0000000000005e1f1", wantIP: "10.0.2.5", wantRemaps: 1},
		{name: "secondary private ip", spec: config.Role{AllocationID: alloc, PrivateIP: "10.0.1.6"}, wantAction: "claimed", wantENI: "eni-00000000000self0", wantIP: "10.0.1.6", wantRemaps: 1},
		{name: "eni by id", spec: config.Role{AllocationID: alloc, Interface: iface("eni-0000000000005e1f1")}, wantAction: "claimed", wantENI: "eni-0000000000005e1f1", wantRemaps: 1},
		{name: "private ip elsewhere", spec: config.Role{AllocationID: alloc, PrivateIP: "10.9.9.9"}, wantCode: exitcode.Usage, wantErr: "private_ip 10.9.9.9 is not an address"},
		{name: "interface missing", spec: config.Role{AllocationID: alloc, Interface: iface("2")}, wantCode: exitcode.Usage, wantErr: "interface 2 is not attached"},
		{name: "healthy holder refused", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) { holdBy(f, other) }, wantCode: exitcode.Refused, wantErr: "held by " + other + ", which is healthy (running"},
		{name: "never", spec: config.Role{AllocationID: alloc, Takeover: config.TakeoverNever}, setup: func(f *fakeEC2) {
			holdBy(f, other)
			f.instances[other].state = types.InstanceStateNameStopped
		}, wantCode: exitcode.Refused, wantErr: "takeover is never"},
		{name: "stopped holder taken", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			holdBy(f, other)
			f.instances[other].state = types.InstanceStateNameStopped
		}, wantAction: "taken over", wantENI: "eni-00000000000self0", wantRemaps: 1},
		{name: "impaired holder taken", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			holdBy(f, other)
			f.instances[other].status = types.SummaryStatusImpaired
		}, wantAction: "taken over", wantRemaps: 1},
		{name: "health check failing holder taken", spec: config.Role{AllocationID: alloc, HealthCheck: healthCheck("tcp:5432")}, setup: func(f *fakeEC2) { holdBy(f, other) }, wantAction: "taken over", wantRemaps: 1},
		{name: "vanished holder taken", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			holdBy(f, other)
			a := f.addr(alloc)
			delete(f.instances, other)
			a.NetworkInterfaceId = aws.String("eni-0000000000gone0")
		}, wantAction: "taken over", wantRemaps: 1},
		{name: "force", spec: config.Role{AllocationID: alloc}, force: true, setup: func(f *fakeEC2) { holdBy(f, other) }, wantAction: "taken over", wantRemaps: 1},
		{name: "eventual consistency retried", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			f.fail["DescribeInstances"] = []error{apiErr("InvalidInstanceID.NotFound"), apiErr("InvalidInstanceID.NotFound")}
			f.fail["AssociateAddress"] = []error{apiErr("RequestLimitExceeded")}
		}, wantAction: "claimed", wantRemaps: 1},
		{name: "denied at once", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			f.fail["AssociateAddress"] = []error{apiErr("UnauthorizedOperation"), apiErr("UnauthorizedOperation")}
		}, wantCode: exitcode.Denied, wantErr: "AssociateAddress not permitted"},
		{name: "no internet gateway", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			f.fail["AssociateAddress"] = []error{apiErr("Gateway.NotAttached")}
		}, wantCode: exitcode.Failed, wantErr: "attach an internet gateway"},
		{name: "race lost", spec: config.Role{AllocationID: alloc}, setup: func(f *fakeEC2) {
			f.beforeAssociate = func() {
				f.beforeAssociate = nil
				holdBy(f, other)
			}
		}, wantCode: exitcode.Refused, wantErr: "held by " + other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			e, logs := newEngine(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			spec := tc.spec
			res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &spec, Force: tc.force})
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Claim = %+v, want an error containing %q", res, tc.wantErr)
				}
				if got := exitcode.Of(err); got != tc.wantCode {
					t.Errorf("exit code = %d, want %d (%v)", got, tc.wantCode, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not contain %q", err, tc.wantErr)
				}
				if f.associates != 0 {
					t.Errorf("%d associations made on a failed claim", f.associates)
				}
				return
			}
			if err != nil {
				t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
			}
			if res.Action != tc.wantAction {
				t.Errorf("action = %q, want %q", res.Action, tc.wantAction)
			}
			if f.associates != tc.wantRemaps {
				t.Errorf("associations = %d, want %d", f.associates, tc.wantRemaps)
			}
			a := f.addr(alloc)
			if got := aws.ToString(a.InstanceId); got != self {
				t.Errorf("holder = %q, want %q", got, self)
			}
			if tc.wantENI != "" && aws.ToString(a.NetworkInterfaceId) != tc.wantENI {
				t.Errorf("eni = %q, want %q", aws.ToString(a.NetworkInterfaceId), tc.wantENI)
			}
			if tc.wantIP != "" && aws.ToString(a.PrivateIpAddress) != tc.wantIP {
				t.Errorf("private ip = %q, want %q", aws.ToString(a.PrivateIpAddress), tc.wantIP)
			}
			if tc.wantRemaps > 0 && !hasTag(a, TagHolder, self) {
				t.Errorf("tags = %v, want %s=%s", a.Tags, TagHolder, self)
			}
		})
	}
}

func hasTag(a *types.Address, k, v string) bool {
	for _, t := range a.Tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

func TestClaimDryRun(t *testing.T) {
	f := newFake()
	holdBy(f, other)
	f.instances[other].state = types.InstanceStateNameStopped
	e, _ := newEngine(t, f)
	res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "would be taken over" || f.associates != 0 || aws.ToString(f.addr(alloc).InstanceId) != other {
		t.Errorf("dry run: action %q, %d associations, holder %s", res.Action, f.associates, aws.ToString(f.addr(alloc).InstanceId))
	}
}

func TestPool(t *testing.T) {
	pool := &config.Pool{Tags: map[string]string{"eip-pool": "web"}}
	newPool := func(n int) *fakeEC2 {
		f := newFake()
		f.addrs = nil
		for i := range n {
			f.addrs = append(f.addrs, &types.Address{
				AllocationId: aws.String("eipalloc-0000000" + string(rune('a'+i))),
				PublicIp:     aws.String("203.0.113." + string(rune('1'+i))),
				InstanceId:   aws.String(""),
				Tags:         []types.Tag{{Key: aws.String("eip-pool"), Value: aws.String("web")}},
			})
		}
		return f
	}
	t.Run("claims one", func(t *testing.T) {
		f := newPool(3)
		e, _ := newEngine(t, f)
		res, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
		if err != nil || res.Action != "claimed" || f.associates != 1 {
			t.Fatalf("Claim = %+v, %v; %d associations", res, err, f.associates)
		}
		// A rerun keeps the same one.
		res2, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
		if err != nil || res2.Action != "already held" || res2.AllocationID != res.AllocationID || f.associates != 1 {
			t.Fatalf("rerun = %+v, %v; %d associations", res2, err, f.associates)
		}
	})
	t.Run("skips raced", func(t *testing.T) {
		f := newPool(2)
		e, _ := newEngine(t, f)
		first := spread(append([]types.Address(nil), derefAll(f.addrs)...), self)[0]
		f.beforeAssociate = func() {
			f.beforeAssociate = nil
			a := f.addr(aws.ToString(first.AllocationId))
			a.NetworkInterfaceId, a.InstanceId, a.AssociationId = aws.String("eni-0000000000other0"), aws.String(other), aws.String("eipassoc-x")
		}
		res, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
		if err != nil || res.AllocationID == aws.ToString(first.AllocationId) {
			t.Fatalf("Claim = %+v, %v: want the other EIP", res, err)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		f := newPool(1)
		holdBy2(f, f.addrs[0], other)
		e, _ := newEngine(t, f)
		_, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
		if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "exhausted") {
			t.Fatalf("err = %v, want exhausted, exit 4", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		f := newPool(0)
		e, _ := newEngine(t, f)
		_, err := e.claimTagged(context.Background(), Request{Role: "web", Spec: &config.Role{Pool: pool}})
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "has no EIP") {
			t.Fatalf("err = %v, want has no EIP, exit 2", err)
		}
	})
}

func derefAll(as []*types.Address) []types.Address {
	out := make([]types.Address, len(as))
	for i, a := range as {
		out[i] = *a
	}
	return out
}

func holdBy2(f *fakeEC2, a *types.Address, instance string) {
	n := f.instances[instance].nics[0]
	a.AssociationId, a.InstanceId, a.NetworkInterfaceId, a.PrivateIpAddress = aws.String("eipassoc-y"), aws.String(instance), n.NetworkInterfaceId, n.PrivateIpAddress
}

func TestSpreadDiffersByInstance(t *testing.T) {
	var addrs []types.Address
	for i := range 10 {
		addrs = append(addrs, types.Address{AllocationId: aws.String("eipalloc-0000000" + string(rune('a'+i)))})
	}
	starts := map[string]bool{}
	for i := range 20 {
		got := spread(append([]types.Address(nil), addrs...), "i-"+string(rune('a'+i))+"0000000")
		if len(got) != 10 {
			t.Fatalf("spread lost addresses: %d", len(got))
		}
		starts[aws.ToString(got[0].AllocationId)] = true
	}
	if len(starts) < 4 {
		t.Errorf("20 instances start at only %d distinct EIPs", len(starts))
	}
}

func TestRelease(t *testing.T) {
	f := newFake()
	e, _ := newEngine(t, f)
	what, err := e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false)
	if err != nil || !strings.Contains(what, "nothing to do") {
		t.Fatalf("release of a free EIP = %q, %v", what, err)
	}
	holdBy(f, other)
	if what, err = e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false); err != nil || !strings.Contains(what, "held by "+other) {
		t.Fatalf("release of another's EIP = %q, %v", what, err)
	}
	holdBy(f, self)
	if what, err = e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false); err != nil || !strings.HasPrefix(what, "released") {
		t.Fatalf("release of ours = %q, %v", what, err)
	}
	if a := f.addr(alloc); aws.ToString(a.NetworkInterfaceId) != "" {
		t.Errorf("still associated with %s", aws.ToString(a.NetworkInterfaceId))
	}
}

// TestTakeoverRace: two standbys see the holder stopped; the second
// completes its takeover between the first's decision and its move. The
// first must notice (its disassociation names an association that is gone)
// and refuse, rather than take the EIP from the new, healthy holder.
func TestTakeoverRace(t *testing.T) {
	f := newFake()
	third := "i-00000000000third"
	f.instances[third] = &fakeInstance{state: types.InstanceStateNameRunning, nics: []types.InstanceNetworkInterface{nic("eni-0000000000third0", 0, "10.0.1.7")}}
	holdBy(f, other)
	f.instances[other].state = types.InstanceStateNameStopped
	first, _ := newEngine(t, f)
	second, _ := newEngine(t, f)
	second.InstanceID = third
	var secondErr error
	f.beforeDisassociate = func() {
		_, secondErr = second.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	}
	_, err := first.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if secondErr != nil {
		t.Fatalf("the second standby failed: %v", secondErr)
	}
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "held by "+third) {
		t.Fatalf("the first standby: %v (exit %d), want refused naming %s", err, exitcode.Of(err), third)
	}
	if got := aws.ToString(f.addr(alloc).InstanceId); got != third {
		t.Errorf("holder = %s, want %s", got, third)
	}
	if f.associates != 1 {
		t.Errorf("%d associations, want 1", f.associates)
	}
}

// iface is the interface selector s, as validation parses it.
func iface(s string) config.Interface {
	i, err := config.ParseInterface(s)
	if err != nil {
		panic(err)
	}
	return i
}

// healthCheck is the health check s, as validation parses it.
func healthCheck(s string) config.HealthCheck {
	h, err := config.ParseHealthCheck(s)
	if err != nil {
		panic(err)
	}
	return h
}
