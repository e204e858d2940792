//go:build !linux

package localaddr

import (
	"context"
	"fmt"
	"net/netip"
)

// Namespace is the network interfaces of one network namespace. Outside
// Linux it only says that it cannot change them (ErrUnsupported).
type Namespace struct{}

// Host returns the interfaces of the host, which this OS does not let
// eipclaim change: every method returns ErrUnsupported.
func Host() *Namespace { return &Namespace{} }

// Close does nothing.
func (n *Namespace) Close() {}

// Ensure checks its arguments, then returns ErrUnsupported.
func (n *Namespace) Ensure(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	return false, unsupported(iface, addr)
}

// Remove checks its arguments, then returns ErrUnsupported.
func (n *Namespace) Remove(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	return false, unsupported(iface, addr)
}

// ByMAC checks mac, then returns ErrUnsupported.
func (n *Namespace) ByMAC(_ context.Context, mac string) (string, error) {
	if _, err := parseMAC(mac); err != nil {
		return "", err
	}
	return "", ErrUnsupported
}

func unsupported(iface string, addr netip.Addr) error {
	if err := checkName(iface); err != nil {
		return err
	}
	if err := Check(addr); err != nil {
		return fmt.Errorf("interface %s: %w", iface, err)
	}
	return ErrUnsupported
}

// Supported returns ErrUnsupported: only Linux puts addresses on local
// interfaces (a configuration that asks for it is refused at start).
func Supported() error { return ErrUnsupported }
