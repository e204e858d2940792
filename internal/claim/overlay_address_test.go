package claim

import (
	"testing"
	"time"
)

// TestOverlayStatusAsAddress: the overlay seen as an EIP's Address for
// the watcher: the table's entry names the holder (routes that point
// elsewhere do not), the routes give its interface, the entry its epoch
// and since when; with no holder in the entry, the routes' instance is
// the holder (as a claim decides); nothing anywhere is free.
func TestOverlayStatusAsAddress(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	route := func(rtb, eni, inst string) TableRoute { return TableRoute{RouteTable: rtb, ENI: eni, Instance: inst} }
	for _, c := range []struct {
		name                    string
		s                       OverlayStatus
		holder, eni, assoc, tag string
		claimedAt               bool
		free                    bool
	}{
		{name: "held", s: OverlayStatus{Holder: "i-a", Epoch: 7, UpdatedAt: at, Tables: []TableRoute{route("rtb-1", "eni-a", "i-a"), route("rtb-2", "eni-a", "i-a")}},
			holder: "i-a", eni: "eni-a", assoc: "eni-a", tag: "7", claimedAt: true},
		{name: "drift: the entry leads", s: OverlayStatus{Holder: "i-a", Epoch: 7, UpdatedAt: at, Tables: []TableRoute{route("rtb-1", "eni-b", "i-b"), route("rtb-2", "eni-a", "i-a")}},
			holder: "i-a", eni: "eni-a", assoc: "eni-a", tag: "7", claimedAt: true},
		{name: "written, no route yet", s: OverlayStatus{Holder: "i-a", Epoch: 8, Tables: []TableRoute{route("rtb-1", "eni-b", "i-b"), route("rtb-2", "", "")}},
			holder: "i-a", assoc: "i-a", tag: "8"},
		{name: "entry free, routes left", s: OverlayStatus{Epoch: 3, Tables: []TableRoute{route("rtb-1", "", ""), route("rtb-2", "eni-b", "i-b")}},
			holder: "i-b", eni: "eni-b", assoc: "eni-b", tag: "3"},
		{name: "free", s: OverlayStatus{Tables: []TableRoute{route("rtb-1", "", "")}}, free: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := c.s.AsAddress()
			if a.Holder != c.holder || a.ENI != c.eni || a.AssociationID != c.assoc || a.Tags[TagEpoch] != c.tag || a.Free() != c.free {
				t.Errorf("AsAddress = %+v, want holder %q eni %q association %q epoch tag %q free %v", a, c.holder, c.eni, c.assoc, c.tag, c.free)
			}
			got, ok := a.ClaimedAt()
			if ok != c.claimedAt || ok && !got.Equal(at) {
				t.Errorf("ClaimedAt = %v, %v; want %v (the entry's update)", got, ok, c.claimedAt)
			}
			if a.AllocationID != "" || a.PublicIP != "" || a.PrivateIP != "" {
				t.Errorf("AsAddress = %+v: no EIP, and the holder's IP is not the routes' to say", a)
			}
		})
	}
}
