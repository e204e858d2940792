package claim

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestClaimFence: fence: stop stops a holder that is down but running
// (StopInstances with Force) before the move, and only such a holder.
func TestClaimFence(t *testing.T) {
	fencing := func(takeover config.Takeover) config.Role {
		return config.Role{AllocationID: alloc, HealthCheck: healthCheck("tcp:5432"), Takeover: takeover, Fence: config.FenceStop, FenceTimeout: seconds(5)}
	}
	answering := func(f *fakeEC2) { holdBy(f, other) } // with the test's dialer answering
	tests := []struct {
		name      string
		spec      config.Role
		force     bool
		dryRun    bool
		answers   bool // the holder's probe answers
		setup     func(f *fakeEC2)
		wantStops int
		wantCode  int    // when an error is wanted
		wantErr   string // when an error is wanted
		wantFence string // the result's fence in words, "" for none
	}{
		{name: "down, running: fenced, then taken", spec: fencing(""), wantStops: 1, wantFence: "fenced " + other + " (stopped in"},
		{name: "impaired, running: fenced", spec: fencing(""), answers: true, setup: func(f *fakeEC2) {
			f.instances[other].status = types.SummaryStatusImpaired
		}, wantStops: 1, wantFence: "EC2 says stopping"},
		{name: "healthy: refused, not fenced", spec: fencing(""), answers: true, wantCode: exitcode.Refused, wantErr: "which is healthy"},
		{name: "healthy, --force: taken, not fenced", spec: fencing(""), answers: true, force: true},
		{name: "healthy, takeover always: taken, not fenced", spec: fencing(config.TakeoverAlways), answers: true},
		{name: "down, --force: fenced", spec: fencing(""), force: true, wantStops: 1, wantFence: "fenced " + other},
		{name: "down, takeover never: refused, not fenced", spec: fencing(config.TakeoverNever), wantCode: exitcode.Refused, wantErr: "takeover is never"},
		{name: "already stopped: no fence", spec: fencing(""), setup: func(f *fakeEC2) {
			f.instances[other].state = types.InstanceStateNameStopped
		}},
		{name: "fence off: taken as today", spec: config.Role{AllocationID: alloc, HealthCheck: healthCheck("tcp:5432")}},
		{name: "dry run: would fence", spec: fencing(""), dryRun: true, wantFence: "would fence " + other},
		{name: "stop does not take: no move", spec: fencing(""), setup: func(f *fakeEC2) { f.stuck = true },
			wantStops: 1, wantCode: exitcode.Failed, wantErr: "fence failed: stop " + other},
		{name: "stop throttled, then fenced", spec: fencing(""), setup: func(f *fakeEC2) {
			f.fail["StopInstances"] = []error{apiErr("RequestLimitExceeded")}
		}, wantStops: 1, wantFence: "fenced " + other},
		{name: "stop not permitted: exit 3, no move", spec: fencing(""), setup: func(f *fakeEC2) {
			f.fail["StopInstances"] = []error{apiErr("UnauthorizedOperation")}
		}, wantCode: exitcode.Denied, wantErr: "StopInstances not permitted"},
		{name: "stop protection: exit 1, no move", spec: fencing(""), setup: func(f *fakeEC2) {
			f.fail["StopInstances"] = []error{apiErr("OperationNotPermitted")}
		}, wantCode: exitcode.Failed, wantErr: "fence failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			answering(f)
			if tc.setup != nil {
				tc.setup(f)
			}
			e, logs := newEngine(t, f)
			if tc.answers {
				e.Dial = answer
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			spec := tc.spec
			res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &spec, Force: tc.force, DryRun: tc.dryRun})
			if testing.Verbose() {
				t.Logf("err %v\nlogs:\n%s", err, logs)
			}
			if got := f.stops[other]; got != tc.wantStops {
				t.Errorf("StopInstances of the holder: %d, want %d\nlogs:\n%s", got, tc.wantStops, logs)
			}
			for i, forced := range f.forced {
				if !forced {
					t.Errorf("StopInstances call %d without Force", i+1)
				}
			}
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
				if f.associates != 0 || aws.ToString(f.addr(alloc).InstanceId) != other {
					t.Errorf("the EIP moved (%d associations, on %s) although the claim failed", f.associates, aws.ToString(f.addr(alloc).InstanceId))
				}
				if strings.Contains(tc.wantErr, "fence failed") && !errors.Is(err, ErrFenceFailed) {
					t.Errorf("error %v is not ErrFenceFailed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
			}
			if got := res.Fence.String(); tc.wantFence == "" && got != "" || !strings.Contains(got, tc.wantFence) {
				t.Errorf("fence %q, want %q", got, tc.wantFence)
			}
			wantHolder := self
			if tc.dryRun {
				wantHolder = other
			}
			if got := aws.ToString(f.addr(alloc).InstanceId); got != wantHolder {
				t.Errorf("holder %s, want %s", got, wantHolder)
			}
			if tc.wantStops > 0 && f.instances[other].state != types.InstanceStateNameStopping {
				t.Errorf("holder's state %s after the fence, want stopping", f.instances[other].state)
			}
		})
	}
}

// answer is a dialer whose probe answers.
func answer(context.Context, string, string) (conn net.Conn, err error) {
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

func seconds(n int) config.Duration {
	d, err := config.ParseDuration(time.Duration(n * int(time.Second)).String())
	if err != nil {
		panic(err)
	}
	return d
}

func TestFenceJSON(t *testing.T) {
	b, err := json.Marshal(&Fence{Instance: "i-1", State: "stopping", Took: 1234567 * time.Microsecond, Why: "down"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"instance":"i-1","state":"stopping","why":"down","took":"1.235s"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}
