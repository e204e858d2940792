package proof_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

const poolRole = "role: web\nroles:\n  web:\n    pool: {tags: {eip-pool: web}}\n"

// TestPoolRace starts 50 claimers at once, each its own process on its own
// instance, on a pool of 10 EIPs: 10 must win 10 distinct EIPs, nobody may
// hold two, and the other 40 must be refused (exit 4, "exhausted"), all
// within their deadline. An untagged EIP must stay free. make test runs 5
// rounds (about 5 s each here), EIPCLAIM_PROOF=1 20, moto reset between
// rounds.
func TestPoolRace(t *testing.T) {
	const claimers, pool = 50, 10
	rounds := 5
	if proof() {
		rounds = 20
	}
	bin := testenv.Eipclaim(t)
	for round := 1; round <= rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			moto := testenv.SharedMoto(t) // reset
			world := testenv.NewTestWorld(t, moto.Config())
			insts := world.NewInstances(claimers)
			allocs := allocate(world, pool, map[string]string{"eip-pool": "web"})
			decoy := world.NewEIP(nil).AllocationID
			cs := make([]*claimer, claimers)
			byENI := map[string]*claimer{}
			for i := range cs {
				cs[i] = &claimer{inst: insts[i], userData: poolRole}
				byENI[insts[i].ENI] = cs[i]
			}
			f := &fleet{t: t, bin: bin, moto: moto, timeout: 90 * time.Second}
			f.run(cs, claimers)

			won, refused, associates := 0, 0, 0
			var worst time.Duration
			for _, c := range cs {
				worst = max(worst, c.took)
				associates += c.ec2.Counts().Requests("AssociateAddress")
				if c.took >= f.timeout {
					t.Errorf("took %s, beyond its --timeout %s: %s", c.took, f.timeout, c)
				}
				switch c.code {
				case 0:
					won++
				case 4:
					refused++
					if !strings.Contains(c.stderr, "exhausted") {
						t.Errorf("refused without saying the pool is exhausted: %s", c)
					}
				default:
					t.Errorf("exit %d, want 0 or 4: %s\n%s", c.code, c, describeOps(c))
				}
			}
			addrs := world.Addresses()
			holders := map[string]string{} // instance -> allocation id
			for _, alloc := range allocs {
				eni := aws.ToString(addrs[alloc].NetworkInterfaceId)
				c := byENI[eni]
				if c == nil {
					t.Errorf("pool EIP %s is on %q, not on a claimer's primary interface", alloc, eni)
					continue
				}
				if prev, ok := holders[c.inst.ID]; ok {
					t.Errorf("%s holds two EIPs: %s and %s", c.inst.ID, prev, alloc)
				}
				holders[c.inst.ID] = alloc
				if c.code != 0 {
					t.Errorf("%s holds %s but exited %d", c.inst.ID, alloc, c.code)
				}
			}
			for _, c := range cs {
				if _, ok := holders[c.inst.ID]; c.code == 0 && !ok {
					t.Errorf("%s exited 0 but holds no EIP of the pool: %s\n%s", c.inst.ID, c, describeOps(c))
				}
			}
			if eni := aws.ToString(addrs[decoy].NetworkInterfaceId); eni != "" {
				t.Errorf("the untagged EIP %s was claimed by %s", decoy, eni)
			}
			if won != pool || refused != claimers-pool || len(holders) != pool {
				t.Errorf("%d won, %d refused, %d distinct holders; want %d, %d, %d", won, refused, len(holders), pool, claimers-pool, pool)
			}
			t.Logf("PROOF pool round %d: %d claimers on %d EIPs in %s: %d won, %d refused (exhausted), %d distinct holders, %d AssociateAddress calls, slowest claimer %s",
				round, claimers, pool, f.claiming.Round(time.Millisecond), won, refused, len(holders), associates, worst.Round(time.Millisecond))
		})
	}
}

// TestFixedEIPRace starts two claimers of one EIP at once, with the default
// takeover policy (if-holder-down): exactly one must hold it, and the other
// must exit 4 naming the winner. make test runs 10 races, EIPCLAIM_PROOF=1 50.
func TestFixedEIPRace(t *testing.T) {
	races := 10
	if proof() {
		races = 50
	}
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second}
	lostRace := 0
	for i := range races {
		alloc := world.NewEIP(nil).AllocationID
		insts := world.NewInstances(2)
		cs := []*claimer{
			{inst: insts[0], alloc: alloc, userData: fixedRole(alloc)},
			{inst: insts[1], alloc: alloc, userData: fixedRole(alloc)},
		}
		f.run(cs, 2)
		if cs[1].code == 0 {
			cs[0], cs[1] = cs[1], cs[0]
		}
		winner, loser := cs[0], cs[1]
		if winner.code != 0 || loser.code != 4 {
			t.Errorf("race %d: exits %d and %d, want 0 and 4:\n%s\n%s", i, winner.code, loser.code, winner, loser)
			continue
		}
		if got := aws.ToString(world.Addresses()[alloc].NetworkInterfaceId); got != winner.inst.ENI {
			t.Errorf("race %d: the EIP is on %q, want the winner's %s", i, got, winner.inst.ENI)
		}
		if !strings.Contains(loser.stderr, "held by "+winner.inst.ID) {
			t.Errorf("race %d: the loser does not name the winner %s:\n%s", i, winner.inst.ID, loser)
		}
		if strings.Contains(loser.stderr, "another instance associated the EIP first") {
			lostRace++ // it saw the EIP free, and AllowReassociation=false stopped it
		}
	}
	t.Logf("PROOF fixed-EIP race: %d races, one winner each; the loser had seen the EIP free, sent AssociateAddress and lost (AllowReassociation=false) in %d of them (every loser sends one: its refusal is confirmed by one)", races, lostRace)
}
