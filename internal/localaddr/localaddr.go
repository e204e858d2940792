// Package localaddr puts a role's private address on a local network
// interface, and takes it off, so that the holder's kernel answers for it:
// a secondary private IP or an overlay IP reaches the instance's interface
// through EC2, and the kernel accepts it only if the address is its own.
//
// The address is an IPv4 address, added as a /32 (an address for the
// kernel to answer for, not a subnet: no prefix route comes with it). The
// interface is always named: the caller names it, or finds it by the MAC
// address IMDS gives for the ENI (ByMAC). Adding and removing work on Linux,
// through netlink; elsewhere every method returns ErrUnsupported, and the
// hooks, which get the address in their environment, do the work.
//
// Nothing is logged: errors name the interface and the address.
package localaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// ErrUnsupported is what every method returns on an OS other than Linux.
// It carries exit code 2: the configuration asks for what this OS cannot do.
var ErrUnsupported = exitcode.With(exitcode.Usage, errors.New(
	"adding an address to a local interface is supported on Linux only; use the hooks (EIPCLAIM_PRIVATE_ADDRESS) elsewhere"))

// prefixLen is the one prefix length of the addresses this package adds.
const prefixLen = 32

// Check reports whether addr can be put on a local interface: an IPv4
// unicast address (added as a /32), not the zero Addr, not IPv6 (nor IPv4
// written as IPv6, ::ffff:a.b.c.d), not unspecified, loopback, multicast,
// the broadcast address or link-local (169.254.0.0/16, where IMDS lives).
// Its error carries exit code 2.
func Check(addr netip.Addr) error {
	var why string
	switch {
	case !addr.IsValid():
		return exitcode.With(exitcode.Usage, errors.New("no address: want an IPv4 address such as 10.0.1.50"))
	case addr.Is4In6():
		why = "an IPv4-mapped IPv6 address: write it as " + addr.Unmap().String()
	case addr.Is6():
		why = "an IPv6 address: only IPv4 addresses (as /32) are put on a local interface"
	case addr.IsUnspecified():
		why = "the unspecified address"
	case addr.IsLoopback():
		why = "a loopback address"
	case addr.IsMulticast():
		why = "a multicast address"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	case addr.IsLinkLocalUnicast():
		why = "a link-local address (169.254.0.0/16, where IMDS lives)"
	default:
		return nil
	}
	return exitcode.With(exitcode.Usage, fmt.Errorf("address %s: %s; want an IPv4 unicast address such as 10.0.1.50", addr, why))
}

// Parse reads an address as written in the configuration: an IPv4 address
// without a prefix length (it is added as /32), that Check accepts. Its
// error carries exit code 2.
func Parse(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		return netip.Addr{}, exitcode.With(exitcode.Usage, fmt.Errorf("address %q: want an IPv4 address without a prefix length (it is added as /%d), such as 10.0.1.50", s, prefixLen))
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, exitcode.With(exitcode.Usage, fmt.Errorf("address %q: want an IPv4 address such as 10.0.1.50", s))
	}
	if err := Check(addr); err != nil {
		return netip.Addr{}, err
	}
	return addr, nil
}

// parseMAC reads a MAC address as IMDS writes it (0e:1f:2a:3b:4c:5d; any
// case, or another spelling net.ParseMAC knows). Its error carries exit
// code 2.
func parseMAC(mac string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("MAC address %q: want six bytes such as 0e:1f:2a:3b:4c:5d", mac))
	}
	if len(hw) != 6 {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("MAC address %q: want six bytes such as 0e:1f:2a:3b:4c:5d (an ENI's MAC)", mac))
	}
	if slices.Equal(hw, make(net.HardwareAddr, 6)) {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("MAC address %q: all zeros is no interface's MAC (an ENI's MAC such as 0e:1f:2a:3b:4c:5d)", mac))
	}
	return hw, nil
}

// checkName rejects an empty interface name with exit code 2.
func checkName(iface string) error {
	if iface == "" {
		return exitcode.With(exitcode.Usage, errors.New("no interface named: name the interface (such as eth1), or find it by the ENI's MAC"))
	}
	return nil
}
