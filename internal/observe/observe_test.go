package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
)

func fixed(alloc string) *config.Role { return &config.Role{AllocationID: alloc} }

func TestFleet(t *testing.T) {
	w := newWorld()
	// db: held through its interface only (EC2 leaves InstanceId empty
	// there), a standby; epoch 7.
	dbH, dbENI := w.instance("db", types.InstanceStateNameRunning)
	dbS, _ := w.instance("db", types.InstanceStateNameRunning)
	dbAlloc, _ := w.eip(1, dbENI, "", map[string]string{"eipclaim:holder": dbH, "eipclaim:epoch": "7"})
	// web: by public_ip, held through the interface of an instance with no
	// tag (read by interface),
	// whose epoch tag is not an epoch; its standby's system check impaired.
	webH, webENI := w.instance("", types.InstanceStateNameRunning)
	webS, _ := w.instance("web", types.InstanceStateNameRunning)
	w.f.status[webS] = [2]types.SummaryStatus{types.SummaryStatusOk, types.SummaryStatusImpaired}
	_, webIP := w.eip(2, webENI, "", map[string]string{"eipclaim:epoch": "seven"})
	// cache: held by an instance EC2 no longer knows; a stopped standby
	// and one tagged with a pattern ("cach*"), which is no candidate.
	cacheAlloc, _ := w.eip(3, "eni-gone", "i-gone", nil)
	cacheS, _ := w.instance("cache", types.InstanceStateNameStopped)
	w.instance("cach*", types.InstanceStateNameRunning)
	// queue: free, no candidate.
	queueAlloc, _ := w.eip(4, "", "", nil)
	// lost: an EIP that does not exist.
	w.instance("lost", types.InstanceStateNameRunning)

	o := &Observer{EC2: w.f}
	f, err := o.Fleet(t.Context(), map[string]*config.Role{
		"db": fixed(dbAlloc), "web": {PublicIP: webIP}, "cache": fixed(cacheAlloc), "queue": fixed(queueAlloc), "lost": fixed("eipalloc-0404"),
	})
	if err != nil {
		t.Fatal(err)
	}
	running := func(id string, minute int) decide.Candidate {
		return decide.Candidate{Instance: id, State: "running", InstanceStatus: "ok", SystemStatus: "ok", LaunchTime: time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)}
	}
	tests := []struct {
		role      string
		holder    decide.Holder
		epoch     int64
		epochErr  bool
		cands     []decide.Candidate
		free      bool
		wantError error
	}{
		{role: "db", holder: decide.Holder{Instance: dbH, State: "running", InstanceStatus: "ok", SystemStatus: "ok"}, epoch: 7,
			cands: []decide.Candidate{running(dbH, 1), running(dbS, 2)}},
		{role: "web", holder: decide.Holder{Instance: webH, State: "running", InstanceStatus: "ok", SystemStatus: "ok"}, epochErr: true,
			cands: []decide.Candidate{func() decide.Candidate { c := running(webS, 4); c.SystemStatus = "impaired"; return c }()}},
		{role: "cache", holder: decide.Holder{Instance: "i-gone", State: "gone"},
			cands: []decide.Candidate{{Instance: cacheS, State: "stopped", LaunchTime: time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)}}},
		{role: "queue", free: true},
		{role: "lost", wantError: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			r := f.Roles[tt.role]
			if tt.wantError != nil {
				if !errors.Is(r.Err, tt.wantError) || !strings.Contains(r.Err.Error(), "roles.lost.allocation_id") {
					t.Fatalf("Err = %v, want %v naming the key", r.Err, tt.wantError)
				}
				if got := r.Observed(); got.Problem == "" {
					t.Errorf("Observed().Problem empty for %v", r.Err)
				}
				return
			}
			if r.Err != nil || len(r.Addresses) != 1 {
				t.Fatalf("Err %v, %d addresses", r.Err, len(r.Addresses))
			}
			a := r.Addresses[0]
			if a.Free() != tt.free {
				t.Errorf("Free() = %v, want %v", a.Free(), tt.free)
			}
			if !reflect.DeepEqual(tt.holder, a.Holder) {
				t.Errorf("holder:\ngot  %+v\nwant %+v", a.Holder, tt.holder)
			}
			if a.Epoch != tt.epoch || (a.EpochErr != nil) != tt.epochErr {
				t.Errorf("epoch %d (%v), want %d (error %v)", a.Epoch, a.EpochErr, tt.epoch, tt.epochErr)
			}
			if !reflect.DeepEqual(tt.cands, r.Candidates) {
				t.Errorf("candidates:\ngot  %+v\nwant %+v", r.Candidates, tt.cands)
			}
		})
	}
	// One read per kind, plus the read of the holders that carry no tag.
	want := map[string]int{"DescribeAddresses": 2, "DescribeInstances": 3, "DescribeInstanceStatus": 1}
	if !reflect.DeepEqual(want, w.f.calls) {
		t.Errorf("calls:\ngot  %+v\nwant %+v", w.f.calls, want)
	}
	if ob := f.Roles["web"].Observed(); !ob.Addresses[0].EpochBad || ob.Addresses[0].HolderTag != "" || !ob.Addresses[0].Held {
		t.Errorf("web Observed() = %+v", ob.Addresses[0])
	}
}

// The number of requests grows with pages, never with roles.
func TestFleetRequestsGrowWithPagesOnly(t *testing.T) {
	for _, n := range []int{1, 40, 400, 1250} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := newWorld()
			roles := map[string]*config.Role{}
			for i := range n {
				name := fmt.Sprintf("r%d", i)
				h, eni := w.instance(name, types.InstanceStateNameRunning)
				w.instance(name, types.InstanceStateNameRunning)
				alloc, _ := w.eip(i, eni, "", map[string]string{"eipclaim:holder": h, "eipclaim:epoch": "1"})
				roles[name] = fixed(alloc)
			}
			f, err := (&Observer{EC2: w.f}).Fleet(t.Context(), roles)
			if err != nil {
				t.Fatal(err)
			}
			for name, r := range f.Roles {
				if r.Err != nil || len(r.Candidates) != 2 || r.Addresses[0].Holder.State != "running" || r.Addresses[0].Holder.InstanceStatus != "ok" {
					t.Fatalf("role %s: %+v", name, r)
				}
			}
			statusCalls := 1 // ids named, up to 100
			if 2*n > 100 {
				statusCalls = (2*n + 999) / 1000 // every instance's, by pages
			}
			want := map[string]int{
				"DescribeAddresses":      (n + 199) / 200,
				"DescribeInstances":      (2*n + 999) / 1000,
				"DescribeInstanceStatus": statusCalls,
			}
			if !reflect.DeepEqual(want, w.f.calls) {
				t.Errorf("calls for %d roles:\ngot  %+v\nwant %+v", n, w.f.calls, want)
			}
		})
	}
}

func TestFleetPool(t *testing.T) {
	w := newWorld()
	a, aENI := w.instance("web", types.InstanceStateNameRunning)
	b, _ := w.instance("web", types.InstanceStateNameRunning)
	w.eip(1, aENI, a, map[string]string{"eip-pool": "web"})
	w.eip(2, "", "", map[string]string{"eip-pool": "web"})
	w.eip(3, "", "", map[string]string{"eip-pool": "we?"}) // another pool, which the filter "we?" would match
	w.eip(4, "", "", map[string]string{"eip-pool": "api"})
	f, err := (&Observer{EC2: w.f}).Fleet(t.Context(), map[string]*config.Role{
		"web":   {Pool: &config.Pool{Tags: map[string]string{"eip-pool": "web"}}},
		"web2":  {Pool: &config.Pool{Tags: map[string]string{"eip-pool": "web"}}}, // the same pool: read once
		"wild":  {Pool: &config.Pool{Tags: map[string]string{"eip-pool": "we?"}}},
		"empty": {Pool: &config.Pool{Tags: map[string]string{"eip-pool": "none"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range f.Roles["web"].Addresses {
		got = append(got, x.AllocationID+" "+x.Holder.Instance)
	}
	if want := []string{"eipalloc-0001 " + a, "eipalloc-0002 "}; !reflect.DeepEqual(got, want) {
		t.Errorf("web's pool = %q, want %q", got, want)
	}
	if n := len(f.Roles["web2"].Addresses); n != 2 {
		t.Errorf("web2's pool has %d EIPs, want 2", n)
	}
	if x := f.Roles["wild"].Addresses; len(x) != 1 || x[0].AllocationID != "eipalloc-0003" {
		t.Errorf("wild's pool = %+v, want eipalloc-0003 alone (tags are literal)", x)
	}
	if err := f.Roles["empty"].Err; !errors.Is(err, ErrNotFound) {
		t.Errorf("empty pool: Err = %v, want ErrNotFound", err)
	}
	if c := f.Roles["web"].Candidates; len(c) != 2 || c[1].Instance != b {
		t.Errorf("web's candidates = %+v", c)
	}
	if n := w.f.calls["DescribeAddresses"]; n != 3 {
		t.Errorf("%d DescribeAddresses, want 3 (one per pool)", n)
	}
}

// The probes of holders and candidates run through the injected dialer,
// at most Probes at once, each address once; a stopped instance is not
// probed.
func TestFleetProbes(t *testing.T) {
	w := newWorld()
	roles := map[string]*config.Role{}
	hc, err := config.ParseHealthCheck("tcp:5432")
	if err != nil {
		t.Fatal(err)
	}
	var deadIP, stoppedIP string
	for i := range 20 {
		name := fmt.Sprintf("r%d", i)
		h, eni := w.instance(name, types.InstanceStateNameRunning)
		_, _ = w.instance(name, types.InstanceStateNameRunning)
		s, _ := w.instance(name, types.InstanceStateNameStopped)
		alloc, _ := w.eip(i, eni, h, nil)
		roles[name] = &config.Role{AllocationID: alloc, HealthCheck: hc}
		if i == 3 {
			deadIP = ip(w, h)
		}
		stoppedIP = ip(w, s)
	}
	var (
		mu           sync.Mutex
		dialed       = map[string]int{}
		now, maxSeen atomic.Int32
	)
	o := &Observer{EC2: w.f, Probes: 4, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c := now.Add(1)
		defer now.Add(-1)
		for {
			m := maxSeen.Load()
			if c <= m || maxSeen.CompareAndSwap(m, c) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		dialed[addr]++
		mu.Unlock()
		if addr == deadIP+":5432" {
			return nil, errors.New("connection refused")
		}
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}}
	f, err := o.Fleet(t.Context(), roles)
	if err != nil {
		t.Fatal(err)
	}
	if len(dialed) != 40 {
		t.Errorf("%d addresses probed, want 40 (20 holders, 20 running standbys)", len(dialed))
	}
	for addr, n := range dialed {
		if n != 1 {
			t.Errorf("%s probed %d times, want once", addr, n)
		}
	}
	if dialed[stoppedIP+":5432"] != 0 {
		t.Errorf("the stopped standby was probed")
	}
	if m := maxSeen.Load(); m > 4 || m < 2 {
		t.Errorf("at most %d probes at once, want 2 to 4", m)
	}
	r3 := f.Roles["r3"].Addresses[0].Holder
	if r3.Probe == nil || r3.Probe.OK || !strings.Contains(r3.Probe.Result, "connection refused") {
		t.Errorf("r3's holder probe = %+v, want the refusal", r3.Probe)
	}
	if v := decide.Judge(r3); !v.Down {
		t.Errorf("r3's holder judged %+v, want down", v)
	}
	for name, r := range f.Roles {
		for _, c := range r.Candidates {
			if (c.State == "running") != (c.Probe != nil) {
				t.Errorf("%s: candidate %s (%s) probe %+v", name, c.Instance, c.State, c.Probe)
			}
		}
	}
}

func ip(w *world, id string) string {
	for _, i := range w.f.instances {
		if *i.InstanceId == id {
			return *i.PrivateIpAddress
		}
	}
	return ""
}

// A status read that does not know a named instance yet falls back to
// every instance's; a read that fails for good fails the observation.
func TestFleetStatusFallbackAndFailure(t *testing.T) {
	w := newWorld()
	h, eni := w.instance("db", types.InstanceStateNameRunning)
	alloc, _ := w.eip(1, eni, h, nil)
	w.f.hideFrom[h] = true
	f, err := (&Observer{EC2: w.f}).Fleet(t.Context(), map[string]*config.Role{"db": fixed(alloc)})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Roles["db"].Addresses[0].Holder.InstanceStatus; got != "ok" || w.f.calls["DescribeInstanceStatus"] != 2 {
		t.Errorf("status %q after %d reads, want ok after 2", got, w.f.calls["DescribeInstanceStatus"])
	}

	w.f.fail = errors.New("RequestLimitExceeded")
	var asked []string
	o := &Observer{EC2: w.f, Retry: func(ctx context.Context, op string, fn func(context.Context) error) error {
		asked = append(asked, op)
		return fn(ctx)
	}}
	if _, err := o.Fleet(t.Context(), map[string]*config.Role{"db": fixed(alloc)}); err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Errorf("Fleet error = %v, want the failure", err)
	}
	if len(asked) != 1 || asked[0] != "ec2:DescribeAddresses" {
		t.Errorf("retried %q, want ec2:DescribeAddresses", asked)
	}
}

func TestRoleOf(t *testing.T) {
	w := newWorld()
	a, _ := w.instance("db", types.InstanceStateNameRunning)
	b, _ := w.instance("", types.InstanceStateNameRunning)
	o := &Observer{EC2: w.f}
	for id, want := range map[string]string{a: "db", b: "", "i-gone": ""} {
		got, err := o.RoleOf(t.Context(), id)
		if err != nil || got != want {
			t.Errorf("RoleOf(%s) = %q, %v, want %q", id, got, err, want)
		}
	}
}
