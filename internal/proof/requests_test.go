package proof_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The requests the specification needs for a claim with a Route 53 CNAME.
var (
	freshClaim = map[string]int{
		"DescribeInstances":                      1, // this instance's interfaces
		"DescribeAddresses":                      2, // the EIP's state, the read-back
		"AssociateAddress":                       1,
		"CreateTags":                             1, // holder, claimed-at, epoch
		"GET /2013-04-01/hostedzone/{id}/rrset":  2, // the record, the read-back
		"POST /2013-04-01/hostedzone/{id}/rrset": 1, // the UPSERT
	}
	rerunClaim = map[string]int{
		"DescribeInstances":                     1,
		"DescribeAddresses":                     1,
		"GET /2013-04-01/hostedzone/{id}/rrset": 1,
	}
)

// TestRequestsPerClaim: a fresh claim published as a Route 53 CNAME makes
// exactly the eight AWS requests the specification needs (no zone lookup,
// no interface lookup for the CNAME's target), and a rerun that finds
// everything in place only its three reads. claim --json says what the
// failover step did.
func TestRequestsPerClaim(t *testing.T) {
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	alloc := world.NewEIP(nil).AllocationID
	zoneID := world.NewZone("example.internal", false)
	inst := world.NewInstance()
	ud := fixedRole(alloc) + "    dns:\n      route53: {zone_id: " + zoneID + ", name: db.example.internal, ttl: 60}\n"
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second, args: []string{"--json"}}
	for _, run := range []struct {
		name   string
		want   map[string]int
		action string
		epoch  int
	}{
		{"fresh", freshClaim, "claimed", 1},
		{"rerun", rerunClaim, "already held", 1},
	} {
		c := &claimer{inst: inst, alloc: alloc, userData: ud}
		f.run([]*claimer{c}, 1)
		if c.code != 0 {
			t.Fatalf("%s claim: exit %d\n%s", run.name, c.code, c)
		}
		got := map[string]int{}
		for action, ac := range c.ec2.Counts().Actions {
			got[action] = ac.Requests
		}
		if !maps.Equal(got, run.want) {
			t.Errorf("%s claim: requests %v, want exactly %v", run.name, got, run.want)
		}
		total := 0
		for _, n := range got {
			total += n
		}
		t.Logf("%s claim: %d AWS requests: %v", run.name, total, slices.Sorted(maps.Keys(got)))
		var o struct {
			Action    string `json:"action"`
			Epoch     int    `json:"epoch"`
			Published []struct {
				Publisher string `json:"publisher"`
				Changed   bool   `json:"changed"`
			} `json:"published"`
		}
		if err := json.Unmarshal([]byte(c.stdout), &o); err != nil {
			t.Fatalf("%s claim: stdout is not the JSON outcome: %v\n%s", run.name, err, c.stdout)
		}
		if o.Action != run.action || o.Epoch != run.epoch || len(o.Published) != 1 || o.Published[0].Publisher != "route53" || o.Published[0].Changed != (run.name == "fresh") {
			t.Errorf("%s claim: outcome %+v, want %s, epoch %d, route53 changed only when fresh", run.name, o, run.action, run.epoch)
		}
	}
}
