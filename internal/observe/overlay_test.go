package observe

import (
	"context"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/table"
)

// memTable is a role table read from memory, counting its reads.
type memTable struct {
	doc   table.Document
	reads int
}

func (m *memTable) ReadSnapshot(context.Context) (*table.Snapshot, error) {
	m.reads++
	return &table.Snapshot{Doc: &m.doc}, nil
}

// routeTable adds a route table whose routes send each destination to an
// interface (instance "" when EC2 does not name it).
func (w *world) routeTable(id string, routes map[string][2]string) {
	rt := types.RouteTable{RouteTableId: aws.String(id), VpcId: aws.String("vpc-1")}
	rt.Routes = append(rt.Routes, types.Route{DestinationCidrBlock: aws.String("10.0.0.0/16"), GatewayId: aws.String("local")})
	for dest, to := range routes {
		r := types.Route{DestinationCidrBlock: aws.String(dest), NetworkInterfaceId: aws.String(to[0]), State: types.RouteStateActive}
		if to[1] != "" {
			r.InstanceId = aws.String(to[1])
		}
		rt.Routes = append(rt.Routes, r)
	}
	w.f.tables = append(w.f.tables, rt)
}

// TestFleetOverlays: the overlay roles' route tables are read in one
// DescribeRouteTables and the role table once, whatever the number of
// roles; each role's holder is its entry's (else the routes'), each
// table not pointing at it is drift, and a table that does not exist is
// its role's problem alone.
func TestFleetOverlays(t *testing.T) {
	w := newWorld()
	tbl := &memTable{doc: table.Document{Version: 1, Roles: map[string]table.Entry{}}}
	// web: entry and both routes on its healthy holder.
	webH, webENI := w.instance("web", types.InstanceStateNameRunning)
	w.instance("web", types.InstanceStateNameRunning)
	tbl.doc.Roles["web"] = table.Entry{Name: "web", Holder: webH, Epoch: 3}
	// api: entry on its holder (stopped, untagged: read by interface), one
	// route drifted to the standby.
	apiH, apiENI := w.instance("", types.InstanceStateNameStopped)
	apiS, apiSENI := w.instance("api", types.InstanceStateNameRunning)
	tbl.doc.Roles["api"] = table.Entry{Name: "api", Holder: apiH, Epoch: 7}
	// free: no entry, no route. lost: a table that does not exist.
	w.instance("free", types.InstanceStateNameRunning)
	w.instance("lost", types.InstanceStateNameRunning)
	w.routeTable("rtb-a", map[string][2]string{"192.168.0.1/32": {webENI, webH}, "192.168.0.2/32": {apiENI, ""}})
	w.routeTable("rtb-b", map[string][2]string{"192.168.0.1/32": {webENI, ""}, "192.168.0.2/32": {apiSENI, apiS}})
	w.routeTable("rtb-c", nil)
	roles := map[string]*config.Role{
		"web":  {Overlay: &config.Overlay{Address: "192.168.0.1", RouteTables: []string{"rtb-a", "rtb-b"}}},
		"api":  {Overlay: &config.Overlay{Address: "192.168.0.2", RouteTables: []string{"rtb-a", "rtb-b"}}},
		"free": {Overlay: &config.Overlay{Address: "192.168.0.3", RouteTables: []string{"rtb-c"}}},
		"lost": {Overlay: &config.Overlay{Address: "192.168.0.4", RouteTables: []string{"rtb-c", "rtb-gone"}}},
	}
	o := &Observer{EC2: w.f, Table: tbl}
	f, err := o.Fleet(t.Context(), roles)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.reads != 1 || w.f.calls["DescribeRouteTables"] != 1 {
		t.Errorf("%d role table reads, %d DescribeRouteTables; want one each", tbl.reads, w.f.calls["DescribeRouteTables"])
	}
	web := f.Roles["web"].Observed()
	if p := web.Private; p == nil || !p.Overlay || !p.Held || p.Holder.Instance != webH || p.Holder.State != "running" || len(p.Drift) != 0 {
		t.Errorf("web: %+v, want held by %s, no drift", p, webH)
	}
	api := f.Roles["api"]
	if v := api.Overlay; v.Holder.Instance != apiH || v.Holder.State != "stopped" || !reflect.DeepEqual(v.Drift, []string{"rtb-b"}) || v.ENI != apiENI || v.Entry.Epoch != 7 {
		t.Errorf("api: %+v, want held by %s (stopped) on %s, rtb-b drifted", v, apiH, apiENI)
	}
	if got := api.Overlay.Routes[1].Instance; got != apiS {
		t.Errorf("api's rtb-b route names %q, want %s", got, apiS)
	}
	if m := decide.Plan(api.Observed(), decide.Situation{}); len(m) != 1 || m[0].Action != decide.TakeOver || m[0].Candidate != apiS {
		t.Errorf("api's plan %+v, want taken over for %s", m, apiS)
	}
	if p := f.Roles["free"].Observed().Private; p.Held || p.Holder.Instance != "" || len(p.Drift) != 0 {
		t.Errorf("free: %+v, want free", p)
	}
	if err := f.Roles["lost"].Err; err == nil {
		t.Errorf("lost: no error for route table rtb-gone")
	}
	// Without a role table the overlay roles cannot be observed, the
	// others can.
	f, err = (&Observer{EC2: w.f}).Fleet(t.Context(), roles)
	if err != nil || f.Roles["web"].Err == nil {
		t.Errorf("no role table: %v, web %+v; want web's problem", err, f.Roles["web"])
	}
}
