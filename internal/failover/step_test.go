package failover_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// recorder is a publisher that records what it was asked to publish, and
// fails when told to.
type recorder struct {
	facts atomic.Pointer[placement.Placement]
	fail  error
}

func (r *recorder) Kind() string { return "recorder" }
func (r *recorder) Name() string { return "db.example.internal" }
func (r *recorder) Publish(_ context.Context, f placement.Placement) (publish.Result, error) {
	r.facts.Store(&f)
	return publish.Result{Value: "CNAME " + f.PublicDNSName, Changed: true}, r.fail
}
func (r *recorder) Check(context.Context) (string, error)   { return "ok", nil }
func (r *recorder) Current(context.Context) (string, error) { return "", nil }

func setup(t *testing.T) (*testenv.TestWorld, *failover.Step, testenv.Instance, testenv.EIP) {
	t.Helper()
	moto := testenv.SharedMoto(t)
	w := testenv.NewTestWorld(t, moto.Config())
	inst := w.NewInstance()
	eip := w.NewEIP(nil)
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: inst.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1",
	}
	return w, step, inst, eip
}

// TestStep: the step claims, tags (holder, epoch) and publishes the facts
// of the claim, the CNAME target by the partition's rule; a rerun keeps the
// epoch.
func TestStep(t *testing.T) {
	w, step, inst, eip := setup(t)
	rec := &recorder{}
	req := failover.Request{Role: "db", Spec: &config.Role{AllocationID: eip.AllocationID}, Publishers: []publish.Publisher{rec}}
	o, err := step.Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := "ec2-" + strings.ReplaceAll(eip.PublicIP, ".", "-") + ".compute-1.amazonaws.com"
	if o.Action != "claimed" || o.Epoch != 1 || o.PublicDNSName != want || len(o.Published) != 1 || !o.Published[0].Changed || o.Published[0].Publisher != "recorder" {
		t.Errorf("outcome %+v, want claimed, epoch 1, %s, one publication", o, want)
	}
	f := rec.facts.Load()
	if f == nil || f.PublicIP.String() != eip.PublicIP || f.PrivateIP.String() != inst.PrivateIP || f.InstanceID != inst.ID || f.Epoch != 1 || f.PublicDNSName != want {
		t.Errorf("published facts %+v, want the EIP %s on %s (%s), epoch 1", f, eip.PublicIP, inst.ID, inst.PrivateIP)
	}
	a := w.Address(eip.AllocationID)
	tags := map[string]string{}
	for _, tg := range a.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if aws.ToString(a.NetworkInterfaceId) != inst.ENI || tags[claim.TagHolder] != inst.ID || tags[claim.TagEpoch] != "1" {
		t.Errorf("EIP on %s with tags %v, want on %s, holder %s, epoch 1", aws.ToString(a.NetworkInterfaceId), tags, inst.ENI, inst.ID)
	}
	o, err = step.Run(t.Context(), req)
	if err != nil || o.Action != "already held" || o.Epoch != 1 {
		t.Errorf("rerun: %+v, %v; want already held, epoch 1", o, err)
	}
}

// TestStepDryRun: a dry run decides and says what it would publish,
// changing nothing and asking no publisher.
func TestStepDryRun(t *testing.T) {
	w, step, _, eip := setup(t)
	rec := &recorder{}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: &config.Role{AllocationID: eip.AllocationID}, Publishers: []publish.Publisher{rec}, DryRun: true})
	if err != nil || o.Action != "would be claimed" || !o.DryRun || len(o.Published) != 1 || !strings.HasPrefix(o.Published[0].Value, "CNAME ec2-") {
		t.Fatalf("dry run: %+v, %v", o, err)
	}
	if rec.facts.Load() != nil {
		t.Error("a dry run asked the publisher")
	}
	if a := w.Address(eip.AllocationID); aws.ToString(a.AssociationId) != "" {
		t.Errorf("a dry run associated the EIP: %+v", a)
	}
}

// TestStepPublicationFails: a publisher that fails leaves the claim
// standing: the outcome comes back with exit code 5, the EIP held and
// tagged.
func TestStepPublicationFails(t *testing.T) {
	w, step, inst, eip := setup(t)
	rec := &recorder{fail: errors.New("server said no")}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: &config.Role{AllocationID: eip.AllocationID}, Publishers: []publish.Publisher{rec}})
	if exitcode.Of(err) != exitcode.DNSFailed || !strings.Contains(err.Error(), "the claim stands") {
		t.Fatalf("err = %v (exit %d), want exit 5 saying the claim stands", err, exitcode.Of(err))
	}
	if o == nil || o.Action != "claimed" || len(o.Published) != 1 || o.Published[0].Error == "" {
		t.Fatalf("outcome %+v, want claimed with the failed publication", o)
	}
	if a := w.Address(eip.AllocationID); aws.ToString(a.NetworkInterfaceId) != inst.ENI {
		t.Errorf("the EIP is not held after a failed publication: %+v", a)
	}
}
