package localaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Namespace is the network interfaces of one network namespace: the host's
// (Host), or another one's (At, for tests).
type Namespace struct {
	h *netlink.Handle
}

// Host returns the interfaces of the network namespace eipclaim runs in.
// Each call opens a netlink socket of its own, so there is nothing to close.
func Host() *Namespace {
	return &Namespace{h: &netlink.Handle{}}
}

// At returns the interfaces of the network namespace ns, through netlink
// sockets opened in it; Close closes them.
func At(ns netns.NsHandle) (*Namespace, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in network namespace %s: %w", ns, err)
	}
	return &Namespace{h: h}, nil
}

// Close closes the sockets At opened. It does nothing for Host's.
func (n *Namespace) Close() {
	n.h.Close()
}

// Ensure puts addr/32 on the interface iface, unless the interface has
// addr already (as a /32 or with any other prefix length: the kernel
// answers for it either way). It reports whether it changed anything. A
// missing interface is an error (exit code 2) naming it and the interfaces
// there are; so is an address Check refuses. The interface's state (up or
// down) is left as it is.
func (n *Namespace) Ensure(ctx context.Context, iface string, addr netip.Addr) (changed bool, err error) {
	link, have, err := n.look(ctx, iface, addr)
	if err != nil {
		return false, err
	}
	if have != nil {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("add %s/%d to %s: %w", addr, prefixLen, iface, err)
	}
	switch err := n.h.AddrAdd(link, nlAddr(addr)); {
	case errors.Is(err, unix.EEXIST): // added in between: it is there
		return false, nil
	case err != nil:
		return false, classify(fmt.Errorf("add %s/%d to %s: %w", addr, prefixLen, iface, err))
	}
	return true, nil
}

// Remove takes addr/32 off the interface iface if it is there, and reports
// whether it changed anything; an absent address is no error. It refuses
// to remove addr when the interface has it with another prefix length
// (such as the interface's primary address, 10.0.1.5/24): that is not an
// address eipclaim put there.
func (n *Namespace) Remove(ctx context.Context, iface string, addr netip.Addr) (changed bool, err error) {
	link, have, err := n.look(ctx, iface, addr)
	if err != nil {
		return false, err
	}
	if have == nil {
		return false, nil
	}
	if ones, _ := have.Mask.Size(); ones != prefixLen {
		return false, exitcode.With(exitcode.Usage, fmt.Errorf("remove %s/%d from %s: the interface has %s as %s, not as the /%d eipclaim adds; left as it is", addr, prefixLen, iface, addr, have.IPNet, prefixLen))
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("remove %s/%d from %s: %w", addr, prefixLen, iface, err)
	}
	switch err := n.h.AddrDel(link, nlAddr(addr)); {
	case errors.Is(err, unix.EADDRNOTAVAIL): // removed in between: it is gone
		return false, nil
	case err != nil:
		return false, classify(fmt.Errorf("remove %s/%d from %s: %w", addr, prefixLen, iface, err))
	}
	return true, nil
}

// ByMAC returns the name of the interface whose MAC address is mac (as IMDS
// gives an ENI's: network/interfaces/macs/). No interface with it is an
// error (a newly attached ENI may take a moment to appear), and so are
// several (name the interface instead).
func (n *Namespace) ByMAC(ctx context.Context, mac string) (string, error) {
	hw, err := parseMAC(mac)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("find the interface with MAC %s: %w", hw, err)
	}
	links, err := n.links()
	if err != nil {
		return "", classify(fmt.Errorf("find the interface with MAC %s: %w", hw, err))
	}
	var found, all []string
	for _, l := range links {
		a := l.Attrs()
		all = append(all, a.Name+" ("+a.HardwareAddr.String()+")")
		if slices.Equal(a.HardwareAddr, hw) {
			found = append(found, a.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no interface has MAC %s (an ENI attached just now may take a moment to appear); interfaces here: %s", hw, nameList(all))
	case 1:
		return found[0], nil
	default:
		return "", exitcode.With(exitcode.Usage, fmt.Errorf("MAC %s is on several interfaces (%s): name the interface", hw, nameList(found)))
	}
}

// look checks iface and addr, finds the interface, and returns it with its
// address equal to addr, if it has one (any prefix length).
func (n *Namespace) look(ctx context.Context, iface string, addr netip.Addr) (netlink.Link, *netlink.Addr, error) {
	if err := checkName(iface); err != nil {
		return nil, nil, err
	}
	if err := Check(addr); err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	link, err := n.h.LinkByName(iface)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		return nil, nil, n.missing(iface)
	}
	if err != nil {
		return nil, nil, classify(fmt.Errorf("interface %s: %w", iface, err))
	}
	var addrs []netlink.Addr
	for range dumpTries {
		addrs, err = n.h.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, nil, classify(fmt.Errorf("list the addresses of %s: %w", iface, err))
	}
	want := net.IP(addr.AsSlice())
	for i := range addrs {
		if addrs[i].IPNet != nil && addrs[i].IP.Equal(want) {
			return link, &addrs[i], nil
		}
	}
	return link, nil, nil
}

// missing is the error for an interface that is not there: it names the
// interfaces there are.
func (n *Namespace) missing(iface string) error {
	links, err := n.links()
	if err != nil {
		return exitcode.With(exitcode.Usage, fmt.Errorf("no interface %s (listing the interfaces: %v)", iface, err))
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return exitcode.With(exitcode.Usage, fmt.Errorf("no interface %s; interfaces here: %s", iface, nameList(names)))
}

// dumpTries is how many times a dump interrupted by a concurrent change is
// asked again.
const dumpTries = 3

// links lists the interfaces, asking again when a change interrupted the
// dump (its answer may then be inconsistent).
func (n *Namespace) links() (links []netlink.Link, err error) {
	for range dumpTries {
		links, err = n.h.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return links, err
}

// nlAddr is addr as the /32 netlink adds and removes.
func nlAddr(addr netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(prefixLen, 32)}}
}

// classify gives a netlink error its exit code: not permitted (eipclaim
// needs CAP_NET_ADMIN) is 3, anything else 1.
func classify(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return exitcode.With(exitcode.Denied, fmt.Errorf("%w (adding and removing addresses needs root or CAP_NET_ADMIN)", err))
	}
	return err
}

// nameList writes interface names for an error: sorted, comma-separated,
// or "none".
func nameList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	names = slices.Clone(names)
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Supported returns nil: Linux puts addresses on local interfaces.
func Supported() error { return nil }
