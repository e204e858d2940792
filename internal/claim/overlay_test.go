package claim

// Tests of the claim of an overlay address (overlay) against moto's EC2
// and S3 behind the IAM gate, whose strict layer answers route changes as
// AWS does (internal/testenv/ec2strict.go); the role table is the
// arbiter.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/table"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

const overlayAddr = "192.168.100.10" // outside the loopback VPC's 127.0.0.0/16; never dialed

// overlayWorld is instances on the loopback VPC (their interfaces with
// source/destination checking off), two route tables of the role, and the
// role table's bucket.
type overlayWorld struct {
	*secondaryWorld
	vpc    string
	tables []string
	s3     *s3.Client // the instances' (judged by the gate)
	admS3  *s3.Client
}

func newOverlayWorld(t *testing.T, n int) *overlayWorld {
	t.Helper()
	w := &overlayWorld{secondaryWorld: newSecondaryWorld(t, n)}
	ctx := t.Context()
	out, err := w.admin.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{w.inst[0].ENI}})
	if err != nil {
		t.Fatal(err)
	}
	w.vpc = aws.ToString(out.NetworkInterfaces[0].VpcId)
	for range 2 {
		rt, err := w.admin.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(w.vpc)})
		if err != nil {
			t.Fatal(err)
		}
		w.tables = append(w.tables, aws.ToString(rt.RouteTable.RouteTableId))
	}
	w.tag(w.tables, tagRole, "vpn")
	for _, i := range w.inst {
		w.sourceDestCheck(i.ENI, false)
	}
	w.admS3 = s3.NewFromConfig(w.moto.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	w.s3 = s3.NewFromConfig(w.moto.ConfigAs(testenv.CallerInstance), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := w.admS3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *overlayWorld) sourceDestCheck(eni string, on bool) {
	w.t.Helper()
	if _, err := w.admin.ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eni), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(on)},
	}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *overlayWorld) spec() *config.Role {
	return &config.Role{Name: "vpn", Overlay: &config.Overlay{Address: overlayAddr, RouteTables: w.tables}}
}

// store is the role table as an instance writes it.
func (w *overlayWorld) store() *table.Store {
	return &table.Store{API: w.s3, Bucket: "fleet-config", Key: "roles.json"}
}

// entry is the role's entry as stored (zero when none).
func (w *overlayWorld) entry() table.Entry {
	w.t.Helper()
	d, err := (&table.Store{API: w.admS3, Bucket: "fleet-config", Key: "roles.json"}).Read(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return d.Roles["vpn"]
}

// targets returns each table's /32 route target ("" when none).
func (w *overlayWorld) targets() []string {
	w.t.Helper()
	out, err := w.admin.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{RouteTableIds: w.tables})
	if err != nil {
		w.t.Fatal(err)
	}
	got := make([]string, len(w.tables))
	for _, rt := range out.RouteTables {
		i := slices.Index(w.tables, aws.ToString(rt.RouteTableId))
		for _, r := range rt.Routes {
			if aws.ToString(r.DestinationCidrBlock) == overlayAddr+"/32" {
				got[i] = aws.ToString(r.NetworkInterfaceId)
			}
		}
	}
	return got
}

func (w *overlayWorld) wantTargets(eni string) {
	w.t.Helper()
	if got := w.targets(); !slices.Equal(got, []string{eni, eni}) {
		w.t.Errorf("routes of %s: %v, want both tables -> %s", overlayAddr, got, eni)
	}
}

func (w *overlayWorld) claim(i testenv.Instance, mod func(*Request)) (*OverlayResult, error) {
	e, _ := w.engine(i)
	req := Request{Role: "vpn", Spec: w.spec()}
	if mod != nil {
		mod(&req)
	}
	return e.ClaimOverlay(context.Background(), req, w.store())
}

func TestOverlayClaim(t *testing.T) {
	w := newOverlayWorld(t, 3)
	a, b := w.inst[0], w.inst[1]

	w.moto.ActionCounts()
	res, err := w.claim(a, nil)
	if err != nil {
		t.Fatalf("claim of a free overlay address: %v", err)
	}
	counts, refused := w.moto.ActionCounts()
	t.Logf("requests of a free claim: %v (refused by the strict layer: %d)", counts, refused)
	if res.Action != "claimed" || res.Epoch != 1 {
		t.Errorf("free: action %q epoch %d, want claimed 1", res.Action, res.Epoch)
	}
	if counts["ec2:CreateRoute"] != 2 || counts["ec2:ReplaceRoute"] != 0 {
		t.Errorf("free: %v, want 2 CreateRoute (one per table), no ReplaceRoute", counts)
	}
	w.wantTargets(a.ENI)
	if en := w.entry(); en.Holder != a.ID || en.Epoch != 1 || en.PrivateIP != overlayAddr {
		t.Errorf("table entry %+v, want holder %s epoch 1 private_ip %s", en, a.ID, overlayAddr)
	}
	for _, r := range res.Tables {
		if !r.Here || r.Instance != a.ID {
			t.Errorf("outcome's table %+v, want here, instance %s", r, a.ID)
		}
	}

	// Again: nothing moves, no write.
	res, err = w.claim(a, nil)
	if err != nil || res.Action != "already held" || res.Epoch != 1 || len(res.Repaired) > 0 {
		t.Fatalf("again: %+v, %v; want already held, epoch 1, nothing repaired", res, err)
	}
	counts, _ = w.moto.ActionCounts()
	if counts["ec2:CreateRoute"]+counts["ec2:ReplaceRoute"] != 0 {
		t.Errorf("already held: %v, want no route change", counts)
	}

	// Drift: one table points at b; a repairs it without a new epoch.
	if _, err := w.admin.ReplaceRoute(context.Background(), &ec2.ReplaceRouteInput{RouteTableId: aws.String(w.tables[1]), DestinationCidrBlock: aws.String(overlayAddr + "/32"), NetworkInterfaceId: aws.String(b.ENI)}); err != nil {
		t.Fatal(err)
	}
	res, err = w.claim(a, nil)
	if err != nil || res.Action != "already held" || res.Epoch != 1 || !slices.Equal(res.Repaired, w.tables[1:]) {
		t.Fatalf("drift: %+v, %v; want already held, epoch 1, %s repaired", res, err, w.tables[1])
	}
	w.wantTargets(a.ENI)

	// b is refused while a runs: named, exit 4, nothing changed.
	_, err = w.claim(b, nil)
	if exitcode.Of(err) != exitcode.Refused || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), a.ID) {
		t.Fatalf("claim by b while a runs: %v, want refused (exit 4) naming %s", err, a.ID)
	}
	w.wantTargets(a.ENI)
	if en := w.entry(); en.Holder != a.ID || en.Epoch != 1 {
		t.Errorf("after a refusal the entry is %+v, want holder %s epoch 1", en, a.ID)
	}

	// A dry run of b's takeover changes nothing.
	w.setState(a.ID, true)
	res, err = w.claim(b, func(r *Request) { r.DryRun = true })
	if err != nil || res.Action != "would be taken over" || res.Epoch != 2 {
		t.Fatalf("dry run: %+v, %v; want would be taken over at epoch 2", res, err)
	}
	w.wantTargets(a.ENI)

	// a stopped: b takes over, epoch 2, every table points at b.
	w.moto.ActionCounts()
	res, err = w.claim(b, nil)
	if err != nil || res.Action != "taken over" || res.PreviousHolder != a.ID || res.Epoch != 2 {
		t.Fatalf("takeover: %+v, %v; want taken over from %s at epoch 2", res, err, a.ID)
	}
	counts, _ = w.moto.ActionCounts()
	t.Logf("requests of a takeover: %v", counts)
	if counts["ec2:ReplaceRoute"] != 2 || counts["ec2:CreateRoute"] != 0 {
		t.Errorf("takeover: %v, want 2 ReplaceRoute, no CreateRoute", counts)
	}
	w.wantTargets(b.ENI)
	if en := w.entry(); en.Holder != b.ID || en.Epoch != 2 {
		t.Errorf("entry after the takeover %+v, want holder %s epoch 2", en, b.ID)
	}

	// Release on a (not the holder): nothing; on b: routes deleted,
	// entry free, epoch kept; the next claim counts from it.
	ea, _ := w.engine(a)
	if msg, err := ea.ReleaseOverlay(context.Background(), "vpn", w.spec(), w.store(), false); err != nil || !strings.Contains(msg, "nothing to do") || !strings.Contains(msg, b.ID) {
		t.Errorf("release on a: %q, %v; want nothing to do naming %s", msg, err, b.ID)
	}
	eb, _ := w.engine(b)
	if msg, err := eb.ReleaseOverlay(context.Background(), "vpn", w.spec(), w.store(), true); err != nil || !strings.HasPrefix(msg, "would release") {
		t.Errorf("release --dry-run on b: %q, %v", msg, err)
	}
	w.wantTargets(b.ENI)
	if msg, err := eb.ReleaseOverlay(context.Background(), "vpn", w.spec(), w.store(), false); err != nil || !strings.HasPrefix(msg, "released") {
		t.Fatalf("release on b: %q, %v", msg, err)
	}
	if got := w.targets(); !slices.Equal(got, []string{"", ""}) {
		t.Errorf("routes after the release: %v, want none", got)
	}
	if en := w.entry(); en.Holder != "" || en.Epoch != 2 {
		t.Errorf("entry after the release %+v, want no holder, epoch 2", en)
	}
	st, err := eb.Overlay(context.Background(), "vpn", w.spec(), w.store(), true)
	if err != nil || st.Holder != "" || st.Epoch != 2 || len(st.Tables) != 2 || st.Tables[0].ENI != "" {
		t.Errorf("status after the release: %+v, %v", st, err)
	}
	res, err = w.claim(w.inst[2], nil)
	if err != nil || res.Action != "claimed" || res.Epoch != 3 {
		t.Fatalf("claim after the release: %+v, %v; want claimed at epoch 3", res, err)
	}
	w.wantTargets(w.inst[2].ENI)
	st, err = eb.Overlay(context.Background(), "vpn", w.spec(), w.store(), true)
	if err != nil || st.Holder != w.inst[2].ID || !st.Consistent() || st.Health == nil || st.Health.Down {
		t.Errorf("status: %+v, %v; want holder %s, consistent, healthy", st, err, w.inst[2].ID)
	}
}

func TestOverlayRefusesBeforeAnyWrite(t *testing.T) {
	w := newOverlayWorld(t, 1)
	a := w.inst[0]
	w.sourceDestCheck(a.ENI, true)
	_, err := w.claim(a, nil)
	want := fmt.Sprintf("interface %s of %s has source/destination checking on: an overlay address reaches it only with it off: aws ec2 modify-network-interface-attribute --network-interface-id %s --no-source-dest-check", a.ENI, a.ID, a.ENI)
	if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("source/dest check on: %v, want exit 2 %q", err, want)
	}
	w.sourceDestCheck(a.ENI, false)
	e, _ := w.engine(a)
	spec := w.spec()
	spec.Overlay.Address = "127.0.1.99" // inside the VPC
	_, err = e.ClaimOverlay(context.Background(), Request{Role: "vpn", Spec: spec}, w.store())
	if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), "use private_address for an address inside the VPC") {
		t.Errorf("an address inside the VPC: %v, want exit 2 saying to use private_address", err)
	}
	spec = w.spec()
	spec.Overlay.RouteTables = []string{w.tables[0], "rtb-0123456789abcdef0"}
	_, err = e.ClaimOverlay(context.Background(), Request{Role: "vpn", Spec: spec}, w.store())
	if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), "rtb-0123456789abcdef0") {
		t.Errorf("a route table that does not exist: %v, want exit 2 naming it", err)
	}
	if _, err := e.ClaimOverlay(context.Background(), Request{Role: "vpn", Spec: w.spec()}, nil); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("no role table: %v, want exit 2", err)
	}
	if got := w.targets(); !slices.Equal(got, []string{"", ""}) {
		t.Errorf("routes after the refusals: %v, want none", got)
	}
	if _, _, err := (&table.Store{API: w.admS3, Bucket: "fleet-config", Key: "roles.json"}).Get(context.Background()); !errors.Is(err, table.ErrNotFound) {
		t.Errorf("the role table after the refusals: %v, want none written", err)
	}
}

// TestOverlayRace: 8 standbys claim one overlay address at once, round
// after round, the holder stopped before each: exactly one holder in the
// table, every route table pointing at its interface, the 7 others
// refused naming it.
func TestOverlayRace(t *testing.T) {
	const standbys, rounds = 8, 4
	w := newOverlayWorld(t, standbys+1)
	holder := w.inst[standbys]
	if _, err := w.claim(holder, nil); err != nil {
		t.Fatal(err)
	}
	alive := w.inst[:standbys]
	for round := range rounds {
		w.setState(holder.ID, true)
		w.moto.ActionCounts()
		type result struct {
			i   testenv.Instance
			res *OverlayResult
			err error
		}
		results := make([]result, len(alive))
		var wg sync.WaitGroup
		for k, i := range alive {
			wg.Go(func() {
				res, err := w.claim(i, nil)
				results[k] = result{i, res, err}
			})
		}
		wg.Wait()
		counts, refused := w.moto.ActionCounts()
		var winners []result
		var failed []string
		for _, r := range results {
			switch {
			case r.err == nil && r.res.Action == "taken over":
				winners = append(winners, r)
			case exitcode.Of(r.err) == exitcode.Refused:
			default:
				failed = append(failed, fmt.Sprintf("%s: %+v %v", r.i.ID, r.res, r.err))
			}
		}
		if len(winners) != 1 || len(failed) > 0 {
			t.Fatalf("round %d: %d winners, failures %v; want one winner, the others refused", round, len(winners), failed)
		}
		win := winners[0]
		for _, r := range results {
			if r.err != nil && !strings.Contains(r.err.Error(), win.i.ID) {
				t.Errorf("round %d: %s refused without naming the winner %s: %v", round, r.i.ID, win.i.ID, r.err)
			}
		}
		w.wantTargets(win.i.ENI)
		if en := w.entry(); en.Holder != win.i.ID || en.Epoch != int64(round+2) {
			t.Errorf("round %d: entry %+v, want holder %s epoch %d", round, en, win.i.ID, round+2)
		}
		t.Logf("round %d: %s won (epoch %d); requests of the 8 claimers: %v; refused by the strict layer: %d", round, win.i.ID, win.res.Epoch, counts, refused)
		alive = slices.DeleteFunc(slices.Clone(alive), func(i testenv.Instance) bool { return i.ID == win.i.ID })
		alive = append(alive, holder) // the stopped holder comes back as a standby
		w.setState(holder.ID, false)
		holder = win.i
	}
}

// TestOverlayPermissions: check asks every call of an overlay claim with
// DryRun (the gate judges them with the instance's policy: all allowed on
// the role's route tables), and says when the address cannot be routed
// here.
func TestOverlayPermissions(t *testing.T) {
	w := newOverlayWorld(t, 1)
	e, _ := w.engine(w.inst[0])
	perms, err := e.Permissions(context.Background(), w.spec())
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	for _, p := range perms {
		asked[p.Action]++
		if !p.Allowed {
			t.Errorf("check: %+v, want allowed", p)
		}
	}
	for _, a := range OverlayActions {
		want := 1
		if strings.HasSuffix(a, "Route") {
			want = len(w.tables)
		}
		if asked[a] != want {
			t.Errorf("check asked %s %d times, want %d", a, asked[a], want)
		}
	}
	if got := w.targets(); !slices.Equal(got, []string{"", ""}) {
		t.Errorf("routes after check: %v, want none (dry runs)", got)
	}
	w.sourceDestCheck(w.inst[0].ENI, true)
	perms, err = e.Permissions(context.Background(), w.spec())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(perms, func(p Permission) bool { return strings.HasPrefix(p.Action, "overlay address") })
	if i < 0 || perms[i].Allowed || !strings.Contains(perms[i].Detail, "--no-source-dest-check") {
		t.Errorf("check with source/destination checking on: %+v, want a line saying to turn it off", perms)
	}
}

// TestOverlayRepairsAfterTableWrite: the table names this instance (a
// winner that stopped between its table write and its routes) and no
// route exists: its next claim creates them, already held, no new epoch.
func TestOverlayRepairsAfterTableWrite(t *testing.T) {
	w := newOverlayWorld(t, 1)
	a := w.inst[0]
	if _, err := w.store().Update(context.Background(), func(d *table.Document) (bool, error) {
		return d.Set(table.Entry{Name: "vpn", PrivateIP: overlayAddr, Holder: a.ID, Epoch: 7})
	}); err != nil {
		t.Fatal(err)
	}
	res, err := w.claim(a, nil)
	if err != nil || res.Action != "already held" || res.Epoch != 7 || !slices.Equal(res.Repaired, w.tables) {
		t.Fatalf("claim after the table write alone: %+v, %v; want already held at epoch 7, both tables repaired", res, err)
	}
	w.wantTargets(a.ENI)
	if en := w.entry(); en.Holder != a.ID || en.Epoch != 7 {
		t.Errorf("entry %+v, want holder %s epoch 7 (unchanged)", en, a.ID)
	}
}
