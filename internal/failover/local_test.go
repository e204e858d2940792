package failover_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// memLocal is the local interfaces in memory (a failover.LocalAddr): the
// interfaces by name, by MAC; fail makes every change fail.
type memLocal struct {
	addrs map[string]map[netip.Addr]bool // interface -> its addresses
	macs  map[string]string              // MAC -> interface
	fail  error
}

var _ failover.LocalAddr = (*memLocal)(nil)

func newMemLocal() *memLocal {
	return &memLocal{addrs: map[string]map[netip.Addr]bool{"eth0": {}, "eth1": {}},
		macs: map[string]string{"0e:00:00:00:00:01": "eth0", "0e:00:00:00:00:02": "eth1"}}
}

func (m *memLocal) Ensure(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	if m.fail != nil {
		return false, m.fail
	}
	have, ok := m.addrs[iface]
	if !ok {
		return false, errors.New("no interface " + iface)
	}
	if have[addr] {
		return false, nil
	}
	have[addr] = true
	return true, nil
}

func (m *memLocal) Remove(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	if m.fail != nil {
		return false, m.fail
	}
	have, ok := m.addrs[iface]
	if !ok {
		return false, errors.New("no interface " + iface)
	}
	was := have[addr]
	delete(have, addr)
	return was, nil
}

func (m *memLocal) ByMAC(_ context.Context, mac string) (string, error) {
	if n, ok := m.macs[mac]; ok {
		return n, nil
	}
	return "", errors.New("no interface with MAC " + mac)
}

// memIMDS answers the MACs of two interfaces and their interface ids.
type memIMDS map[string]string

func (m memIMDS) Metadata(_ context.Context, path string) (string, error) {
	if v, ok := m[path]; ok {
		return v, nil
	}
	return "", errors.New("imds: 404 " + path)
}

var twoENIs = memIMDS{
	"network/interfaces/macs/":                               "0e:00:00:00:00:01/\n0e:00:00:00:00:02/",
	"network/interfaces/macs/0e:00:00:00:00:01/interface-id": "eni-0000000000000aaaa",
	"network/interfaces/macs/0e:00:00:00:00:02/interface-id": "eni-0000000000000bbbb",
}

func TestLocal(t *testing.T) {
	addr := netip.MustParseAddr("10.0.1.50")
	spec := func(iface string) *config.Role {
		return &config.Role{PrivateAddress: "10.0.1.50", LocalInterface: iface}
	}
	type op struct{ op, result string }
	tests := []struct {
		name    string
		spec    *config.Role
		remove  bool
		eni     string
		before  map[string]bool // interfaces that have the address before
		fail    error
		want    *failover.LocalRun
		wantErr string // in want.Error
		after   map[string]bool
	}{
		{name: "unset: nothing", spec: spec(""), want: nil},
		{name: "named", spec: spec("eth1"), want: &failover.LocalRun{Op: "ensure", Name: "eth1", Address: "10.0.1.50", Changed: true}, after: map[string]bool{"eth1": true}},
		{name: "named, already there", spec: spec("eth1"), before: map[string]bool{"eth1": true},
			want: &failover.LocalRun{Op: "ensure", Name: "eth1", Address: "10.0.1.50"}, after: map[string]bool{"eth1": true}},
		{name: "auto: the ENI's MAC", spec: spec("auto"), eni: "eni-0000000000000bbbb",
			want: &failover.LocalRun{Op: "ensure", Name: "eth1", Address: "10.0.1.50", Changed: true}, after: map[string]bool{"eth1": true}},
		{name: "auto: an ENI IMDS does not list", spec: spec("auto"), eni: "eni-0000000000000cccc",
			want: &failover.LocalRun{Op: "ensure", Address: "10.0.1.50"}, wantErr: "IMDS lists no interface eni-0000000000000cccc"},
		{name: "named: the change fails", spec: spec("eth1"), fail: errors.New("add 10.0.1.50/32 to eth1: operation not permitted"),
			want: &failover.LocalRun{Op: "ensure", Name: "eth1", Address: "10.0.1.50"}, wantErr: "operation not permitted"},
		{name: "remove named", spec: spec("eth1"), remove: true, before: map[string]bool{"eth1": true},
			want: &failover.LocalRun{Op: "remove", Name: "eth1", Address: "10.0.1.50", Changed: true}},
		{name: "remove named, not there", spec: spec("eth1"), remove: true,
			want: &failover.LocalRun{Op: "remove", Name: "eth1", Address: "10.0.1.50"}},
		{name: "remove auto: off every interface of the instance", spec: spec("auto"), remove: true, before: map[string]bool{"eth0": true, "eth1": true},
			want: &failover.LocalRun{Op: "remove", Name: "eth0,eth1", Address: "10.0.1.50", Changed: true}},
		{name: "remove fails", spec: spec("auto"), remove: true, before: map[string]bool{"eth1": true}, fail: errors.New("permission denied"),
			want: &failover.LocalRun{Op: "remove", Address: "10.0.1.50"}, wantErr: "permission denied", after: map[string]bool{"eth1": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemLocal()
			for n := range tc.before {
				m.addrs[n][addr] = true
			}
			m.fail = tc.fail
			var seen []op
			l := &failover.Local{Addr: m, IMDS: twoENIs, Log: slog.New(slog.DiscardHandler), Observe: func(o, r string) { seen = append(seen, op{o, r}) }}
			var got *failover.LocalRun
			if tc.remove {
				got = l.Remove(t.Context(), "db", tc.spec, addr)
			} else {
				got = l.Ensure(t.Context(), "db", tc.spec, tc.eni, addr)
			}
			if tc.want == nil {
				if got != nil || len(seen) != 0 {
					t.Fatalf("got %+v, observed %v; want nothing", got, seen)
				}
				return
			}
			if got == nil {
				t.Fatalf("got nil, want %+v", tc.want)
			}
			if !strings.Contains(got.Error, tc.wantErr) || (tc.wantErr == "") != (got.Error == "") {
				t.Errorf("error %q, want it to contain %q", got.Error, tc.wantErr)
			}
			g := *got
			g.Error = ""
			if g != *tc.want {
				t.Errorf("run %+v, want %+v", g, *tc.want)
			}
			result := failover.LocalOK
			if tc.wantErr != "" {
				result = failover.LocalFailed
			}
			if len(seen) != 1 || seen[0] != (op{tc.want.Op, result}) {
				t.Errorf("observed %v, want one %s %s", seen, tc.want.Op, result)
			}
			for n, have := range m.addrs {
				if have[addr] != tc.after[n] {
					t.Errorf("%s has the address: %v, want %v", n, have[addr], tc.after[n])
				}
			}
		})
	}
	if r := (*failover.Local)(nil).Ensure(t.Context(), "db", spec("eth1"), "", addr); r != nil {
		t.Errorf("a nil Local ensured: %+v", r)
	}
}

// hookSees is a HookRunner that records, at each run, whether the local
// interface has the address.
type hookSees struct {
	m     *memLocal
	iface string
	addr  netip.Addr
	saw   []bool
}

func (h *hookSees) Run(_ context.Context, env failover.HookEnv) *failover.HookRun {
	h.saw = append(h.saw, h.m.addrs[h.iface][h.addr])
	return &failover.HookRun{Event: env.Event, Result: failover.HookOK}
}

// TestStepLocalInterface: the step puts the claimed private address on
// the local interface (auto: the MAC of the interface EC2 put it on)
// before on_holder, and again on an address already held (idempotent); a
// failure there is the step's (exit 5, ErrLocal) with the outcome, and
// the claim stands.
func TestStepLocalInterface(t *testing.T) {
	moto := testenv.SharedMoto(t)
	admin := ec2.NewFromConfig(moto.Config())
	is, err := testenv.NewWorld(moto.Config()).NewLoopbackInstances(t.Context(), "127.0.1.81")
	if err != nil {
		t.Fatal(err)
	}
	self := is[0]
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	m := newMemLocal()
	imds := memIMDS{
		"network/interfaces/macs/":                               "0e:00:00:00:00:01/\n0e:00:00:00:00:02/",
		"network/interfaces/macs/0e:00:00:00:00:01/interface-id": "eni-0000000000000aaaa",
		"network/interfaces/macs/0e:00:00:00:00:02/interface-id": self.ENI,
	}
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: self.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1",
		Local:  &failover.Local{Addr: m, IMDS: imds},
	}
	addr := netip.MustParseAddr("127.0.1.220")
	hooks := &hookSees{m: m, iface: "eth1", addr: addr}
	spec := &config.Role{Name: "db", PrivateAddress: addr.String(), LocalInterface: "auto"}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: spec, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	want := failover.LocalRun{Op: "ensure", Name: "eth1", Address: addr.String(), Changed: true}
	if o.Action != "claimed" || o.LocalInterface == nil || *o.LocalInterface != want {
		t.Errorf("outcome %+v, local %+v; want claimed, %+v", o, o.LocalInterface, want)
	}
	if len(hooks.saw) != 1 || !hooks.saw[0] {
		t.Errorf("on_holder ran %d times, saw the address on eth1: %v; want once, after it was added", len(hooks.saw), hooks.saw)
	}
	// Already held, already there: nothing changes.
	o, err = step.Run(t.Context(), failover.Request{Role: "db", Spec: spec, Hooks: hooks})
	if err != nil || o.Action != "already held" || o.LocalInterface == nil || o.LocalInterface.Changed || o.LocalInterface.Name != "eth1" {
		t.Errorf("rerun: %+v (local %+v), %v; want already held, eth1 unchanged", o, o.LocalInterface, err)
	}
	// Taken off by hand, then a change that fails: exit 5, the claim
	// stands, the hook still runs.
	delete(m.addrs["eth1"], addr)
	m.fail = errors.New("add 127.0.1.220/32 to eth1: operation not permitted")
	o, err = step.Run(t.Context(), failover.Request{Role: "db", Spec: spec, Hooks: hooks})
	if o == nil || !errors.Is(err, failover.ErrLocal) || exitcode.Of(err) != exitcode.DNSFailed || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("step with a failing local interface: %+v, %v (exit %d); want the outcome and exit 5 naming the cause", o, err, exitcode.Of(err))
	}
	if o.Action != "already held" || o.LocalInterface == nil || o.LocalInterface.Error == "" || len(hooks.saw) != 3 {
		t.Errorf("outcome %+v local %+v, hooks %d; want already held, the error, the hook run", o, o.LocalInterface, len(hooks.saw))
	}
	out, err := admin.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, p := range out.NetworkInterfaces[0].PrivateIpAddresses {
		held = held || aws.ToString(p.PrivateIpAddress) == addr.String()
	}
	if !held {
		t.Errorf("%s lost %s: a local failure undid the claim", self.ENI, addr)
	}
}
