package proof_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The stale proofs (issue 17) run the claim and watch proofs against EC2's
// eventual consistency: every EC2 request of every process goes through a
// proxy of its own, all sharing one faultproxy.Stale, so that after any
// process's mutation (AssociateAddress, DisassociateAddress, CreateTags,
// DeleteTags, StopInstances) every process's DescribeAddresses,
// DescribeInstances, DescribeInstanceStatus and DescribeNetworkInterfaces
// may answer the state from before it, for up to staleLag. Each proof
// asserts that the mode did serve stale answers: without them it proves
// nothing.

// staleLag is the stale-read mode's MaxLag.
const staleLag = 2 * time.Second

func newStale(t *testing.T, seed uint64) *faultproxy.Stale {
	t.Helper()
	st, err := faultproxy.NewStale(faultproxy.StaleOptions{MaxLag: staleLag, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// staleFleet is a fleet whose claimers' EC2 proxies share st.
func staleFleet(t *testing.T, moto *testenv.Moto, st *faultproxy.Stale, timeout time.Duration) *fleet {
	return &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: timeout,
		ec2Opts: func(uint64) faultproxy.Options { return faultproxy.Options{Stale: st} }}
}

// staleServed is the stale answers the claimers' proxies served.
func staleServed(cs ...*claimer) int {
	n := 0
	for _, c := range cs {
		n += c.ec2.Counts().Stale
	}
	return n
}

// epochTag is the EIP's eipclaim:epoch tag, "" when none.
func epochTag(a types.Address) string {
	for _, tg := range a.Tags {
		if aws.ToString(tg.Key) == "eipclaim:epoch" {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// claimOutcome is the part of `claim --json` the stale proofs read.
type claimOutcome struct {
	Action string `json:"action"`
	Epoch  int64  `json:"epoch"`
}

func outcomeOf(t *testing.T, c *claimer) claimOutcome {
	t.Helper()
	var o claimOutcome
	if err := json.Unmarshal([]byte(c.stdout), &o); err != nil {
		t.Fatalf("%s: stdout is not claim's JSON outcome: %v\n%s", c.inst.ID, err, c)
	}
	return o
}

// TestFixedEIPRaceUnderStale is TestFixedEIPRace under stale reads: two
// claimers of one free EIP at once, each of whose reads may show the
// state before the other's AssociateAddress. Exactly one holds it, with
// epoch 1; the other exits 4 naming the winner (not 1: a lost
// AllowReassociation=false race whose read-back still shows the EIP free
// is a lost race, not a failure). make test runs 5 races,
// EIPCLAIM_PROOF=1 30.
func TestFixedEIPRaceUnderStale(t *testing.T) {
	races := 5
	if proof() {
		races = 30
	}
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	st := newStale(t, 17)
	f := staleFleet(t, moto, st, 60*time.Second)
	f.args = []string{"--json"}
	var all []*claimer
	double, refusedFree, dupEpochs := 0, 0, 0
	for i := range races {
		alloc := world.NewEIP(nil).AllocationID
		insts := world.NewInstances(2)
		cs := []*claimer{
			{inst: insts[0], alloc: alloc, userData: fixedRole(alloc)},
			{inst: insts[1], alloc: alloc, userData: fixedRole(alloc)},
		}
		f.run(cs, 2)
		all = append(all, cs...)
		if cs[1].code == 0 {
			cs[0], cs[1] = cs[1], cs[0]
		}
		winner, loser := cs[0], cs[1]
		if loser.code == 0 {
			double++
		}
		if winner.code != 0 || loser.code != 4 {
			t.Errorf("race %d: exits %d and %d, want 0 and 4:\n%s\n%s\n%s", i, winner.code, loser.code, winner, loser, describeOps(loser))
			continue
		}
		a := world.Addresses()[alloc]
		if got := aws.ToString(a.NetworkInterfaceId); got != winner.inst.ENI {
			t.Errorf("race %d: the EIP is on %q, want the winner's %s", i, got, winner.inst.ENI)
		}
		if !strings.Contains(loser.stderr, "held by "+winner.inst.ID) {
			refusedFree++
			t.Errorf("race %d: the loser does not name the winner %s:\n%s", i, winner.inst.ID, loser)
		}
		if o := outcomeOf(t, winner); o.Epoch != 1 || epochTag(a) != "1" {
			dupEpochs++
			t.Errorf("race %d: the winner's epoch %d, tag %q; want 1 and 1", i, o.Epoch, epochTag(a))
		}
	}
	served := staleServed(all...)
	if served == 0 {
		t.Errorf("the stale-read mode served no stale answer in %d races: the proof proves nothing", races)
	}
	t.Logf("PROOF stale fixed-EIP race: %d races, %d stale answers served (lags up to %s), %d double holders, %d refusals not naming the holder, %d wrong epochs",
		races, served, staleLag, double, refusedFree, dupEpochs)
}

// TestClaimAfterReleaseUnderStale: two instances take turns on one EIP:
// one claims, releases, and at once the other claims, while EC2's reads
// may still show the EIP on the instance that just released it (healthy:
// a read alone would refuse, exit 4). Every claim must succeed (0 claims
// refused while the EIP was free) and hand out the next epoch (never one
// twice): epochs 1, 2, 3, ... make test runs 6 turns, EIPCLAIM_PROOF=1 40.
func TestClaimAfterReleaseUnderStale(t *testing.T) {
	turns := 6
	if proof() {
		turns = 40
	}
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	st := newStale(t, 7)
	claims := staleFleet(t, moto, st, 60*time.Second)
	claims.args = []string{"--json"}
	releases := staleFleet(t, moto, st, 60*time.Second)
	releases.command = "release"
	alloc := world.NewEIP(nil).AllocationID
	insts := world.NewInstances(2)
	var all []*claimer
	refused, dupEpochs := 0, 0
	seen := map[int64]string{}
	for i := range turns {
		inst := insts[i%2]
		c := &claimer{inst: inst, alloc: alloc, userData: fixedRole(alloc)}
		claims.run([]*claimer{c}, 1)
		all = append(all, c)
		if c.code == 4 {
			refused++
		}
		if c.code != 0 {
			t.Fatalf("turn %d: claim exit %d, want 0: the EIP was released before it\n%s\n%s", i, c.code, c, describeOps(c))
		}
		o := outcomeOf(t, c)
		if prev, ok := seen[o.Epoch]; ok {
			dupEpochs++
			t.Errorf("turn %d: epoch %d handed out twice (%s, then %s)", i, o.Epoch, prev, inst.ID)
		}
		seen[o.Epoch] = fmt.Sprintf("turn %d on %s", i, inst.ID)
		if o.Epoch != int64(i+1) {
			t.Errorf("turn %d: epoch %d, want %d", i, o.Epoch, i+1)
		}
		r := &claimer{inst: inst, alloc: alloc, userData: fixedRole(alloc)}
		releases.run([]*claimer{r}, 1)
		all = append(all, r)
		if r.code != 0 || !strings.Contains(r.stdout, "released") {
			t.Fatalf("turn %d: release exit %d, want 0 and released\n%s\n%s", i, r.code, r, describeOps(r))
		}
	}
	served := staleServed(all...)
	if served == 0 {
		t.Errorf("the stale-read mode served no stale answer in %d turns: the proof proves nothing", turns)
	}
	t.Logf("PROOF stale claim after release: %d turns (claim, release, the other claims at once), %d stale answers served, %d claims refused while the EIP was free, %d epochs handed out twice",
		turns, served, refused, dupEpochs)
}

// TestPoolRaceUnderStale is TestPoolRace under stale reads: claimers at
// once on a pool, each reading a pool whose EIPs others are taking. Every
// EIP of the pool ends on one claimer, nobody holds two, each winner's
// epoch is 1, the others are refused as exhausted only. Then, turn by
// turn, a winner releases its EIP and at once a refused claimer claims
// again, while the pool's reads may still show the EIP held (a pool that
// looks exhausted): it must take the released EIP, epoch 2. make test runs
// 2 rounds of 20 claimers on 5 EIPs and 2 such turns, EIPCLAIM_PROOF=1 10
// rounds of 50 on 10 and 5 turns.
func TestPoolRaceUnderStale(t *testing.T) {
	rounds, claimers, pool, releaseTurns := 2, 20, 5, 2
	if proof() {
		rounds, claimers, pool, releaseTurns = 10, 50, 10, 5
	}
	bin := testenv.Eipclaim(t)
	totalServed, doubles, badRefusals, badEpochs := 0, 0, 0, 0
	claimedAfterRelease, refusedAfterRelease := 0, 0
	for round := 1; round <= rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			moto := testenv.SharedMoto(t) // reset
			world := testenv.NewTestWorld(t, moto.Config())
			insts := world.NewInstances(claimers)
			allocs := allocate(world, pool, map[string]string{"eip-pool": "web"})
			st := newStale(t, uint64(round))
			f := staleFleet(t, moto, st, 90*time.Second)
			f.bin = bin
			f.args = []string{"--json"}
			cs := make([]*claimer, claimers)
			byENI := map[string]*claimer{}
			for i := range cs {
				cs[i] = &claimer{inst: insts[i], userData: poolRole}
				byENI[insts[i].ENI] = cs[i]
			}
			f.run(cs, claimers)
			won, refused := 0, 0
			for _, c := range cs {
				switch c.code {
				case 0:
					won++
					if o := outcomeOf(t, c); o.Epoch != 1 {
						badEpochs++
						t.Errorf("%s won with epoch %d, want 1 (each pool EIP moves once)", c.inst.ID, o.Epoch)
					}
				case 4:
					refused++
					if !strings.Contains(c.stderr, "exhausted") {
						badRefusals++
						t.Errorf("refused without saying the pool is exhausted: %s", c)
					}
				default:
					t.Errorf("exit %d, want 0 or 4: %s\n%s", c.code, c, describeOps(c))
				}
			}
			addrs := world.Addresses()
			holders := map[string]string{}
			for _, alloc := range allocs {
				c := byENI[aws.ToString(addrs[alloc].NetworkInterfaceId)]
				if c == nil {
					badRefusals++
					t.Errorf("pool EIP %s is on %q, not on a claimer: left free while claimers were refused", alloc, aws.ToString(addrs[alloc].NetworkInterfaceId))
					continue
				}
				if prev, ok := holders[c.inst.ID]; ok {
					doubles++
					t.Errorf("%s holds two EIPs: %s and %s", c.inst.ID, prev, alloc)
				}
				holders[c.inst.ID] = alloc
				if c.code != 0 {
					t.Errorf("%s holds %s but exited %d", c.inst.ID, alloc, c.code)
				}
			}
			if won != pool || refused != claimers-pool || len(holders) != pool {
				t.Errorf("%d won, %d refused, %d distinct holders; want %d, %d, %d", won, refused, len(holders), pool, claimers-pool, pool)
			}
			// Claims right after a release: a winner releases its EIP,
			// and at once a refused claimer claims again, while the
			// reads of the pool may still show the EIP held (the pool
			// then looks exhausted). It must take the released EIP, with
			// epoch 2.
			var winners, losers []*claimer
			for _, c := range cs {
				if c.code == 0 {
					winners = append(winners, c)
				} else {
					losers = append(losers, c)
				}
			}
			rel := staleFleet(t, moto, st, 60*time.Second)
			rel.bin, rel.command = bin, "release"
			again := staleFleet(t, moto, st, 60*time.Second)
			again.bin, again.args = bin, []string{"--json"}
			after := []*claimer{}
			for i := range min(releaseTurns, len(winners), len(losers)) {
				w := winners[i]
				released := ""
				for _, alloc := range allocs {
					if aws.ToString(world.Addresses()[alloc].NetworkInterfaceId) == w.inst.ENI {
						released = alloc
					}
				}
				r := &claimer{inst: w.inst, userData: poolRole}
				rel.run([]*claimer{r}, 1)
				c := &claimer{inst: losers[i].inst, userData: poolRole}
				again.run([]*claimer{c}, 1)
				after = append(after, r, c)
				if r.code != 0 || !strings.Contains(r.stdout, "released") {
					t.Fatalf("release by %s: exit %d, want 0 and released\n%s", w.inst.ID, r.code, r)
				}
				if c.code != 0 {
					refusedAfterRelease++
					t.Errorf("claim right after %s released %s: exit %d, want 0\n%s\n%s", w.inst.ID, released, c.code, c, describeOps(c))
					continue
				}
				if got := aws.ToString(world.Addresses()[released].NetworkInterfaceId); got != c.inst.ENI {
					t.Errorf("the released %s is on %q, want the claimer's %s", released, got, c.inst.ENI)
				}
				if o := outcomeOf(t, c); o.Epoch != 2 {
					badEpochs++
					t.Errorf("%s took the released %s with epoch %d, want 2", c.inst.ID, released, o.Epoch)
				}
				claimedAfterRelease++
			}
			served := staleServed(cs...)
			servedAfter := staleServed(after...)
			totalServed += served + servedAfter
			t.Logf("round %d: %d claimers on %d EIPs: %d won, %d refused (exhausted), %d stale answers served; then %d claims right after a release, %d stale answers served", round, claimers, pool, won, refused, served, len(after)/2, servedAfter)
		})
	}
	if totalServed == 0 {
		t.Errorf("the stale-read mode served no stale answer in %d rounds: the proof proves nothing", rounds)
	}
	t.Logf("PROOF stale pool race: %d rounds of %d claimers on %d EIPs, then %d claims right after a release; %d stale answers served, %d double holders, %d wrong refusals or EIPs left free, %d claims refused right after a release, %d wrong epochs",
		rounds, claimers, pool, claimedAfterRelease+refusedAfterRelease, totalServed, doubles, badRefusals, refusedAfterRelease, badEpochs)
}
