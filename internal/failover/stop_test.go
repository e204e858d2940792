//go:build unix

package failover_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
)

// stopOnAssociate is EC2 that stops the caller (cancels its context, as
// SIGTERM does) as soon as an association is made.
type stopOnAssociate struct {
	claim.EC2API
	stop context.CancelFunc
}

func (s stopOnAssociate) AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, opts ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	out, err := s.EC2API.AssociateAddress(ctx, in, opts...)
	if err == nil {
		s.stop()
	}
	return out, err
}

// patient is a publisher that takes a while, and fails if its context
// ends meanwhile.
type patient struct{ recorder }

func (p *patient) Publish(ctx context.Context, f placement.Placement) (publish.Result, error) {
	select {
	case <-ctx.Done():
		return publish.Result{}, ctx.Err()
	case <-time.After(300 * time.Millisecond):
	}
	return p.recorder.Publish(ctx, f)
}

// TestStepStoppedAfterMove: a stop (SIGTERM) that comes once the EIP has
// moved does not cancel the new holder's publication nor its on_holder
// hook: both finish, bounded by their own timeouts (issue 17 item 9: the
// EIP served a holder whose service was never promoted).
func TestStepStoppedAfterMove(t *testing.T) {
	w, step, inst, eip := setup(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	step.Engine.EC2 = stopOnAssociate{EC2API: step.Engine.EC2, stop: stop}
	promoted := filepath.Join(t.TempDir(), "promoted")
	hooks := &failover.Hooks{Role: "db", Log: slog.New(slog.DiscardHandler),
		OnHolder: []string{"/bin/sh", "-c", "sleep 0.3; echo $EIPCLAIM_EPOCH > " + promoted}}
	pub := &patient{}
	o, err := step.Run(ctx, failover.Request{Role: "db", Spec: &config.Role{AllocationID: eip.AllocationID}, Publishers: []publish.Publisher{pub}, Hooks: hooks})
	if ctx.Err() == nil {
		t.Fatal("the caller was never stopped: the test proves nothing")
	}
	if err != nil || o == nil || o.Action != "claimed" {
		t.Fatalf("step: %+v, %v; want claimed, published", o, err)
	}
	if pub.facts.Load() == nil {
		t.Error("the publication was cancelled by the stop")
	}
	if o.Hook == nil || o.Hook.Result != failover.HookOK {
		t.Errorf("on_holder: %+v, want ok", o.Hook)
	}
	if b, err := os.ReadFile(promoted); err != nil || string(b) != "1\n" {
		t.Errorf("the promote did not run to its end: %q, %v", b, err)
	}
	if a := w.Address(eip.AllocationID); a.NetworkInterfaceId == nil || *a.NetworkInterfaceId != inst.ENI {
		t.Errorf("the EIP is not on %s", inst.ENI)
	}
}
