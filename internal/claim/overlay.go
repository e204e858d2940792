package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/table"
)

// A role's overlay address (overlay) lies outside the VPC's CIDR and is
// routed as a /32 to its holder's interface in every listed route table
// (CreateRoute / ReplaceRoute with NetworkInterfaceId), which works across
// subnets and Availability Zones. The interface needs source/destination
// checking off.
//
// ReplaceRoute has no condition: two writers race, and the last one wins.
// The arbiter is the role table's compare-and-swap (internal/table: a
// conditional write on the S3 object's ETag, atomic on S3): the claimer
// reads the table's entry for the role and the routes, decides by the
// takeover rule on the observed holder (the entry's holder, else the
// instance the routes point at), then writes the entry with itself as
// holder and the new epoch, on the ETag it read. Only the writer of the
// new epoch changes the routes; a loser re-reads, sees the winner, and is
// refused naming it (exit 4 when the winner is healthy). The winner then
// points every listed table at its interface and reads them back: the
// result says which did not end pointing here.
//
// The table's entry is the one home of the overlay's epoch (no tag):
// routes have no tags a claim could compare on, and the entry is what the
// compare-and-swap writes. The table publisher later writes the whole
// entry (names, public address) with the same holder and epoch.
//
// An entry that names this instance while some tables point elsewhere (a
// winner that stopped between its write and its routes, or drift) is
// repaired by a claim without a new epoch: "already held", routes
// repaired.

// RoleTable is the role table as the overlay's arbiter uses it;
// *table.Store has it.
type RoleTable interface {
	ReadSnapshot(ctx context.Context) (*table.Snapshot, error)
	UpdateFrom(ctx context.Context, first *table.Snapshot, change func(*table.Document) (bool, error)) (bool, error)
	URL() string
}

// TableRoute is one listed route table's /32 route of the overlay
// address.
type TableRoute struct {
	RouteTable string `json:"route_table"`
	// ENI is the interface the route points at, "" when the table has no
	// route of the address; Instance its instance when known.
	ENI      string `json:"eni_id,omitempty"`
	Instance string `json:"instance,omitempty"`
	// State is EC2's route state: active, or blackhole (the interface is
	// gone).
	State string `json:"state,omitempty"`
	// Here says that the route points at the claimer's interface.
	Here bool `json:"here"`
}

// OverlayResult says what a claim of a role's overlay address did.
type OverlayResult struct {
	Role    string
	Address string
	// InstanceID and ENI are this instance and its interface the routes
	// point at.
	InstanceID, ENI string
	// Action is as a Result's: "already held", "claimed", "taken over",
	// "would be claimed", "would be taken over".
	Action string
	// Repaired lists the tables an "already held" claim pointed here
	// again (drift, or a winner that stopped before its routes).
	Repaired []string
	// PreviousHolder is the instance that held the address before, Why
	// the reason it could be taken.
	PreviousHolder, Why string
	// Epoch is the role's epoch: the table entry's, one above it for a
	// move.
	Epoch         int64
	EpochProblems []string
	Fence         *Fence
	// Tables are the listed route tables as read back.
	Tables []TableRoute
}

// overlayState is one look at a role's overlay address: the table's entry
// and the listed tables' routes.
type overlayState struct {
	snap   *table.Snapshot
	entry  table.Entry // zero when the role has no (valid) entry
	routes []TableRoute
}

// routeHolder is the instance the routes point at (the first one that
// does), and its interface; "" when none does.
func (st *overlayState) routeHolder() (instance, eni string) {
	for _, r := range st.routes {
		if r.ENI != "" {
			return r.Instance, r.ENI
		}
	}
	return "", ""
}

// notHere lists the tables whose route does not point at eni.
func notHere(routes []TableRoute, eni string) []string {
	var out []string
	for _, r := range routes {
		if r.ENI != eni {
			out = append(out, r.RouteTable)
		}
	}
	return out
}

// overlayDest is the route's destination: the address as a /32.
func overlayDest(addr string) string { return addr + "/32" }

// ClaimOverlay routes the role's overlay address to this instance's
// interface (the one the EIP goes to: interface, or device 0) in every
// listed route table, as the request's policy allows, with tbl, the role
// table, as the arbiter; it reads the routes back.
func (e *Engine) ClaimOverlay(ctx context.Context, req Request, tbl RoleTable) (*OverlayResult, error) {
	o := req.Spec.Overlay
	if tbl == nil {
		return nil, noRepository(req.Role)
	}
	log := e.Log.With("role", req.Role, "instance_id", e.InstanceID, "overlay_address", o.Address)
	tgt, err := e.target(ctx, req.Spec)
	if err != nil {
		return nil, err
	}
	log = log.With("eni_id", tgt.eni)
	// Whether the address may be routed here and who holds it do not
	// depend on each other.
	var (
		st          *overlayState
		stErr, vErr error
		wg          sync.WaitGroup
	)
	wg.Go(func() { st, stErr = e.lookOverlay(ctx, tbl, req.Role, o, tgt) })
	vErr = e.overlayRoutable(ctx, o, tgt)
	wg.Wait()
	if vErr != nil {
		return nil, vErr
	}
	if stErr != nil {
		return nil, stErr
	}
	return redecide(log, req.Role, "the overlay address "+o.Address, "another instance wrote the role table first", st,
		func() (*overlayState, error) { return e.lookOverlay(ctx, tbl, req.Role, o, tgt) },
		func(st *overlayState) (*OverlayResult, error) {
			return e.claimOverlayOne(ctx, log, req, tbl, tgt, st)
		})
}

// overlayRoutable checks, before anything is changed, what makes the
// address unreachable here: an address inside the VPC's CIDR (a secondary
// private IP's case), a listed table of another VPC, source/destination
// checking on the target interface. Each is a configuration error (exit
// 2) saying what to do.
func (e *Engine) overlayRoutable(ctx context.Context, o *config.Overlay, tgt *target) error {
	var (
		cidrs       []netip.Prefix
		check       bool
		cErr, sdErr error
		wg          sync.WaitGroup
	)
	wg.Go(func() { check, sdErr = e.sourceDestCheck(ctx, tgt) })
	cidrs, cErr = e.vpcCIDRs(ctx, tgt.vpc)
	wg.Wait()
	if cErr != nil {
		return cErr
	}
	if sdErr != nil {
		return sdErr
	}
	a, _ := netip.ParseAddr(o.Address)
	for _, c := range cidrs {
		if c.Contains(a) {
			return exitcode.With(exitcode.Usage, fmt.Errorf("overlay address %s is inside CIDR %s of VPC %s: an overlay address lies outside the VPC's CIDR (routed to the holder); use private_address for an address inside the VPC, or choose an address outside %s", o.Address, c, tgt.vpc, c))
		}
	}
	if check {
		return exitcode.With(exitcode.Usage, fmt.Errorf("interface %s of %s has source/destination checking on: an overlay address reaches it only with it off: aws ec2 modify-network-interface-attribute --network-interface-id %s --no-source-dest-check", tgt.eni, e.InstanceID, tgt.eni))
	}
	return nil
}

// sourceDestCheck reports whether the target interface checks sources and
// destinations: as DescribeInstances reported it, or, when it did not,
// as DescribeNetworkInterfaces does.
func (e *Engine) sourceDestCheck(ctx context.Context, tgt *target) (bool, error) {
	if tgt.sourceDestCheck != nil {
		return *tgt.sourceDestCheck, nil
	}
	enis, err := e.describeENIs(ctx, "describe interface "+tgt.eni, []types.Filter{{Name: aws.String("network-interface-id"), Values: []string{tgt.eni}}})
	if err != nil {
		return false, err
	}
	if len(enis) == 0 || enis[0].SourceDestCheck == nil {
		return false, fmt.Errorf("interface %s: EC2 did not report its source/destination checking", tgt.eni)
	}
	return *enis[0].SourceDestCheck, nil
}

// vpcCIDRs returns the IPv4 CIDR blocks associated with the VPC.
func (e *Engine) vpcCIDRs(ctx context.Context, vpc string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := e.retrier().Do(ctx, "ec2:DescribeVpcs", func(ctx context.Context) error {
		res, err := e.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpc}})
		if err != nil {
			return err
		}
		if len(res.Vpcs) == 0 {
			return retry.NotVisibleYet("VPC " + vpc + " not found")
		}
		out = nil
		v := res.Vpcs[0]
		blocks := []string{aws.ToString(v.CidrBlock)}
		for _, a := range v.CidrBlockAssociationSet {
			if a.CidrBlockState == nil || a.CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated {
				blocks = append(blocks, aws.ToString(a.CidrBlock))
			}
		}
		for _, b := range blocks {
			if p, err := netip.ParsePrefix(b); err == nil && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe the VPC %s: %w", vpc, err)
	}
	return out, nil
}

// lookOverlay reads the role's table entry and the listed tables' routes
// (each route's instance too, when EC2 did not say it).
func (e *Engine) lookOverlay(ctx context.Context, tbl RoleTable, role string, o *config.Overlay, tgt *target) (*overlayState, error) {
	st := &overlayState{}
	var (
		tErr error
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		st.snap, tErr = tbl.ReadSnapshot(ctx)
		if tErr == nil {
			st.entry = st.snap.Doc.Roles[role]
		}
	})
	routes, rErr := e.overlayRoutes(ctx, o, tgt)
	wg.Wait()
	if tErr != nil {
		return nil, fmt.Errorf("read the role table %s (the overlay's compare-and-swap): %w", tbl.URL(), tErr)
	}
	if rErr != nil {
		return nil, rErr
	}
	st.routes = routes
	return st, nil
}

// overlayRoutes reads the /32 route of the address in each listed table.
// A table of another VPC than the target interface's is a configuration
// error (exit 2), as a table that does not exist.
func (e *Engine) overlayRoutes(ctx context.Context, o *config.Overlay, tgt *target) ([]TableRoute, error) {
	var rts []types.RouteTable
	err := e.retrier().Do(ctx, "ec2:DescribeRouteTables", func(ctx context.Context) error {
		out, err := e.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: o.RouteTables})
		if retry.Code(err) == "InvalidRouteTableID.NotFound" {
			return exitcode.With(exitcode.Usage, fmt.Errorf("%w: fix overlay.route_tables (aws ec2 describe-route-tables --filters Name=vpc-id,Values=%s lists this VPC's)", err, tgt.vpc))
		}
		if err != nil {
			return err
		}
		rts = out.RouteTables
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe the route tables %s: %w", strings.Join(o.RouteTables, ", "), err)
	}
	dest := overlayDest(o.Address)
	routes := make([]TableRoute, 0, len(o.RouteTables))
	for _, id := range o.RouteTables {
		i := slices.IndexFunc(rts, func(rt types.RouteTable) bool { return aws.ToString(rt.RouteTableId) == id })
		if i < 0 {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("route table %s does not exist: fix overlay.route_tables", id))
		}
		if vpc := aws.ToString(rts[i].VpcId); vpc != tgt.vpc {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("route table %s is of VPC %s, and interface %s of this instance of VPC %s: a route points only at an interface of its table's VPC; fix overlay.route_tables", id, vpc, tgt.eni, tgt.vpc))
		}
		r := TableRoute{RouteTable: id}
		for _, rt := range rts[i].Routes {
			if aws.ToString(rt.DestinationCidrBlock) == dest {
				r.ENI, r.Instance, r.State = aws.ToString(rt.NetworkInterfaceId), aws.ToString(rt.InstanceId), string(rt.State)
			}
		}
		r.Here = r.ENI == tgt.eni
		routes = append(routes, r)
	}
	// EC2 names the instance of an instance's interface; when it does
	// not, the interface's attachment does (one read per interface).
	known := map[string]string{tgt.eni: e.InstanceID}
	for i := range routes {
		r := &routes[i]
		if r.ENI == "" || r.Instance != "" {
			continue
		}
		if id, ok := known[r.ENI]; ok {
			r.Instance = id
			continue
		}
		if slices.Contains(tgt.enis, r.ENI) {
			r.Instance = e.InstanceID
		} else if id, err := e.eniInstance(ctx, r.ENI); err == nil {
			r.Instance = id
			if id == e.InstanceID {
				e.forgetSelf() // an interface of this instance it did not know: attached since
			}
		}
		known[r.ENI] = r.Instance
	}
	return routes, nil
}

// claimOverlayOne decides on one look and acts.
func (e *Engine) claimOverlayOne(ctx context.Context, log *slog.Logger, req Request, tbl RoleTable, tgt *target, st *overlayState) (*OverlayResult, error) {
	addr := req.Spec.Overlay.Address
	res := &OverlayResult{Role: req.Role, Address: addr, InstanceID: e.InstanceID, ENI: tgt.eni, Tables: st.routes}
	if st.entry.Holder == e.InstanceID {
		res.Action, res.Epoch = "already held", st.entry.Epoch
		res.Repaired = notHere(st.routes, tgt.eni)
		if len(res.Repaired) == 0 {
			log.Info("overlay address already held by this instance: nothing to do")
			return res, nil
		}
		if req.DryRun {
			return res, nil
		}
		// Drift, or this instance stopped between its table write and
		// its routes: no new epoch, the routes are repaired.
		log.Info("overlay address held by this instance, some routes point elsewhere: repairing them", "route_tables", res.Repaired)
		return e.routeOverlay(ctx, log, res, tgt)
	}
	holder, holderENI := st.entry.Holder, ""
	if holder == "" {
		holder, holderENI = st.routeHolder()
	}
	switch {
	case holder == "" && holderENI == "", holder == e.InstanceID:
		res.Action, res.Why = "claimed", "the address was free"
		if holder == e.InstanceID {
			res.Why = "the routes pointed at this instance, the table named no holder"
		}
	default:
		name := orNone(holder)
		if holder == "" {
			name = holderENI
		}
		res.PreviousHolder = name
		why, f, err := e.judgeTakeover(ctx, log, req, "overlay address "+addr, holder, "", name)
		if err != nil {
			return nil, err
		}
		res.Action, res.Why, res.Fence = "taken over", why, f
	}
	// A move takes the epoch above the entry's (the overlay has no tag:
	// the entry is its epoch's one home).
	n, eerr := epoch.Next(st.entry.Epoch)
	res.Epoch = n
	if eerr != nil {
		res.EpochProblems = append(res.EpochProblems, eerr.Error())
		log.Warn("epoch: "+eerr.Error(), "epoch", n)
	}
	if req.DryRun {
		res.Action = "would be " + res.Action
		return res, nil
	}
	if err := e.arbitrate(ctx, log, req, tbl, st, res); err != nil {
		return nil, err
	}
	log.Info("the role table names this instance the overlay's holder", "action", res.Action, "epoch", res.Epoch, "reason", res.Why)
	// The table now says this instance holds the address: its routes are
	// finished even if ctx ends now.
	fctx, cancel := e.Finishing(ctx)
	defer cancel()
	return e.routeOverlay(fctx, log, res, tgt)
}

// judgeTakeover applies the takeover rule (decide.Takeover) to holder, on
// facts read now when the rule needs them (as claimOne does for an EIP),
// and fences it when the role says so (fence: stop): the one home of that
// sequence for a secondary private IP and an overlay address. what names
// the address in messages, name the holder; holderIP is the address its
// health check dials ("": the instance's primary private IP). It returns
// why the address may be taken and the fence made, or the refusal (exit
// 4, ErrRefused).
func (e *Engine) judgeTakeover(ctx context.Context, log *slog.Logger, req Request, what, holder, holderIP, name string) (string, *Fence, error) {
	v := decide.Verdict{}
	var facts *decide.Holder
	if decide.NeedsFacts(req.Spec.Takeover, req.Force, req.Spec.EffectiveFence()) {
		h, err := e.health(ctx, holder, holderIP, req.Spec.HealthCheck)
		if err != nil {
			return "", nil, err
		}
		v, facts = decide.Verdict{Down: h.Down, Why: h.Why}, &h.Facts
	}
	allow, why := decide.Takeover(req.Spec.Takeover, req.Force, v)
	switch {
	case !allow && req.Spec.EffectiveTakeover() == config.TakeoverNever:
		return "", nil, exitcode.With(exitcode.Refused, fmt.Errorf("%w: %s is held by %s and takeover is never: release it there first, or use --force", ErrRefused, what, name))
	case !allow:
		return "", nil, exitcode.With(exitcode.Refused, fmt.Errorf("%w: %s is held by %s, which is healthy (%s): fail over with --force only if you are sure it is not serving", ErrRefused, what, name, why))
	}
	if facts == nil || req.Spec.EffectiveFence() != config.FenceStop {
		return why, nil, nil
	}
	stop, fwhy := decide.Fence(req.Spec.EffectiveFence(), req.Spec.Takeover, req.Force, *facts)
	if !stop {
		log.Info("no fence", "holder", name, "reason", fwhy)
		return why, nil, nil
	}
	f, err := e.fence(ctx, log, req, what, holder, fwhy)
	if err != nil {
		return "", nil, err
	}
	return why, f, nil
}

// arbitrate writes the role's entry naming this instance the holder with
// res's epoch, compare-and-swap on the table as st read it: errRaced when
// another writer changed the role's entry since (decide again), nil once
// the table says so.
func (e *Engine) arbitrate(ctx context.Context, log *slog.Logger, req Request, tbl RoleTable, st *overlayState, res *OverlayResult) error {
	seen := st.entry
	_, err := tbl.UpdateFrom(ctx, st.snap, func(d *table.Document) (bool, error) {
		cur := d.Roles[req.Role]
		switch {
		case cur.Holder == e.InstanceID && cur.Epoch == res.Epoch:
			return false, nil // written (the read after the write)
		case cur.Holder != seen.Holder || cur.Epoch != seen.Epoch:
			return false, errRaced
		}
		next := cur // the names and public address stay, for the table publisher to rewrite
		next.Name, next.PrivateIP, next.Holder, next.Epoch = req.Role, res.Address, e.InstanceID, res.Epoch
		next.UpdatedAt = e.clock().Now().UTC()
		if next.Names == nil {
			next.Names = req.Spec.HostNames()
		}
		return d.Set(next)
	})
	switch {
	case errors.Is(err, errRaced):
		return errRaced
	case err != nil:
		return fmt.Errorf("write role %s's entry in the role table %s (the overlay's compare-and-swap; no route was changed): %w", req.Role, tbl.URL(), err)
	}
	return nil
}

// routeOverlay points every listed table's /32 route of the address at
// the target interface (ReplaceRoute, or CreateRoute where there is
// none), all tables at once, then reads them back: every table must point
// here; the error (exit 1) names those that do not.
func (e *Engine) routeOverlay(ctx context.Context, log *slog.Logger, res *OverlayResult, tgt *target) (*OverlayResult, error) {
	dest := overlayDest(res.Address)
	errs := make([]error, len(res.Tables))
	var wg sync.WaitGroup
	for i, r := range res.Tables {
		if r.ENI == tgt.eni {
			continue
		}
		wg.Go(func() { errs[i] = e.pointRoute(ctx, r.RouteTable, dest, tgt.eni, r.ENI != "") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			log.Warn("could not point a route table at this instance", "route_table", res.Tables[i].RouteTable, "error_code", retry.Code(err), "error", err)
		}
	}
	tables, err := e.readBackOverlay(ctx, res, tgt)
	if tables != nil {
		res.Tables = tables
	}
	if err != nil {
		return res, errors.Join(append([]error{err}, errs...)...)
	}
	log.Info("every listed route table points at this instance", "route_tables", len(res.Tables))
	return res, nil
}

// pointRoute makes table's route of dest point at eni: ReplaceRoute when
// the table had one (exists), else CreateRoute; each falls back on the
// other when EC2 says the route is there after all, or not.
func (e *Engine) pointRoute(ctx context.Context, rtb, dest, eni string, exists bool) error {
	err := e.retrier().Do(ctx, "ec2:ReplaceRoute", func(ctx context.Context) error {
		var err error
		if exists {
			_, err = e.EC2.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: aws.String(dest), NetworkInterfaceId: aws.String(eni)})
			if routeMissing(err) {
				exists = false
				return retry.NotVisibleYet("no route of " + dest + " in " + rtb + ": creating it")
			}
			return err
		}
		_, err = e.EC2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: aws.String(dest), NetworkInterfaceId: aws.String(eni)})
		if retry.Code(err) == "RouteAlreadyExists" {
			exists = true
			return retry.NotVisibleYet("a route of " + dest + " exists in " + rtb + ": replacing it")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("route %s in %s to %s: %w", dest, rtb, eni, err)
	}
	return nil
}

// routeMissing reports whether ReplaceRoute answered that the table has
// no route of the destination: InvalidRoute.NotFound, or
// InvalidParameterValue "There is no route defined for … Use CreateRoute
// instead".
func routeMissing(err error) bool {
	switch retry.Code(err) {
	case "InvalidRoute.NotFound":
		return true
	case "InvalidParameterValue":
		return strings.Contains(err.Error(), "no route")
	}
	return false
}

// readBackOverlay reads the listed tables until every one points at the
// target interface (EC2 is eventually consistent), within the finishing
// bound; past it, or when a table points at another interface (another
// claimer's), the error names the tables that do not point here.
func (e *Engine) readBackOverlay(ctx context.Context, res *OverlayResult, tgt *target) ([]TableRoute, error) {
	rctx, cancel := context.WithTimeout(ctx, e.finishTimeout())
	defer cancel()
	var routes []TableRoute
	o := &config.Overlay{Address: res.Address}
	for _, r := range res.Tables {
		o.RouteTables = append(o.RouteTables, r.RouteTable)
	}
	err := e.retrier().Do(rctx, "ec2:DescribeRouteTables", func(ctx context.Context) error {
		var err error
		if routes, err = e.overlayRoutes(ctx, o, tgt); err != nil {
			return err
		}
		if len(notHere(routes, tgt.eni)) > 0 {
			return retry.NotVisibleYet("not every route table points at " + tgt.eni + " yet")
		}
		return nil
	})
	if err == nil {
		return routes, nil
	}
	if routes == nil {
		return nil, exitcode.With(exitcode.Failed, fmt.Errorf("read back the routes of %s: %w", res.Address, err))
	}
	var what []string
	for _, r := range routes {
		if !r.Here {
			what = append(what, fmt.Sprintf("%s -> %s", r.RouteTable, orNone(r.Instance)+" ("+dashIfNone(r.ENI)+")"))
		}
	}
	return routes, exitcode.With(exitcode.Failed, fmt.Errorf("the overlay address %s is not routed here (%s) in every listed table: %s; the role table names this instance: run `eipclaim --role %s` again to repair them, and see `eipclaim status`",
		res.Address, tgt.eni, strings.Join(what, ", "), res.Role))
}

// noRepository is the error of an overlay role without a role table.
func noRepository(role string) error {
	return exitcode.With(exitcode.Usage, fmt.Errorf("role %s has an overlay address and the configuration no repository: an overlay role needs repository: its compare-and-swap (set repository: s3://BUCKET/KEY)", role))
}

// listOr joins ids, or says none.
func listOr(ids []string, none string) string {
	if len(ids) == 0 {
		return none
	}
	return strings.Join(ids, ", ")
}

func dashIfNone(s string) string {
	if s == "" {
		return "no route"
	}
	return s
}

// SyncEpoch sets the result's epoch to n when n is greater (a role with an
// EIP and an overlay address has one epoch: the greater of the two
// claims'); the table publisher records it.
func (r *OverlayResult) SyncEpoch(n int64) {
	r.Epoch = max(r.Epoch, n)
}

// ReleaseOverlay stops this instance serving the role's overlay address:
// it deletes the listed tables' routes of the address that point at this
// instance's interfaces (never another's), then marks the role's entry
// free (no holder, the epoch kept for the next claim) by compare-and-swap
// when it names this instance. Routes go first: while the entry names
// this instance, no other claimer changes the routes unless it takes the
// role over. It returns what it did.
func (e *Engine) ReleaseOverlay(ctx context.Context, role string, spec *config.Role, tbl RoleTable, dryRun bool) (string, error) {
	o := spec.Overlay
	if tbl == nil {
		return "", noRepository(role)
	}
	tgt, err := e.target(ctx, &config.Role{})
	if err != nil {
		return "", err
	}
	st, err := e.lookOverlay(ctx, tbl, role, o, tgt)
	if err != nil {
		return "", err
	}
	log := e.Log.With("role", role, "instance_id", e.InstanceID, "overlay_address", o.Address)
	var mine []TableRoute
	for _, r := range st.routes {
		if r.ENI != "" && slices.Contains(tgt.enis, r.ENI) {
			mine = append(mine, r)
		}
	}
	held := st.entry.Holder == e.InstanceID
	if len(mine) == 0 && !held {
		h, _ := st.routeHolder()
		if st.entry.Holder != "" {
			h = st.entry.Holder
		}
		if h == "" {
			return "nothing to do: the overlay address " + o.Address + " is routed nowhere and the role table names no holder", nil
		}
		return fmt.Sprintf("nothing to do: the overlay address %s is held by %s, not this instance", o.Address, h), nil
	}
	var ids []string
	for _, r := range mine {
		ids = append(ids, r.RouteTable)
	}
	if dryRun {
		return fmt.Sprintf("would release the overlay address %s: delete its routes to this instance in %s, and mark the role table's entry free", o.Address, listOr(ids, "no table")), nil
	}
	ctx, cancel := e.Finishing(ctx)
	defer cancel()
	var errs []error
	dest := overlayDest(o.Address)
	for _, r := range mine {
		err := e.retrier().Do(ctx, "ec2:DeleteRoute", func(ctx context.Context) error {
			_, err := e.EC2.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(r.RouteTable), DestinationCidrBlock: aws.String(dest)})
			if retry.Code(err) == "InvalidRoute.NotFound" {
				return nil // gone already (a retried call that went through)
			}
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete the route of %s in %s: %w", dest, r.RouteTable, err))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("release the overlay address %s (the role table still names this instance): %w", o.Address, errors.Join(errs...))
	}
	if held {
		_, err := tbl.UpdateFrom(ctx, st.snap, func(d *table.Document) (bool, error) {
			cur := d.Roles[role]
			if cur.Holder != e.InstanceID {
				return false, nil // taken over meanwhile, or freed
			}
			cur.Holder, cur.UpdatedAt = "", e.clock().Now().UTC()
			return d.Set(cur)
		})
		if err != nil {
			return "", fmt.Errorf("the routes of the overlay address %s are deleted; mark role %s's entry free in the role table %s: %w", o.Address, role, tbl.URL(), err)
		}
	}
	log.Info("released the overlay address", "route_tables", ids)
	return fmt.Sprintf("released the overlay address %s: deleted its routes in %s; the role table's entry names no holder (epoch %d kept)", o.Address, listOr(ids, "no table"), st.entry.Epoch), nil
}

// OverlayStatus is what `eipclaim status` shows of a role's overlay
// address.
type OverlayStatus struct {
	Address string `json:"address"`
	// Holder and Epoch are the role table's entry (the arbiter): "" when
	// it names no holder.
	Holder    string       `json:"holder,omitempty"`
	Epoch     int64        `json:"epoch"`
	UpdatedAt time.Time    `json:"updated_at,omitzero"`
	Tables    []TableRoute `json:"route_tables"`
	Health    *Health      `json:"health,omitempty"`
}

// Consistent reports whether every listed table points at one interface
// of the entry's holder.
func (s *OverlayStatus) Consistent() bool {
	if s.Holder == "" {
		return false
	}
	for _, r := range s.Tables {
		if r.Instance != s.Holder || r.ENI != s.Tables[0].ENI {
			return false
		}
	}
	return true
}

// Overlay reads the role's table entry and the listed tables' routes of
// its overlay address and, with withHealth, examines the holder as a
// claim would. It changes nothing.
func (e *Engine) Overlay(ctx context.Context, role string, spec *config.Role, tbl RoleTable, withHealth bool) (*OverlayStatus, error) {
	if tbl == nil {
		return nil, noRepository(role)
	}
	tgt, err := e.selfTarget(ctx)
	if err != nil {
		return nil, err
	}
	st, err := e.lookOverlay(ctx, tbl, role, spec.Overlay, tgt)
	if err != nil {
		e.forgetSelf()
		return nil, err
	}
	for i := range st.routes {
		st.routes[i].Here = false // "here" is a claimer's word
	}
	out := &OverlayStatus{Address: spec.Overlay.Address, Holder: st.entry.Holder, Epoch: st.entry.Epoch, UpdatedAt: st.entry.UpdatedAt, Tables: st.routes}
	if withHealth && out.Holder != "" {
		if out.Health, err = e.health(ctx, out.Holder, "", spec.HealthCheck); err != nil {
			return out, err
		}
	}
	return out, nil
}

// AsAddress is the overlay address seen as an EIP's Address, for the
// watcher, which follows either the same way: the holder the role table's
// entry names (the arbiter; else the instance the routes point at, as a
// claim decides), and the interface the routes point at for it;
// AssociationID that interface, else the holder (the failed looks count
// against one holder); the entry's epoch under the EIP's epoch tag, and
// its holder and update time under the audit tags (the entry is rewritten
// by its holder's publications: the time is when the holder claimed it,
// or later). PrivateIP is not known here (routes do not say it): the
// watcher learns the holder's primary private IP, the target of its
// health_check, from the instance. It has no AllocationID nor PublicIP.
func (s *OverlayStatus) AsAddress() Address {
	a := Address{Holder: s.Holder, Health: s.Health, Tags: map[string]string{}}
	if a.Holder == "" {
		for _, r := range s.Tables {
			if r.ENI != "" {
				a.Holder, a.ENI = r.Instance, r.ENI
				break
			}
		}
	}
	for _, r := range s.Tables {
		if a.ENI == "" && r.ENI != "" && r.Instance == a.Holder {
			a.ENI = r.ENI
		}
	}
	a.AssociationID = a.ENI
	if a.AssociationID == "" {
		a.AssociationID = a.Holder
	}
	if s.Epoch > 0 {
		a.Tags[TagEpoch] = strconv.FormatInt(s.Epoch, 10)
	}
	if s.Holder != "" && !s.UpdatedAt.IsZero() {
		a.Tags[TagHolder], a.Tags[TagClaimedAt] = s.Holder, s.UpdatedAt.UTC().Format(time.RFC3339)
	}
	return a
}
