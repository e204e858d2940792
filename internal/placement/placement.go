// Package placement is where a role's address is now: one value, built
// once from what the claim learnt (failover.Step), from which the step's
// outcome, every publisher (DNS, the role table), and the hooks are built.
package placement

import (
	"fmt"
	"net/netip"
)

// Placement says where a role's Elastic IP is: on which instance, on
// which interface and private address, under which epoch.
type Placement struct {
	Role         string
	AllocationID string
	PublicIP     netip.Addr
	// PublicDNSName is the EIP's public DNS name, the target of CNAMEs:
	// the name EC2 gives the address in its region (publish.PublicDNSName,
	// the one place it is decided).
	PublicDNSName string
	InstanceID    string
	ENI           string
	// PrivateIP is the holder's private address that carries the EIP.
	PrivateIP     netip.Addr
	AssociationID string
	Epoch         int64
	// PrivateAddress is the role's secondary private IP (private_address)
	// on PrivateAddressENI, this holder's interface; zero when the role
	// has none.
	PrivateAddress    netip.Addr
	PrivateAddressENI string
	// OverlayAddress is the role's overlay address (overlay), routed to
	// this holder's interface ENI; zero when the role has none. A role
	// has one private kind: PrivateAddress or OverlayAddress.
	OverlayAddress netip.Addr
}

// Private is the address clients inside the VPC use for the role: its
// private-kind address when it has one (the address that moves with the
// role: its secondary private IP, or its overlay address), else the
// holder's private IP that carries the EIP. RFC 2136 A records, dyndns's
// private address, the role table's private_ip and a Route 53 A record
// publish it.
func (p Placement) Private() netip.Addr {
	switch {
	case p.PrivateAddress.IsValid():
		return p.PrivateAddress
	case p.OverlayAddress.IsValid():
		return p.OverlayAddress
	}
	return p.PrivateIP
}

// Addr parses an address EC2 reported for key (public_ip, private_ip):
// the zero Addr for "", an error naming the key and the value otherwise
// when it is not an IP address.
func Addr(key, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("the %s EC2 reported, %q, is not an IP address: %w", key, s, err)
	}
	return a, nil
}

// String is an address as text, "" for the zero Addr (netip writes
// "invalid IP").
func String(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
