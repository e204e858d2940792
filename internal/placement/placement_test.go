package placement

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAddr(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"203.0.113.10", "203.0.113.10", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"203.0.113", "", `the public_ip EC2 reported, "203.0.113", is not an IP address`},
		{"ec2-203-0-113-10", "", `the public_ip EC2 reported, "ec2-203-0-113-10", is not an IP address`},
	} {
		a, err := Addr("public_ip", tt.in)
		if got := String(a); got != tt.want {
			t.Errorf("Addr(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Addr(%q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestPrivate(t *testing.T) {
	eipOnly := Placement{PrivateIP: netip.MustParseAddr("10.0.1.5")}
	if got := eipOnly.Private(); got != eipOnly.PrivateIP {
		t.Errorf("Private() of a role without private_address = %v, want the EIP's private IP %v", got, eipOnly.PrivateIP)
	}
	both := Placement{PrivateIP: netip.MustParseAddr("10.0.1.5"), PrivateAddress: netip.MustParseAddr("10.0.1.50")}
	if got := both.Private(); got != both.PrivateAddress {
		t.Errorf("Private() with private_address = %v, want it, %v", got, both.PrivateAddress)
	}
	overlay := Placement{PrivateIP: netip.MustParseAddr("10.0.1.5"), OverlayAddress: netip.MustParseAddr("192.168.100.10")}
	if got := overlay.Private(); got != overlay.OverlayAddress {
		t.Errorf("Private() with an overlay address = %v, want it, %v", got, overlay.OverlayAddress)
	}
	if got := (Placement{}).Private(); got.IsValid() {
		t.Errorf("Private() of nothing = %v, want the zero Addr", got)
	}
}
