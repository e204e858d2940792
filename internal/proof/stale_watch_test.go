package proof_test

import (
	"bufio"
	"context"
	"encoding/json"
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

// watchLine is one JSON log line of a watcher, the fields read here.
type watchLine struct {
	Msg   string `json:"msg"`
	Epoch *int64 `json:"epoch"`
}

func (p *watchProc) lines() []watchLine {
	var ls []watchLine
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l watchLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestWatchTakeoverUnderStale: a holder and two standbys, real `eipclaim
// watch` processes (interval 1s, fall 3, no hold-down, no health_check:
// the standbys examine the holder through the EC2 API), every AWS request
// of every watcher through a proxy of its own, all sharing one stale-read
// mode: after any mutation, every watcher's reads may show the state from
// before it, for up to 2s. Settled, the run first asserts that nothing
// moves from the healthy holder, under the stale windows of its own
// tagging; then the holder's instance is stopped (through the stale mode
// too: the standbys may see it running for a while) and the run goes on.
// Asserted: exactly one move, to a standby (0 spurious takeovers, and the
// losing standby refused by EC2); the new holder never leaves the holder
// state (no demotion on a stale read); at the end exactly one watcher is
// holder (0 double holders); no epoch was announced by two instances; and
// the stale mode served stale answers. make test runs 10s after the move,
// EIPCLAIM_PROOF=1 60s, and 3 rounds.
func TestWatchTakeoverUnderStale(t *testing.T) {
	rounds, after := 1, 10*time.Second
	if proof() {
		rounds, after = 3, 60*time.Second
	}
	bin := testenv.EipclaimTestHooks(t)
	for round := 1; round <= rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) { watchTakeoverUnderStale(t, bin, uint64(round), after) })
	}
}

func watchTakeoverUnderStale(t *testing.T, bin string, seed uint64, after time.Duration) {
	moto := testenv.SharedMoto(t) // reset
	world := testenv.NewTestWorld(t, moto.Config())
	st := newStale(t, 100+seed)
	eip := world.NewEIP(nil)
	config := filepath.Join(t.TempDir(), "eipclaim.yaml")
	doc := fmt.Sprintf("role: db\nroles:\n  db:\n    allocation_id: %s\n    watch: {interval: 1s, fall: 3, hold_down: 1s}\n", eip.AllocationID)
	if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	insts := world.NewInstances(3)
	world.Associate(eip.AllocationID, insts[0].ID)
	svc := testenv.StartService(t)
	dial := insts[0].PrivateIP + "=" + svc.Addr()
	var procs []*watchProc
	for i, in := range insts {
		name := "holder"
		if i > 0 {
			name = fmt.Sprintf("standby%d", i)
		}
		procs = append(procs, startWatch(t, bin, name, moto, world, in, config, dial, faultproxy.Options{Stale: st}))
	}
	holder := procs[0]
	deadline := time.Now().Add(60 * time.Second)
	for i, p := range procs {
		want := "standby"
		if i == 0 {
			want = "holder"
		}
		for p.state() != want {
			if !p.running() || time.Now().After(deadline) {
				t.Fatalf("watcher %s not %s within 60s (state %q, running %v)", p.name, want, p.state(), p.running())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The healthy holder, under the windows of its own tagging: no move.
	time.Sleep(5 * time.Second)
	for _, p := range procs {
		if m := p.moves(); len(m) > 0 {
			t.Fatalf("%s moved the EIP from the healthy holder: %+v", p.name, m)
		}
	}

	// The holder stops, through the stale mode: its stop shows late.
	px, err := faultproxy.New(moto.Endpoint, faultproxy.Options{Stale: st})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	cli := ec2.NewFromConfig((&testenv.Moto{Endpoint: px.URL}).Config())
	svc.Stop()
	if _, err := cli.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{insts[0].ID}}); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var winner *watchProc
	for winner == nil {
		eni := aws.ToString(world.Address(eip.AllocationID).NetworkInterfaceId)
		for _, p := range procs[1:] {
			if eni == p.inst.ENI {
				winner = p
			}
		}
		if time.Since(stopped) > 60*time.Second {
			t.Fatalf("no standby took the EIP within 60s of the holder's stop (on %q)", eni)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(stopped)
	time.Sleep(after)

	moves, takeovers := 0, 0.0
	for _, p := range procs {
		for _, r := range p.moves() {
			if r.Action == "AssociateAddress" {
				moves++
			}
		}
		takeovers += p.metric(`eipclaim_takeovers_total{role="db"}`)
		if !p.running() {
			t.Errorf("%s exited: %v", p.name, p.err)
		}
	}
	spurious := moves - 1
	if moves != 1 || takeovers != 1 {
		t.Errorf("%d successful AssociateAddress, takeovers_total summed %v; want exactly 1 move", moves, takeovers)
	}
	if got := aws.ToString(world.Address(eip.AllocationID).NetworkInterfaceId); got != winner.inst.ENI {
		t.Errorf("the EIP ended on %q, want the winner %s's %s", got, winner.name, winner.inst.ENI)
	}
	holders := 0
	for _, p := range procs {
		if p.state() == "holder" {
			holders++
		}
	}
	if holders != 1 || winner.state() != "holder" || holder.state() != "standby" {
		t.Errorf("%d watchers holder at the end (winner %s %q, old holder %q), want exactly the winner", holders, winner.name, winner.state(), holder.state())
	}
	// The winner, once holder, never entered standby again: it announced
	// standby once (at start), holder once (the move).
	announced := map[string]int{}
	epochs := map[int64]string{}
	dupEpochs := 0
	for _, p := range procs {
		for _, l := range p.lines() {
			if l.Msg != "holder" && l.Msg != "standby" {
				continue
			}
			if p == winner {
				announced[l.Msg]++
			}
			if l.Msg == "holder" && l.Epoch != nil {
				if prev, ok := epochs[*l.Epoch]; ok && prev != p.name {
					dupEpochs++
					t.Errorf("epoch %d announced by %s and by %s", *l.Epoch, prev, p.name)
				}
				epochs[*l.Epoch] = p.name
			}
		}
		if strings.Contains(p.stderr.String(), "no longer holds the EIP") && p != holder {
			t.Errorf("%s saw itself deposed, a stale read taken for a loss", p.name)
		}
	}
	demotions := announced["standby"] - 1
	if announced["holder"] != 1 || demotions != 0 {
		t.Errorf("the winner %s announced holder %d times and standby %d times; want 1 and 1 (its start)", winner.name, announced["holder"], announced["standby"])
	}
	if len(epochs) != 2 {
		t.Errorf("epochs announced %v, want two: the holder's at start and the winner's", epochs)
	}
	served := 0
	for _, p := range procs {
		served += p.ec2.Counts().Stale
	}
	served += px.Counts().Stale
	if served == 0 {
		t.Errorf("the stale-read mode served no stale answer: the proof proves nothing")
	}
	t.Logf("PROOF stale watch round %d: holder stopped, %s took it in %s; %d moves, %d spurious takeovers, %d demotions of the new holder, %d double holders at the end, %d epochs announced twice; %d stale answers served, %d AWS requests",
		seed, winner.name, took.Round(100*time.Millisecond), moves, max(spurious, 0), max(demotions, 0), max(holders-1, 0), dupEpochs, served, totalRequests(procs))
	for _, p := range procs {
		if _, err := p.sigterm(10 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

func totalRequests(procs []*watchProc) int {
	n := 0
	for _, p := range procs {
		n += p.ec2.Counts().Total
	}
	return n
}
