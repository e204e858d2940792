//go:build unix

package failover_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestStepHookKnowsThePreviousHolder: an EIP moved to this instance by
// something else (an operator's AssociateAddress, which leaves the holder
// tag naming the old holder; the controller, which tags the new one) gives
// the on_holder hook the previous holder all the same: from the tag, or
// from what the driver saw before (Request.PreviousHolder).
func TestStepHookKnowsThePreviousHolder(t *testing.T) {
	moto := testenv.SharedMoto(t)
	w := testenv.NewTestWorld(t, moto.Config())
	a, b := w.NewInstance(), w.NewInstance()
	eip := w.NewEIP(nil)
	stepOf := func(inst testenv.Instance) *failover.Step {
		return &failover.Step{
			Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: inst.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
			Region: "us-east-1",
		}
	}
	spec := &config.Role{AllocationID: eip.AllocationID}
	out := filepath.Join(t.TempDir(), "env")
	hooks := &failover.Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "env | grep ^EIPCLAIM_PREVIOUS_HOLDER= > " + out}}
	previous := func() string {
		t.Helper()
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.TrimPrefix(string(b), "EIPCLAIM_PREVIOUS_HOLDER="))
	}
	// A claims (tagging itself holder); an operator moves the EIP to B.
	if _, err := stepOf(a).Run(t.Context(), failover.Request{Role: "db", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	w.Associate(eip.AllocationID, b.ID)
	o, err := stepOf(b).Run(t.Context(), failover.Request{Role: "db", Spec: spec, Hooks: hooks, Reason: "the EIP was moved to this instance"})
	if err != nil || o.Action != "already held" {
		t.Fatalf("B after the operator's move: %+v %v", o, err)
	}
	if got := previous(); got != a.ID {
		t.Errorf("operator's move: EIPCLAIM_PREVIOUS_HOLDER=%q, want %s (the holder tag's)", got, a.ID)
	}
	// The controller moves it back to A, tagging A: A's driver saw B.
	if _, err := ec2.NewFromConfig(moto.Config()).AssociateAddress(t.Context(), &ec2.AssociateAddressInput{
		AllocationId: aws.String(eip.AllocationID), InstanceId: aws.String(a.ID), AllowReassociation: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := stepOf(a).Run(t.Context(), failover.Request{Role: "db", Spec: spec}); err != nil { // the controller's step tags A
		t.Fatal(err)
	}
	if _, err := stepOf(a).Run(t.Context(), failover.Request{Role: "db", Spec: spec, Hooks: hooks, PreviousHolder: b.ID, Reason: "the EIP was moved to this instance"}); err != nil {
		t.Fatal(err)
	}
	if got := previous(); got != b.ID {
		t.Errorf("controller's move: EIPCLAIM_PREVIOUS_HOLDER=%q, want %s (what the driver saw)", got, b.ID)
	}
}
