package proof_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWatchHolderStaleReadsUnderStale: the new holder's reads right after
// its own takeover. Two real `eipclaim watch` processes (interval 300ms,
// fall 3, no hold-down, no health_check), every AWS request through a
// proxy of its own, all sharing one stale-read mode, the role named by
// public_ip: the watcher's look (DescribeAddresses by public IP) is not
// the request the claim engine reads its association back with (by
// allocation id), so, as on AWS where different reads reach different
// replicas, the new holder's next looks may show the EIP on the previous
// holder, or free, for up to 2s after the move. Turn by turn the holder's
// instance is stopped (and the other's started again): the other watcher
// takes the EIP over. Asserted each turn: exactly one move; the new holder
// announces holder once and never standby (no demotion, no on_standby,
// no second on_holder on a stale read); the deposed holder, whose loss is
// real, announces standby within interval + 2s (its own stale window) +
// 3s (the confirmation) + 2s of the move. At the end: one holder, no epoch announced twice, stale
// answers served. make test runs 3 turns, EIPCLAIM_PROOF=1 10.
func TestWatchHolderStaleReadsUnderStale(t *testing.T) {
	turns := 3
	if proof() {
		turns = 10
	}
	bin := testenv.EipclaimTestHooks(t)
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	st := newStale(t, 1700)
	eip := world.NewEIP(nil)
	config := filepath.Join(t.TempDir(), "eipclaim.yaml")
	doc := fmt.Sprintf("role: db\nroles:\n  db:\n    public_ip: %s\n    watch: {interval: 100ms, fall: 3, hold_down: 1s}\n", eip.PublicIP)
	if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	insts := world.NewInstances(2)
	world.Associate(eip.AllocationID, insts[0].ID)
	procs := []*watchProc{
		startWatch(t, bin, "a", moto, world, insts[0], config, "", faultproxy.Options{Stale: st}),
		startWatch(t, bin, "b", moto, world, insts[1], config, "", faultproxy.Options{Stale: st}),
	}
	deadline := time.Now().Add(60 * time.Second)
	for i, want := range []string{"holder", "standby"} {
		for procs[i].state() != want {
			if !procs[i].running() || time.Now().After(deadline) {
				t.Fatalf("watcher %s not %s within 60s (state %q)", procs[i].name, want, procs[i].state())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	px, err := faultproxy.New(moto.Endpoint, faultproxy.Options{Stale: st})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	cli := ec2.NewFromConfig((&testenv.Moto{Endpoint: px.URL}).Config())
	ctx := context.Background()

	demotions, extraHolder, lateLoss, caught := 0, 0, 0, 0
	var slowestLoss time.Duration
	for turn := 1; turn <= turns; turn++ {
		from, to := procs[(turn+1)%2], procs[turn%2]
		fromLines, toLines := len(from.lines()), len(to.lines())
		if turn > 1 {
			if _, err := cli.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{to.inst.ID}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cli.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{from.inst.ID}}); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		for aws.ToString(world.Address(eip.AllocationID).NetworkInterfaceId) != to.inst.ENI {
			if time.Since(stopped) > 60*time.Second {
				t.Fatalf("turn %d: %s did not take the EIP within 60s of %s's stop", turn, to.name, from.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		moved := time.Now()
		for from.state() != "standby" && time.Since(moved) < 30*time.Second {
			time.Sleep(50 * time.Millisecond)
		}
		loss := time.Since(moved)
		slowestLoss = max(slowestLoss, loss)
		if limit := 100*time.Millisecond + staleLag + 3*time.Second + 2*time.Second; loss > limit {
			lateLoss++
			t.Errorf("turn %d: the deposed %s entered standby %s after the move (state %q), want within %s", turn, from.name, loss.Round(100*time.Millisecond), from.state(), limit)
		}
		time.Sleep(5 * time.Second) // past every stale window of the move
		announced := map[string]int{}
		for _, l := range to.lines()[toLines:] {
			announced[l.Msg]++
		}
		if announced["holder"] != 1 || announced["standby"] != 0 || to.state() != "holder" {
			demotions += announced["standby"]
			extraHolder += max(announced["holder"]-1, 0)
			t.Errorf("turn %d: the new holder %s announced holder %d times and standby %d times (state %q); want 1 and 0, holder", turn, to.name, announced["holder"], announced["standby"], to.state())
		}
		caught += strings.Count(strings.Join(msgs(to.lines()[toLines:]), "\n"), "a stale read showed the EIP elsewhere")
		if deposed := strings.Count(strings.Join(msgs(from.lines()[fromLines:]), "\n"), "no longer holds the EIP"); from.state() != "standby" || deposed != 1 {
			t.Errorf("turn %d: the deposed %s is %q and saw its loss %d times, want standby, once", turn, from.name, from.state(), deposed)
		}
	}

	moves := 0
	for _, p := range procs {
		for _, r := range p.moves() {
			if r.Action == "AssociateAddress" {
				moves++
			}
		}
		if !p.running() {
			t.Errorf("%s exited: %v", p.name, p.err)
		}
	}
	if moves != turns {
		t.Errorf("%d successful AssociateAddress in %d turns, want one a turn", moves, turns)
	}
	holders := 0
	for _, p := range procs {
		if p.state() == "holder" {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%d watchers holder at the end, want 1", holders)
	}
	epochs := map[int64]string{}
	dupEpochs := 0
	for _, p := range procs {
		for _, l := range p.lines() {
			if l.Msg != "holder" || l.Epoch == nil {
				continue
			}
			if prev, ok := epochs[*l.Epoch]; ok && prev != p.name {
				dupEpochs++
				t.Errorf("epoch %d announced by %s and by %s", *l.Epoch, prev, p.name)
			}
			epochs[*l.Epoch] = p.name
		}
	}
	served := px.Counts().Stale
	for _, p := range procs {
		served += p.ec2.Counts().Stale
	}
	if served == 0 {
		t.Errorf("the stale-read mode served no stale answer: the proof proves nothing")
	}
	t.Logf("PROOF stale holder: %d takeovers (a holder stopped, the other took over), %d moves; %d demotions and %d extra holder announcements of a new holder, %d stale losses refused by the confirmation, deposed holders in standby within %s of the move at the slowest (%d late), %d holders at the end, %d epochs announced twice; %d stale answers served",
		turns, moves, demotions, extraHolder, caught, slowestLoss.Round(100*time.Millisecond), lateLoss, holders, dupEpochs, served)
	for _, p := range procs {
		if _, err := p.sigterm(10 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

func msgs(ls []watchLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Msg)
	}
	return out
}
