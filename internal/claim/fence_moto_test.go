package claim

// fence: stop against moto's EC2, behind the IAM gate (the shipped
// policy's FenceRoleInstances statement: instances tagged eipclaim:role).

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// tagRole is observe.TagRole (observe imports claim).
const tagRole = "eipclaim:role"

// fenceWorld is a motoWorld whose two instances are the role's (tagged
// eipclaim:role=db), the other holding the role's EIP.
func fenceWorld(t *testing.T) (*motoWorld, string) {
	t.Helper()
	w := newMotoWorld(t)
	if _, err := w.admin.CreateTags(context.Background(), &ec2.CreateTagsInput{
		Resources: []string{w.self, w.other}, Tags: []types.Tag{{Key: aws.String(tagRole), Value: aws.String("db")}},
	}); err != nil {
		t.Fatal(err)
	}
	alloc := w.allocate(nil)
	w.associate(alloc, w.other)
	return w, alloc
}

func (w *motoWorld) state(id string) types.InstanceStateName {
	w.t.Helper()
	out, err := w.admin.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Reservations[0].Instances[0].State.Name
}

func fenceSpec(alloc string, timeout time.Duration) *config.Role {
	d, err := config.ParseDuration(timeout.String())
	if err != nil {
		panic(err)
	}
	return &config.Role{AllocationID: alloc, HealthCheck: healthCheck("tcp:5432"), Fence: config.FenceStop, FenceTimeout: d}
}

// TestMotoFence: the holder runs, its probe is refused: the claim stops
// it (StopInstances with Force, allowed by the shipped policy because it
// is tagged with the role), then takes its EIP, and says so.
func TestMotoFence(t *testing.T) {
	w, alloc := fenceWorld(t)
	e, logs := w.engine() // its probe is refused
	res, err := e.claimTagged(t.Context(), Request{Role: "db", Spec: fenceSpec(alloc, 30*time.Second)})
	if err != nil {
		t.Fatalf("Claim: %v (exit %d)\nlogs:\n%s", err, exitcode.Of(err), logs)
	}
	if got := w.ec2.forced.Load(); got != 1 || w.ec2.stops.Load() != 1 {
		t.Errorf("StopInstances: %d calls, %d with Force; want 1 forced", w.ec2.stops.Load(), got)
	}
	if got := w.state(w.other); got != types.InstanceStateNameStopped && got != types.InstanceStateNameStopping {
		t.Errorf("the old holder is %s, want stopping or stopped", got)
	}
	if got, want := aws.ToString(w.address(alloc).NetworkInterfaceId), w.primaryENI(w.self); got != want {
		t.Errorf("the EIP is on %q, want %s\nlogs:\n%s", got, want, logs)
	}
	if res.Action != "taken over" || res.Fence == nil || res.Fence.Instance != w.other || !strings.HasPrefix(res.Fence.String(), "fenced "+w.other+" (stopped in ") {
		t.Errorf("result %+v, fence %q: want taken over, fenced %s", res, res.Fence.String(), w.other)
	}
	if !strings.Contains(logs.String(), `msg="fenced the holder"`) {
		t.Errorf("no log line says the holder was fenced:\n%s", logs)
	}
}

// TestMotoFenceHealthy: a holder whose probe answers is never stopped:
// not on a refusal (exit 4), not on --force.
func TestMotoFenceHealthy(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "force"}[force], func(t *testing.T) {
			w, alloc := fenceWorld(t)
			e, logs := w.engine()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			e.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String()) // the holder's service answers
			}
			_, err = e.claimTagged(t.Context(), Request{Role: "db", Spec: fenceSpec(alloc, 30*time.Second), Force: force})
			switch {
			case !force && exitcode.Of(err) != exitcode.Refused:
				t.Errorf("Claim: %v (exit %d), want refused (exit 4)", err, exitcode.Of(err))
			case force && err != nil:
				t.Errorf("Claim --force: %v", err)
			}
			if got := w.ec2.stops.Load(); got != 0 {
				t.Errorf("%d StopInstances of a healthy holder\nlogs:\n%s", got, logs)
			}
			if got := w.state(w.other); got != types.InstanceStateNameRunning {
				t.Errorf("the healthy holder is %s, want running", got)
			}
		})
	}
}

// TestMotoFenceFails: a fence that cannot be made in time (every
// StopInstances throttled until fence_timeout), or that EC2 refuses (the
// holder's stop protection), moves nothing and says why.
func TestMotoFenceFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(w *motoWorld)
		timeout time.Duration
		wantErr string
	}{
		{"timeout", func(w *motoWorld) {
			w.ec2.stopFault = func() error { return apiErr("RequestLimitExceeded") }
		}, time.Second, "within fence_timeout 1s"},
		{"stop protection", func(w *motoWorld) {
			if _, err := w.admin.ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{
				InstanceId: aws.String(w.other), DisableApiStop: &types.AttributeBooleanValue{Value: aws.Bool(true)},
			}); err != nil {
				w.t.Fatal(err)
			}
		}, 30 * time.Second, "OperationNotPermitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, alloc := fenceWorld(t)
			tc.setup(w)
			e, logs := w.engine()
			began := time.Now()
			_, err := e.claimTagged(t.Context(), Request{Role: "db", Spec: fenceSpec(alloc, tc.timeout)})
			if err == nil || !errors.Is(err, ErrFenceFailed) || exitcode.Of(err) != exitcode.Failed || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "nothing moved") {
				t.Fatalf("Claim: %v (exit %d), want a fence failure (exit 1) saying %q and that nothing moved\nlogs:\n%s", err, exitcode.Of(err), tc.wantErr, logs)
			}
			if took := time.Since(began); took > tc.timeout+10*time.Second {
				t.Errorf("the failed fence took %s, bound %s", took, tc.timeout)
			}
			if got := aws.ToString(w.address(alloc).InstanceId); got != w.other {
				t.Errorf("the EIP is on %q after a failed fence, want still %s", got, w.other)
			}
			if got := w.state(w.other); got != types.InstanceStateNameRunning {
				t.Errorf("the holder is %s, want running", got)
			}
			if n := strings.Count(logs.String(), "fence failed"); n != 1 {
				t.Errorf("%d log lines say the fence failed, want 1:\n%s", n, logs)
			}
		})
	}
}

// TestMotoFenceOff: without fence: stop, the same takeover as ever: no
// StopInstances, the holder left running.
func TestMotoFenceOff(t *testing.T) {
	w, alloc := fenceWorld(t)
	e, logs := w.engine()
	res, err := e.claimTagged(t.Context(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc, HealthCheck: healthCheck("tcp:5432")}})
	if err != nil {
		t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
	}
	if res.Action != "taken over" || res.Fence != nil || w.ec2.stops.Load() != 0 || w.state(w.other) != types.InstanceStateNameRunning {
		t.Errorf("result %+v, %d stops, holder %s: want taken over, no fence, holder running", res, w.ec2.stops.Load(), w.state(w.other))
	}
}

// TestMotoFenceUntaggedHolder: the shipped policy lets a fence stop only
// an instance tagged with a role: an untagged holder's stop is denied by
// the gate (exit 3), and nothing moves.
func TestMotoFenceUntaggedHolder(t *testing.T) {
	w := newMotoWorld(t)
	alloc := w.allocate(nil)
	w.associate(alloc, w.other)
	w.moto.ExpectDenied(t, "ec2:StopInstances")
	e, logs := w.engine()
	_, err := e.claimTagged(t.Context(), Request{Role: "db", Spec: fenceSpec(alloc, 30*time.Second)})
	if exitcode.Of(err) != exitcode.Denied || !errors.Is(err, ErrFenceFailed) {
		t.Fatalf("Claim: %v (exit %d), want a fence failure, not permitted (exit 3)\nlogs:\n%s", err, exitcode.Of(err), logs)
	}
	if got := aws.ToString(w.address(alloc).InstanceId); got != w.other {
		t.Errorf("the EIP is on %q, want still %s", got, w.other)
	}
}

// TestMotoCheckFence: eipclaim check asks StopInstances with DryRun for a
// role that fences (moto answers DryRunOperation), and not for one that
// does not.
func TestMotoCheckFence(t *testing.T) {
	w, alloc := fenceWorld(t)
	e, _ := w.engine()
	for _, fence := range []config.Fence{config.FenceStop, ""} {
		spec := fenceSpec(alloc, 30*time.Second)
		if fence == "" {
			spec.Fence, spec.FenceTimeout = "", config.Duration{}
		}
		perms, err := e.Permissions(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		var stop *Permission
		for i := range perms {
			if perms[i].Action == "ec2:StopInstances" {
				stop = &perms[i]
			}
		}
		switch {
		case fence == config.FenceStop && (stop == nil || !stop.Allowed):
			t.Errorf("fence: stop: StopInstances permission %+v, want allowed", stop)
		case fence == "" && stop != nil:
			t.Errorf("no fence: StopInstances asked: %+v", stop)
		}
	}
	if got := w.state(w.self); got != types.InstanceStateNameRunning {
		t.Errorf("this instance is %s after the check's DryRun, want running", got)
	}
}
