package failover

import (
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/claim"
)

// TestPlacementRefusesWhatIsNotAnAddress: an address EC2 reported that
// does not parse is an error naming it (it was once dropped, and the
// publishers got an empty address).
func TestPlacementRefusesWhatIsNotAnAddress(t *testing.T) {
	s := &Step{Region: "us-east-1"}
	p, err := s.placement(&claim.Result{Role: "db", AllocationID: "eipalloc-1", ENI: "eni-1", PublicIP: "203.0.113.10", PrivateIP: "10.0.1.x", Epoch: 3})
	if err == nil || !strings.Contains(err.Error(), `private IP of eni-1 EC2 reported, "10.0.1.x"`) {
		t.Fatalf("placement error = %v, want one naming the private IP of eni-1", err)
	}
	if p.PublicDNSName != "ec2-203-0-113-10.compute-1.amazonaws.com" || p.Epoch != 3 || p.Role != "db" {
		t.Errorf("placement = %+v, want the parts that parsed", p)
	}
	o := outcome(&claim.Result{Action: "claimed"}, p)
	if o.PublicIP != "203.0.113.10" || o.PublicDNSName != p.PublicDNSName || o.Action != "claimed" {
		t.Errorf("outcome = %+v, want it built from the placement", o)
	}
}
