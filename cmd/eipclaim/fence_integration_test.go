package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// tagRole tags instances with the role, as the shipped policy's
// FenceRoleInstances statement wants of a fenced instance.
func (w *world) tagRole(role string, ids ...string) {
	w.t.Helper()
	if _, err := w.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String(role)}}}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) state(id string) types.InstanceStateName {
	w.t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Reservations[0].Instances[0].State.Name
}

// TestFenceClaim: `eipclaim claim` with fence: stop takes the EIP from a
// running holder whose health check fails after stopping it, and says so.
func TestFenceClaim(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	master := w.runInstance()
	w.tagRole("db", w.instance, master)
	w.associate(alloc, master)
	w.withUserData(fixedRole(alloc, "    health_check: tcp:5432\n    fence: stop\n    fence_timeout: 30s\n"))
	// The holder's service is down: its probe is refused (moto's 10.x
	// addresses are never dialled).
	saved := testDial
	testDial = func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("connection refused") }
	t.Cleanup(func() { testDial = saved })
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "taken over") || !strings.Contains(out, "; fenced "+master+" (stopped in ") {
		t.Errorf("stdout does not say the holder was fenced: %s", out)
	}
	if got := w.state(master); got != types.InstanceStateNameStopped && got != types.InstanceStateNameStopping {
		t.Errorf("the fenced holder is %s", got)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != w.primaryENI() {
		t.Errorf("the EIP is on %q, want %q", got, w.primaryENI())
	}
}

// TestFenceCheck: `eipclaim check` asks StopInstances with DryRun for a
// role that fences: denied (exit 3) while this instance lacks the role
// tag the shipped policy requires, allowed once it carries it.
func TestFenceCheck(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	w.withUserData(fixedRole(alloc, "    fence: stop\n"))
	w.moto.ExpectDenied(t, "ec2:StopInstances")
	out, errs, code := eipclaim(t, "check", "--timeout", "60s")
	if code != exitcode.Denied || !strings.Contains(out, "DENIED  db         ec2:StopInstances") {
		t.Errorf("check, untagged: exit %d, want 3 with a DENIED line for ec2:StopInstances\nstdout: %s\nstderr: %s", code, out, errs)
	}
	w.tagRole("db", w.instance)
	out, errs, code = eipclaim(t, "check", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "ok      db         ec2:StopInstances") {
		t.Errorf("check, tagged: exit %d, want 0 with an ok line for ec2:StopInstances\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := w.state(w.instance); got != types.InstanceStateNameRunning {
		t.Errorf("check's DryRun left this instance %s", got)
	}
}
