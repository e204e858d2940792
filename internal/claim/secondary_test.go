package claim

// Tests of the claim of a secondary private IP (private_address) against
// moto's EC2 behind the IAM gate, whose strict layer answers Assign and
// Unassign as AWS does (internal/testenv/ec2strict.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

const secondaryAddr = "127.0.1.200"

// secondaryWorld is instances on the loopback VPC whose interfaces carry
// the role tag (the shipped policy moves addresses only on those).
type secondaryWorld struct {
	t     *testing.T
	moto  *testenv.Moto
	admin *ec2.Client
	inst  []testenv.Instance
}

func newSecondaryWorld(t *testing.T, n int) *secondaryWorld {
	t.Helper()
	moto := testenv.SharedMoto(t)
	w := &secondaryWorld{t: t, moto: moto, admin: ec2.NewFromConfig(moto.Config())}
	var ips []string
	for i := range n {
		ips = append(ips, fmt.Sprintf("127.0.1.%d", 50+i))
	}
	is, err := testenv.NewWorld(moto.Config()).NewLoopbackInstances(t.Context(), ips...)
	if err != nil {
		t.Fatal(err)
	}
	w.inst = is
	var enis []string
	for _, i := range is {
		enis = append(enis, i.ENI)
	}
	w.tag(enis, tagRole, "db")
	return w
}

func (w *secondaryWorld) tag(ids []string, k, v string) {
	w.t.Helper()
	if _, err := w.admin.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *secondaryWorld) assign(eni string) {
	w.t.Helper()
	if _, err := w.admin.AssignPrivateIpAddresses(context.Background(), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{secondaryAddr}, AllowReassignment: aws.Bool(false)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *secondaryWorld) setState(id string, stop bool) {
	w.t.Helper()
	var err error
	if stop {
		_, err = w.admin.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{id}})
	} else {
		_, err = w.admin.StartInstances(context.Background(), &ec2.StartInstancesInput{InstanceIds: []string{id}})
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

// holders lists the interfaces that have the address, and their tags.
func (w *secondaryWorld) holders() []types.NetworkInterface {
	w.t.Helper()
	out, err := w.admin.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{secondaryAddr}}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.NetworkInterfaces
}

func (w *secondaryWorld) eniTags(eni string) []types.Tag {
	w.t.Helper()
	out, err := w.admin.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.NetworkInterfaces[0].TagSet
}

func (w *secondaryWorld) engine(i testenv.Instance) (*Engine, *syncBuffer) {
	logs := &syncBuffer{}
	return &Engine{
		EC2:        ec2.NewFromConfig(w.moto.ConfigAs(testenv.CallerInstance)),
		InstanceID: i.ID,
		Region:     testenv.MotoRegion,
		Log:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backoff:    retry.Backoff{Base: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no health probe in this test")
		},
	}, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func secondaryRequest() Request {
	return Request{Role: "db", Spec: &config.Role{Name: "db", PrivateAddress: secondaryAddr}}
}

// TestSecondaryClaimMoves: a free address is assigned to this instance's
// interface; a second claim keeps it ("already held", nothing moved); a
// standby takes it over from a stopped holder, with an epoch above the
// old holder's tag, and the old holder's tags are removed; a healthy
// holder's address is refused (exit 4); an address outside the subnet is
// a configuration error (exit 2). It counts the requests of a move.
func TestSecondaryClaimMoves(t *testing.T) {
	w := newSecondaryWorld(t, 3)
	ctx := t.Context()
	a, b, c := w.inst[0], w.inst[1], w.inst[2]

	ea, logsA := w.engine(a)
	res, err := ea.ClaimSecondary(ctx, secondaryRequest())
	if err != nil {
		t.Fatalf("claim of a free address: %v\n%s", err, logsA)
	}
	if res.Action != "claimed" || res.ENI != a.ENI || res.Epoch != 1 || !res.TagsStale || res.CIDR != testenv.LoopbackSubnet {
		t.Errorf("free: %+v, want claimed on %s, epoch 1, tags stale, CIDR %s", res, a.ENI, testenv.LoopbackSubnet)
	}
	ea.TagSecondary(ctx, res)
	hk, _, ek := SecondaryTagKeys("db")
	if tags := w.eniTags(a.ENI); TagValue(tags, hk) != a.ID || TagValue(tags, ek) != "1" {
		t.Errorf("holder's tags %v, want %s=%s, %s=1", tags, hk, a.ID, ek)
	}
	again, err := ea.ClaimSecondary(ctx, secondaryRequest())
	if err != nil || again.Action != "already held" || again.Epoch != 1 || again.TagsStale {
		t.Errorf("a second claim: %+v, %v; want already held, epoch 1, tags right", again, err)
	}

	// A healthy holder is not taken.
	eb, logsB := w.engine(b)
	if _, err := eb.ClaimSecondary(ctx, secondaryRequest()); !errors.Is(err, ErrRefused) || exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), a.ID) {
		t.Errorf("claim of a healthy holder's address: %v (exit %d), want refused naming %s, exit 4\n%s", err, exitcode.Of(err), a.ID, logsB)
	}

	// Stopped, it is taken over: the epoch goes above the holder's tag.
	w.tag([]string{a.ENI}, ek, "41")
	w.setState(a.ID, true)
	w.moto.ActionCounts()
	res, err = eb.ClaimSecondary(ctx, secondaryRequest())
	if err != nil {
		t.Fatalf("takeover from a stopped holder: %v\n%s", err, logsB)
	}
	eb.TagSecondary(ctx, res)
	counts, refused := w.moto.ActionCounts()
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("requests of one takeover (claim and tags): %d %v; refused by the strict layer: %d", total, counts, refused)
	if counts["ec2:UnassignPrivateIpAddresses"] != 1 || counts["ec2:AssignPrivateIpAddresses"] != 1 || refused != 0 {
		t.Errorf("a takeover made %v (refused %d), want one unassign and one assign", counts, refused)
	}
	if res.Action != "taken over" || res.PreviousHolder != a.ID || res.PreviousENI != a.ENI || res.Epoch != 42 {
		t.Errorf("takeover: %+v, want taken over from %s (%s), epoch 42", res, a.ID, a.ENI)
	}
	if h := w.holders(); len(h) != 1 || aws.ToString(h[0].NetworkInterfaceId) != b.ENI {
		t.Errorf("after the takeover the address is on %d interfaces, want %s only", len(h), b.ENI)
	}
	if tags := w.eniTags(a.ENI); TagValue(tags, hk) != "" || TagValue(tags, ek) != "" || TagValue(tags, tagRole) != "db" {
		t.Errorf("the previous holder's tags %v: want the role's claim tags gone, its role tag kept", tags)
	}
	if tags := w.eniTags(b.ENI); TagValue(tags, ek) != "42" || TagValue(tags, hk) != b.ID {
		t.Errorf("the new holder's tags %v, want epoch 42 and holder %s", tags, b.ID)
	}

	// The role table's epoch counts too.
	w.setState(b.ID, true)
	ec, _ := w.engine(c)
	req := secondaryRequest()
	req.Recorded = func() *epoch.Recorded { return &epoch.Recorded{Epoch: 100, Holder: b.ID} }
	res, err = ec.ClaimSecondary(ctx, req)
	if err != nil || res.Epoch != 101 {
		t.Errorf("takeover with the table at 100: %+v, %v; want epoch 101", res, err)
	}

	// An address outside the interface's subnet cannot be claimed.
	bad := secondaryRequest()
	bad.Spec.PrivateAddress = "127.0.2.50"
	_, err = ec.ClaimSecondary(ctx, bad)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "is not in subnet") || !strings.Contains(err.Error(), testenv.LoopbackSubnet) {
		t.Errorf("an address outside the subnet: %v (exit %d), want exit 2 naming the subnet", err, exitcode.Of(err))
	}

	// A dry run decides and changes nothing.
	w.setState(b.ID, false)
	w.setState(c.ID, true)
	dry := secondaryRequest()
	dry.DryRun = true
	eb2, _ := w.engine(b)
	res, err = eb2.ClaimSecondary(ctx, dry)
	if err != nil || res.Action != "would be taken over" || res.TagsStale {
		t.Errorf("dry run: %+v, %v; want would be taken over, no tags", res, err)
	}
	if h := w.holders(); len(h) != 1 || aws.ToString(h[0].NetworkInterfaceId) != c.ENI {
		t.Errorf("a dry run moved the address")
	}
}

// TestSecondaryRace: eight standbys claim one secondary private IP at once
// from a stopped holder: exactly one holds it, the seven others are
// refused naming the winner (exit 4, as an EIP's lost race), and the
// address is on one interface only. Several rounds, each from the last
// round's winner, stopped.
func TestSecondaryRace(t *testing.T) {
	const standbys = 8
	w := newSecondaryWorld(t, standbys+1)
	ctx := t.Context()
	holder := w.inst[0]
	w.assign(holder.ENI)
	w.setState(holder.ID, true)
	const rounds = 5
	w.moto.ActionCounts()
	for round := range rounds {
		var cands []testenv.Instance
		for _, i := range w.inst {
			if i.ID != holder.ID {
				cands = append(cands, i)
			}
		}
		results := make([]*SecondaryResult, len(cands))
		errs := make([]error, len(cands))
		logs := make([]*syncBuffer, len(cands))
		var wg sync.WaitGroup
		for k, i := range cands {
			e, l := w.engine(i)
			logs[k] = l
			wg.Go(func() {
				results[k], errs[k] = e.ClaimSecondary(ctx, secondaryRequest())
				if errs[k] == nil {
					e.TagSecondary(ctx, results[k])
				}
			})
		}
		wg.Wait()
		var winner testenv.Instance
		won := 0
		for k, err := range errs {
			if err == nil {
				won++
				winner = cands[k]
				// Taken over from the stopped holder, or claimed free: a
				// loser's unassign came first, and its assign second.
				if r := results[k]; !(r.Action == "taken over" && r.PreviousHolder == holder.ID) && !(r.Action == "claimed" && r.PreviousHolder == "") {
					t.Errorf("round %d: the winner's result %+v, want taken over from %s, or claimed free", round, r, holder.ID)
				}
			}
		}
		if won != 1 {
			for k := range errs {
				t.Logf("%s: %v\n%s", cands[k].ID, errs[k], logs[k])
			}
			t.Fatalf("round %d: %d claimers won, want 1", round, won)
		}
		for k, err := range errs {
			if err != nil && (!errors.Is(err, ErrRefused) || exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), winner.ID)) {
				t.Errorf("round %d: loser %s: %v (exit %d), want refused naming the winner %s (exit 4)\n%s", round, cands[k].ID, err, exitcode.Of(err), winner.ID, logs[k])
			}
		}
		h := w.holders()
		if len(h) != 1 || aws.ToString(h[0].NetworkInterfaceId) != winner.ENI {
			var ids []string
			for _, n := range h {
				ids = append(ids, aws.ToString(n.NetworkInterfaceId))
			}
			t.Fatalf("round %d: the address is on %v, want on the winner's %s only", round, ids, winner.ENI)
		}
		hk, _, ek := SecondaryTagKeys("db")
		if tags := w.eniTags(winner.ENI); TagValue(tags, hk) != winner.ID || TagValue(tags, ek) != fmt.Sprint(round+1) {
			t.Errorf("round %d: the winner's tags %v, want holder %s, epoch %d", round, tags, winner.ID, round+1)
		}
		// Next round: the winner stops, the old holder comes back.
		w.setState(holder.ID, false)
		w.setState(winner.ID, true)
		holder = winner
	}
	counts, refused := w.moto.ActionCounts()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	t.Logf("%d rounds of %d standbys: %s; moves the strict layer refused: %d", rounds, standbys, strings.Join(parts, ", "), refused)
}

// TestSecondaryRelease: release unassigns the address only from this
// instance's interface, a dry run changes nothing, the holder tags go and
// the epoch stays, so that the next claim counts from it.
func TestSecondaryRelease(t *testing.T) {
	w := newSecondaryWorld(t, 2)
	ctx := t.Context()
	a, b := w.inst[0], w.inst[1]
	ea, _ := w.engine(a)
	eb, _ := w.engine(b)
	spec := secondaryRequest().Spec
	if what, err := ea.ReleaseSecondary(ctx, "db", spec, false); err != nil || !strings.Contains(what, "nothing to do") {
		t.Errorf("release of a free address: %q, %v; want nothing to do", what, err)
	}
	res, err := ea.ClaimSecondary(ctx, secondaryRequest())
	if err != nil {
		t.Fatal(err)
	}
	ea.TagSecondary(ctx, res)
	if what, err := eb.ReleaseSecondary(ctx, "db", spec, false); err != nil || !strings.Contains(what, "held by "+a.ID) {
		t.Errorf("release by another instance: %q, %v; want nothing to do, held by %s", what, err, a.ID)
	}
	if what, err := ea.ReleaseSecondary(ctx, "db", spec, true); err != nil || !strings.HasPrefix(what, "would release") {
		t.Errorf("dry run: %q, %v", what, err)
	}
	if h := w.holders(); len(h) != 1 {
		t.Fatalf("after the dry run the address is on %d interfaces, want 1", len(h))
	}
	if what, err := ea.ReleaseSecondary(ctx, "db", spec, false); err != nil || !strings.HasPrefix(what, "released") {
		t.Errorf("release: %q, %v", what, err)
	}
	if h := w.holders(); len(h) != 0 {
		t.Errorf("after the release the address is on %d interfaces, want none", len(h))
	}
	hk, ck, ek := SecondaryTagKeys("db")
	if tags := w.eniTags(a.ENI); TagValue(tags, hk) != "" || TagValue(tags, ck) != "" || TagValue(tags, ek) != "1" {
		t.Errorf("tags after the release %v: want no holder, no claimed-at, epoch 1 kept", tags)
	}
	res, err = eb.ClaimSecondary(ctx, secondaryRequest())
	if err != nil || res.Action != "claimed" || res.Epoch != 2 {
		t.Fatalf("claim after the release: %+v, %v; want claimed, epoch 2 (above the released interface's 1)", res, err)
	}
	eb.TagSecondary(ctx, res)
	if tags := w.eniTags(a.ENI); TagValue(tags, ek) != "" {
		t.Errorf("the released interface keeps %s=%s after another's claim: want it removed", ek, TagValue(tags, ek))
	}
}

// TestSecondaryPermissions: check asks every call a claim of a private
// address makes, changing nothing (Assign and Unassign on the subnet's
// reserved first address, refused after authorization), says whether the
// address is in the interface's subnet, and reports a denial when the
// interface lacks the role tag the shipped policy requires.
func TestSecondaryPermissions(t *testing.T) {
	w := newSecondaryWorld(t, 1)
	e, _ := w.engine(w.inst[0])
	perms, err := e.Permissions(t.Context(), secondaryRequest().Spec)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range perms {
		seen[p.Action] = true
		if !p.Allowed {
			t.Errorf("%s: not allowed: %s %s", p.Action, p.Code, p.Detail)
		}
		if p.Action == "ec2:AssociateAddress" || p.Action == "ec2:DescribeAddresses" {
			t.Errorf("a role without an EIP asked %s", p.Action)
		}
	}
	for _, a := range []string{"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses", "ec2:DescribeSubnets", "ec2:CreateTags", "ec2:DeleteTags", "private_address 127.0.1.200 in the subnet of " + w.inst[0].ENI} {
		if !seen[a] {
			t.Errorf("check did not ask %s", a)
		}
	}
	if h := w.holders(); len(h) != 0 {
		t.Errorf("check assigned the address")
	}

	outside := secondaryRequest().Spec
	outside.PrivateAddress = "127.0.9.9"
	perms, err = e.Permissions(t.Context(), outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if strings.HasPrefix(p.Action, "private_address ") && (p.Allowed || !strings.Contains(p.Detail, "moves only within one subnet")) {
			t.Errorf("an address outside the subnet: %+v, want not allowed, saying one subnet", p)
		}
	}

	// Without the role tag on the interface, the policy denies the moves.
	if _, err := w.admin.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{w.inst[0].ENI}, Tags: []types.Tag{{Key: aws.String(tagRole)}}}); err != nil {
		t.Fatal(err)
	}
	w.moto.ExpectDenied(t, "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses", "ec2:CreateTags", "ec2:DeleteTags")
	perms, err = e.Permissions(t.Context(), secondaryRequest().Spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if p.Action == "ec2:AssignPrivateIpAddresses" && (p.Allowed || !p.Denied) {
			t.Errorf("assign on an interface without the role tag: %+v, want denied", p)
		}
	}
}
