package controller_test

import (
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestLambdaHolderStoppedUnderStale: the off-box controller under EC2's
// eventual consistency. Every AWS request of the function, and the test's
// StopInstances, go through proxies sharing one stale-read mode (after a
// mutation, DescribeAddresses, DescribeInstances, DescribeInstanceStatus
// and DescribeNetworkInterfaces may answer the state from before it, for
// up to 2s). The holder is stopped and at once its state-change event
// comes, while the reads may still show it running and healthy: EC2's
// event is the newer news. The event moves the EIP to the other candidate;
// the same event again and the schedule, right after the move (their reads
// may still show the EIP on the stopped holder), change nothing. Asserted:
// exactly one move (one successful AssociateAddress), the EIP on the
// candidate with epoch 2, no epoch handed out twice, every invocation
// without a function error, and stale answers served. make test runs 3
// rounds (each its own seed), EIPCLAIM_PROOF=1 15.
func TestLambdaHolderStoppedUnderStale(t *testing.T) {
	rounds := 3
	if os.Getenv("EIPCLAIM_PROOF") == "1" {
		rounds = 15
	}
	served, moves := 0, 0
	for round := 1; round <= rounds; round++ {
		f := newFixture(t)
		is := f.candidates("db", 2)
		a, b := is[0], is[1]
		eip := f.w.NewEIP(nil)
		f.w.Associate(eip.AllocationID, a.ID)
		f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
		st, err := faultproxy.NewStale(faultproxy.StaleOptions{Seed: uint64(round)})
		if err != nil {
			t.Fatal(err)
		}
		fnProxy, err := faultproxy.New(f.moto.Endpoint, faultproxy.Options{Stale: st})
		if err != nil {
			t.Fatal(err)
		}
		defer fnProxy.Close()
		testProxy, err := faultproxy.New(f.moto.Endpoint, faultproxy.Options{Stale: st})
		if err != nil {
			t.Fatal(err)
		}
		defer testProxy.Close()
		fn := testenv.StartRIE(t, testenv.Bootstrap(t), append((&testenv.Moto{Endpoint: fnProxy.URL}).EnvAs(testenv.CallerController), "EIPCLAIM_CONFIG="+source)...)
		// The cold start: the schedule tags the holder's EIP (epoch 1).
		cold, _ := invoke(t, fn, scheduled)
		if len(cold.Decisions) != 1 || cold.Decisions[0].Action != "already held" {
			t.Fatalf("round %d: cold schedule: %+v, want already held", round, cold.Decisions)
		}
		cli := ec2.NewFromConfig((&testenv.Moto{Endpoint: testProxy.URL}).Config())
		if _, err := cli.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{a.ID}}); err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, ev := range []string{stateChange(a.ID, "stopped"), stateChange(a.ID, "stopped"), scheduled} {
			res, _ := invoke(t, fn, ev)
			for _, d := range res.Decisions {
				actions = append(actions, d.Action+" for "+d.Candidate)
			}
		}
		roundMoves := 0
		for _, r := range fnProxy.Records() {
			if r.Action == "AssociateAddress" && r.Status == 200 {
				roundMoves++
			}
		}
		moves += roundMoves
		want := []string{"taken over for " + b.ID, "nothing to do for ", "already held for " + b.ID}
		if strings.Join(actions, "; ") != strings.Join(want, "; ") {
			t.Errorf("round %d: decisions %q, want %q", round, actions, want)
		}
		holder, epoch := f.holder(eip.AllocationID)
		if roundMoves != 1 || holder != b.ENI || epoch != "2" {
			t.Errorf("round %d: %d moves, holder %s epoch %s; want 1 move, %s (%s) epoch 2\n%s", round, roundMoves, holder, epoch, b.ID, b.ENI, fn.Output())
		}
		served += fnProxy.Counts().Stale + testProxy.Counts().Stale
	}
	if served == 0 {
		t.Errorf("the stale-read mode served no stale answer: the proof proves nothing")
	}
	t.Logf("PROOF stale controller: %d rounds (holder stopped, its event twice, the schedule), %d moves, %d stale answers served", rounds, moves, served)
}
