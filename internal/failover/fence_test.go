package failover_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestStepFence: with fence: stop, the step takes the EIP from a running
// holder whose probe is refused after stopping it: the outcome says
// fenced, the on_holder hook gets EIPCLAIM_FENCED, the new holder is
// published. Without fence: stop, the same step leaves the holder running.
func TestStepFence(t *testing.T) {
	for _, fence := range []config.Fence{config.FenceStop, ""} {
		t.Run("fence "+string(fence), func(t *testing.T) {
			moto := testenv.SharedMoto(t)
			w := testenv.NewTestWorld(t, moto.Config())
			insts := w.NewInstances(2)
			self, holder := insts[0], insts[1]
			admin := ec2.NewFromConfig(moto.Config())
			if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ID, holder.ID}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
				t.Fatal(err)
			}
			eip := w.NewEIP(nil)
			w.Associate(eip.AllocationID, holder.ID)
			step := &failover.Step{
				Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: self.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler),
					Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("connection refused") }},
				Region: "us-east-1",
			}
			env := filepath.Join(t.TempDir(), "env")
			hooks := &failover.Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "env | grep ^EIPCLAIM_ > " + env}}
			hc, err := config.ParseHealthCheck("tcp:5432")
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			spec := &config.Role{AllocationID: eip.AllocationID, HealthCheck: hc, Fence: fence}
			began := time.Now()
			o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: spec, Publishers: []publish.Publisher{rec}, Hooks: hooks})
			if err != nil {
				t.Fatal(err)
			}
			state := func() types.InstanceStateName {
				out, err := admin.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{holder.ID}})
				if err != nil {
					t.Fatal(err)
				}
				return out.Reservations[0].Instances[0].State.Name
			}
			b, err := os.ReadFile(env)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != "taken over" || o.PreviousHolder != holder.ID || aws.ToString(w.Address(eip.AllocationID).NetworkInterfaceId) != self.ENI || rec.facts.Load() == nil {
				t.Errorf("outcome %+v: want taken over from %s, the EIP on %s, published", o, holder.ID, self.ENI)
			}
			if fence == "" {
				if o.Fence != nil || state() != types.InstanceStateNameRunning || !strings.Contains(string(b), "EIPCLAIM_FENCED=\n") {
					t.Errorf("fence off: fence %+v, holder %s, hook env:\n%s\nwant no fence, the holder running, EIPCLAIM_FENCED empty", o.Fence, state(), b)
				}
				return
			}
			if o.Fence == nil || o.Fence.Instance != holder.ID || o.Fence.Took <= 0 || o.Fence.Took > time.Since(began) || !strings.HasPrefix(o.Fence.String(), "fenced "+holder.ID+" (stopped in ") {
				t.Errorf("outcome's fence %+v (%q), want %s fenced", o.Fence, o.Fence.String(), holder.ID)
			}
			if st := state(); st != types.InstanceStateNameStopped && st != types.InstanceStateNameStopping {
				t.Errorf("the fenced holder is %s", st)
			}
			if !strings.Contains(string(b), "EIPCLAIM_FENCED="+holder.ID+"\n") {
				t.Errorf("on_holder's env lacks EIPCLAIM_FENCED=%s:\n%s", holder.ID, b)
			}
		})
	}
}
