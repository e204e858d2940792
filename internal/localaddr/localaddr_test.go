package localaddr

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		addr netip.Addr
		want string // in the error; "" for none
	}{
		{"private", netip.MustParseAddr("10.0.1.50"), ""},
		{"overlay outside the VPC", netip.MustParseAddr("192.168.100.10"), ""},
		{"public", netip.MustParseAddr("203.0.113.7"), ""},
		{"zero Addr", netip.Addr{}, "no address"},
		{"IPv6", netip.MustParseAddr("2001:db8::1"), "an IPv6 address"},
		{"IPv6 link-local", netip.MustParseAddr("fe80::1"), "an IPv6 address"},
		{"IPv4-mapped IPv6", netip.MustParseAddr("::ffff:10.0.1.50"), "write it as 10.0.1.50"},
		{"unspecified", netip.MustParseAddr("0.0.0.0"), "the unspecified address"},
		{"loopback", netip.MustParseAddr("127.0.0.2"), "a loopback address"},
		{"multicast", netip.MustParseAddr("224.0.0.251"), "a multicast address"},
		{"broadcast", netip.MustParseAddr("255.255.255.255"), "the broadcast address"},
		{"IMDS", netip.MustParseAddr("169.254.169.254"), "link-local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.addr)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want nil", tc.addr, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%s) = nil, want an error with %q", tc.addr, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check(%s) = %q, want it to contain %q", tc.addr, err, tc.want)
			}
			if got := exitcode.Of(err); got != exitcode.Usage {
				t.Errorf("Check(%s): exit code %d, want %d", tc.addr, got, exitcode.Usage)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Addr // valid when no error is wanted
		wantErr string
	}{
		{"10.0.1.50", netip.MustParseAddr("10.0.1.50"), ""},
		{"192.168.100.10", netip.MustParseAddr("192.168.100.10"), ""},
		{"10.0.1.50/32", netip.Addr{}, "without a prefix length (it is added as /32)"},
		{"10.0.1.0/24", netip.Addr{}, "without a prefix length"},
		{"10.0.1.50/", netip.Addr{}, "without a prefix length"},
		{"2001:db8::1", netip.Addr{}, "an IPv6 address"},
		{"2001:db8::/64", netip.Addr{}, "without a prefix length"},
		{"", netip.Addr{}, `address ""`},
		{"eth0", netip.Addr{}, `address "eth0": want an IPv4 address`},
		{"10.0.1", netip.Addr{}, "want an IPv4 address"},
		{" 10.0.1.50", netip.Addr{}, "want an IPv4 address"},
		{"10.0.1.50%eth0", netip.Addr{}, "want an IPv4 address"},
		{"0.0.0.0", netip.Addr{}, "the unspecified address"},
		{"169.254.169.254", netip.Addr{}, "link-local"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Parse(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want an error with %q", tc.in, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tc.in, err, tc.wantErr)
			}
			if got.IsValid() {
				t.Errorf("Parse(%q) returned %v with its error, want the zero Addr", tc.in, got)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("Parse(%q): exit code %d, want %d", tc.in, code, exitcode.Usage)
			}
		})
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    string // as net.HardwareAddr prints it; "" when an error is wanted
		wantErr string
	}{
		{"0e:1f:2a:3b:4c:5d", "0e:1f:2a:3b:4c:5d", ""},
		{"0E:1F:2A:3B:4C:5D", "0e:1f:2a:3b:4c:5d", ""},
		{"0e-1f-2a-3b-4c-5d", "0e:1f:2a:3b:4c:5d", ""},
		{"", "", "want six bytes"},
		{"0e:1f:2a:3b:4c", "", "want six bytes"},
		{"00:00:5e:00:53:01:00:01", "", "an ENI's MAC"}, // EUI-64
		{"00:00:00:00:00:00", "", "all zeros"},
		{"eth0", "", `MAC address "eth0"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseMAC(tc.in)
			if tc.wantErr == "" {
				if err != nil || got.String() != tc.want {
					t.Fatalf("parseMAC(%q) = %v, %v; want %s, nil", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseMAC(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("parseMAC(%q): exit code %d, want %d", tc.in, code, exitcode.Usage)
			}
		})
	}
}

// TestValidation: every method checks its arguments before it touches an
// interface, on every OS: these calls go to the host's interfaces, and
// each must fail on its input (the interface nosuch0 is not there
// either, so a check missed would fail otherwise, changing nothing).
func TestValidation(t *testing.T) {
	ns := Host()
	defer ns.Close()
	ctx := t.Context()
	tests := []struct {
		name  string
		iface string
		addr  netip.Addr
		want  string
	}{
		{"no interface", "", netip.MustParseAddr("10.0.1.50"), "no interface named"},
		{"zero Addr", "nosuch0", netip.Addr{}, "interface nosuch0: no address"},
		{"IPv6", "nosuch0", netip.MustParseAddr("2001:db8::50"), "interface nosuch0: address 2001:db8::50: an IPv6 address"},
		{"IPv4-mapped", "nosuch0", netip.MustParseAddr("::ffff:10.0.1.50"), "write it as 10.0.1.50"},
		{"loopback", "nosuch0", netip.MustParseAddr("127.0.0.9"), "a loopback address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for op, f := range map[string]func() (bool, error){
				"Ensure": func() (bool, error) { return ns.Ensure(ctx, tc.iface, tc.addr) },
				"Remove": func() (bool, error) { return ns.Remove(ctx, tc.iface, tc.addr) },
			} {
				changed, err := f()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s(%q, %v) = %v, %v; want an error with %q", op, tc.iface, tc.addr, changed, err, tc.want)
				}
				if changed {
					t.Errorf("%s(%q, %v) reported a change with its error", op, tc.iface, tc.addr)
				}
				if errors.Is(err, ErrUnsupported) {
					t.Errorf("%s(%q, %v) = %v: bad input comes before ErrUnsupported", op, tc.iface, tc.addr, err)
				}
				if code := exitcode.Of(err); code != exitcode.Usage {
					t.Errorf("%s(%q, %v): exit code %d, want %d", op, tc.iface, tc.addr, code, exitcode.Usage)
				}
			}
		})
	}
	if _, err := ns.ByMAC(ctx, "not-a-mac"); err == nil || !strings.Contains(err.Error(), `MAC address "not-a-mac"`) {
		t.Errorf(`ByMAC("not-a-mac") = %v, want an error naming it`, err)
	}
}
