package localaddr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// testNS is a network namespace of the test's own, made with iproute2 and
// deleted at the end, holding lo and a veth pair (a dummy interface would
// do, but not every kernel has the dummy module; veth is everywhere
// network namespaces are), all up.
type testNS struct {
	name  string
	ns    netns.NsHandle
	iface string // the veth end the tests use; its peer is peer0
	mac   string // its MAC
}

// newNS makes a network namespace with a veth pair: iface, whose MAC is
// mac, and peer0. It skips the test when it cannot (not root, no ip
// command), unless CI is set: there that is a failure.
func newNS(t *testing.T, iface, mac string) *testNS {
	t.Helper()
	cannot := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("network namespace test under CI: "+format, args...)
		}
		t.Skipf("network namespace test skipped: "+format, args...)
	}
	if os.Geteuid() != 0 {
		cannot("needs root (ip netns add, CAP_NET_ADMIN and CAP_SYS_ADMIN); run as root or with CI set to make this a failure")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		cannot("no ip command (iproute2): %v", err)
	}
	name := fmt.Sprintf("eipclaim-localaddr-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		cannot("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipNS(t, name, "link", "add", iface, "address", mac, "type", "veth", "peer", "name", "peer0")
	ipNS(t, name, "link", "set", iface, "up")
	ipNS(t, name, "link", "set", "peer0", "up")
	ipNS(t, name, "link", "set", "lo", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return &testNS{name: name, ns: h, iface: iface, mac: mac}
}

// ipNS runs ip -n name args and returns its output.
func ipNS(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// open returns the package's view of the namespace.
func (tn *testNS) open(t *testing.T) *Namespace {
	t.Helper()
	n, err := At(tn.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// addrs returns the IPv4 addresses of iface in CIDR form, as netlink
// (a handle of the test's own) and as ip -n NAME addr show see them; it
// fails the test when they disagree.
func (tn *testNS) addrs(t *testing.T, iface string) []string {
	t.Helper()
	h, err := netlink.NewHandleAt(tn.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var viaNetlink []string
	for _, a := range list {
		viaNetlink = append(viaNetlink, a.IPNet.String())
	}
	var viaIP []string
	for line := range strings.Lines(ipNS(t, tn.name, "-4", "-o", "addr", "show", "dev", iface)) {
		f := strings.Fields(line)
		if i := slices.Index(f, "inet"); i >= 0 && i+1 < len(f) {
			viaIP = append(viaIP, f[i+1])
		}
	}
	slices.Sort(viaNetlink)
	slices.Sort(viaIP)
	if !slices.Equal(viaNetlink, viaIP) {
		t.Fatalf("addresses of %s: netlink says %v, ip addr says %v", iface, viaNetlink, viaIP)
	}
	return viaNetlink
}

// inNS runs f on an OS thread that is in the namespace, then puts the
// thread back (or lets it end with its goroutine when that fails). Sockets
// f opens stay in the namespace.
func (tn *testNS) inNS(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return // the thread stays locked: the runtime ends it
		}
		defer orig.Close()
		if err := netns.Set(tn.ns); err != nil {
			done <- fmt.Errorf("enter network namespace %s: %w", tn.name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", tn.name, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// talk proves the kernel of the namespace answers for addr: a TCP listener
// on addr accepts a connection dialed from within the namespace, and a
// line goes through. It returns the error of listening when it cannot.
func (tn *testNS) talk(t *testing.T, addr netip.Addr) error {
	t.Helper()
	var ln net.Listener
	var conn net.Conn
	err := tn.inNS(t, func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			return err
		}
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			ln.Close()
		}
		return err
	})
	if err != nil {
		return err
	}
	defer ln.Close()
	defer conn.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept on %s: %v", ln.Addr(), err)
	}
	defer srv.Close()
	if got := srv.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != addr {
		t.Errorf("the connection arrived at %s, want %s", got, addr)
	}
	if _, err := io.WriteString(conn, "holder\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("holder\n"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "holder\n" {
		t.Fatalf("read %q, %v; want %q", buf, err, "holder\n")
	}
	return nil
}

// TestEnsureRemove: in a network namespace of its own, Ensure puts the
// address on the interface once (netlink and ip agree), the namespace's
// kernel then answers for it (a TCP connection to it), Remove takes it off
// once, and the kernel no longer answers.
func TestEnsureRemove(t *testing.T) {
	tn := newNS(t, "eipc0", "0e:21:00:00:00:01")
	n := tn.open(t)
	ctx := t.Context()
	addr := netip.MustParseAddr("10.21.0.50")
	const cidr = "10.21.0.50/32"

	if err := tn.talk(t, addr); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("listen on %s before Ensure: %v, want EADDRNOTAVAIL (the address is not the namespace's yet)", addr, err)
	}

	changed, err := n.Ensure(ctx, tn.iface, addr)
	if err != nil || !changed {
		t.Fatalf("Ensure(%s, %s) = %v, %v; want true, nil", tn.iface, addr, changed, err)
	}
	if got := tn.addrs(t, tn.iface); !slices.Equal(got, []string{cidr}) {
		t.Fatalf("after Ensure, %s has %v, want [%s]", tn.iface, got, cidr)
	}
	if err := tn.talk(t, addr); err != nil {
		t.Fatalf("after Ensure, a TCP connection to %s in the namespace: %v", addr, err)
	}

	changed, err = n.Ensure(ctx, tn.iface, addr)
	if err != nil || changed {
		t.Fatalf("second Ensure(%s, %s) = %v, %v; want false, nil", tn.iface, addr, changed, err)
	}
	if got := tn.addrs(t, tn.iface); !slices.Equal(got, []string{cidr}) {
		t.Fatalf("after the second Ensure, %s has %v, want [%s]", tn.iface, got, cidr)
	}

	changed, err = n.Remove(ctx, tn.iface, addr)
	if err != nil || !changed {
		t.Fatalf("Remove(%s, %s) = %v, %v; want true, nil", tn.iface, addr, changed, err)
	}
	if got := tn.addrs(t, tn.iface); len(got) != 0 {
		t.Fatalf("after Remove, %s has %v, want none", tn.iface, got)
	}
	if err := tn.talk(t, addr); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("listen on %s after Remove: %v, want EADDRNOTAVAIL", addr, err)
	}

	changed, err = n.Remove(ctx, tn.iface, addr)
	if err != nil || changed {
		t.Fatalf("second Remove(%s, %s) = %v, %v; want false, nil", tn.iface, addr, changed, err)
	}
}

// TestOtherPrefix: an interface that has the address with another prefix
// length (its primary address, say) has it already for Ensure, and Remove
// leaves it alone; other addresses of the interface are kept throughout.
func TestOtherPrefix(t *testing.T) {
	tn := newNS(t, "eipc0", "0e:21:00:00:00:02")
	n := tn.open(t)
	ctx := t.Context()
	ipNS(t, tn.name, "addr", "add", "10.21.0.5/24", "dev", tn.iface)

	primary := netip.MustParseAddr("10.21.0.5")
	changed, err := n.Ensure(ctx, tn.iface, primary)
	if err != nil || changed {
		t.Fatalf("Ensure(%s, %s) with %s/24 there = %v, %v; want false, nil", tn.iface, primary, primary, changed, err)
	}
	changed, err = n.Remove(ctx, tn.iface, primary)
	if err == nil || changed {
		t.Fatalf("Remove(%s, %s) with %s/24 there = %v, %v; want false and an error", tn.iface, primary, primary, changed, err)
	}
	for _, want := range []string{"10.21.0.5/24", "not as the /32 eipclaim adds", tn.iface} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Remove: %q, want it to contain %q", err, want)
		}
	}
	if got := tn.addrs(t, tn.iface); !slices.Equal(got, []string{"10.21.0.5/24"}) {
		t.Fatalf("after Remove refused, %s has %v, want [10.21.0.5/24]", tn.iface, got)
	}

	// A secondary address in the interface's own subnet, as a secondary
	// private IP is: added and removed beside the primary.
	secondary := netip.MustParseAddr("10.21.0.50")
	if changed, err := n.Ensure(ctx, tn.iface, secondary); err != nil || !changed {
		t.Fatalf("Ensure(%s, %s) = %v, %v; want true, nil", tn.iface, secondary, changed, err)
	}
	if got, want := tn.addrs(t, tn.iface), []string{"10.21.0.5/24", "10.21.0.50/32"}; !slices.Equal(got, want) {
		t.Fatalf("after Ensure, %s has %v, want %v", tn.iface, got, want)
	}
	if err := tn.talk(t, secondary); err != nil {
		t.Fatalf("a TCP connection to %s in the namespace: %v", secondary, err)
	}
	if changed, err := n.Remove(ctx, tn.iface, secondary); err != nil || !changed {
		t.Fatalf("Remove(%s, %s) = %v, %v; want true, nil", tn.iface, secondary, changed, err)
	}
	if got := tn.addrs(t, tn.iface); !slices.Equal(got, []string{"10.21.0.5/24"}) {
		t.Fatalf("after Remove, %s has %v, want [10.21.0.5/24]", tn.iface, got)
	}
}

// TestMissingInterface: Ensure and Remove on an interface that is not
// there fail naming it and the interfaces there are (exit code 2).
func TestMissingInterface(t *testing.T) {
	tn := newNS(t, "eipc0", "0e:21:00:00:00:03")
	n := tn.open(t)
	addr := netip.MustParseAddr("10.21.0.50")
	for op, f := range map[string]func(context.Context, string, netip.Addr) (bool, error){
		"Ensure": n.Ensure, "Remove": n.Remove,
	} {
		changed, err := f(t.Context(), "eth9", addr)
		if err == nil || changed {
			t.Fatalf("%s(eth9) = %v, %v; want false and an error", op, changed, err)
		}
		if want := "no interface eth9; interfaces here: eipc0, lo, peer0"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s(eth9) = %q, want it to contain %q", op, err, want)
		}
		if code := exitcode.Of(err); code != exitcode.Usage {
			t.Errorf("%s(eth9): exit code %d, want %d", op, code, exitcode.Usage)
		}
	}
	if got := tn.addrs(t, tn.iface); len(got) != 0 {
		t.Errorf("%s has %v, want none", tn.iface, got)
	}
}

// TestByMAC: the interface is found by its MAC in any case; a MAC no
// interface has is an error listing the interfaces; a MAC on two
// interfaces is an error naming both.
func TestByMAC(t *testing.T) {
	tn := newNS(t, "eipc0", "0e:21:00:00:00:04")
	n := tn.open(t)
	ctx := t.Context()
	for _, mac := range []string{tn.mac, strings.ToUpper(tn.mac)} {
		if got, err := n.ByMAC(ctx, mac); err != nil || got != tn.iface {
			t.Errorf("ByMAC(%s) = %q, %v; want %q, nil", mac, got, err, tn.iface)
		}
	}

	_, err := n.ByMAC(ctx, "0e:21:00:00:00:99")
	if err == nil {
		t.Fatal("ByMAC of a MAC no interface has: no error")
	}
	for _, want := range []string{"no interface has MAC 0e:21:00:00:00:99", "eipc0 (" + tn.mac + ")", "lo ("} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ByMAC(unknown) = %q, want it to contain %q", err, want)
		}
	}
	if code := exitcode.Of(err); code != exitcode.Failed {
		t.Errorf("ByMAC(unknown): exit code %d, want %d (the ENI may yet appear)", code, exitcode.Failed)
	}

	ipNS(t, tn.name, "link", "add", "eipc1", "address", tn.mac, "type", "veth", "peer", "name", "peer1")
	_, err = n.ByMAC(ctx, tn.mac)
	if want := "MAC " + tn.mac + " is on several interfaces (eipc0, eipc1)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ByMAC of a MAC on two interfaces = %v, want an error with %q", err, want)
	}
}

// TestHostByMAC reads the host's interfaces (changing nothing): Host finds
// an interface of this machine by its MAC as the standard library sees it.
func TestHostByMAC(t *testing.T) {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	macs := map[string][]string{}
	for _, i := range ifaces {
		if len(i.HardwareAddr) == 6 && !slices.Equal(i.HardwareAddr, make(net.HardwareAddr, 6)) {
			macs[i.HardwareAddr.String()] = append(macs[i.HardwareAddr.String()], i.Name)
		}
	}
	for mac, names := range macs {
		if len(names) != 1 {
			continue
		}
		got, err := Host().ByMAC(t.Context(), mac)
		if err != nil || got != names[0] {
			t.Fatalf("Host().ByMAC(%s) = %q, %v; want %q, nil", mac, got, err, names[0])
		}
		return
	}
	t.Skip("no interface of this machine has a MAC of its own")
}

// TestSupported: Linux puts addresses on local interfaces.
func TestSupported(t *testing.T) {
	if err := Supported(); err != nil {
		t.Errorf("Supported = %v, want nil on Linux", err)
	}
}
