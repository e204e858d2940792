package hosts

import (
	"fmt"
	"net/netip"
)

// Placed is a role as a source has it (the EC2 view of its EIP, or its
// entry in the role table): its name, its DNS names, and its addresses, ""
// when it has none of that kind (a free EIP has neither).
type Placed struct {
	Role                string
	Names               []string
	PrivateIP, PublicIP string
}

// Entries builds the hosts entries of placed, in its order: each role's
// private address, or its public one with public, then its DNS names and
// its name. A role with no address of that kind is left out and named in
// missing, for the caller to warn about; an address that is not one is an
// error naming the role and the source (from, such as "EC2").
func Entries(placed []Placed, public bool, from string) (entries []Entry, missing []string, err error) {
	for _, p := range placed {
		ip := p.PrivateIP
		if public {
			ip = p.PublicIP
		}
		if ip == "" {
			missing = append(missing, p.Role)
			continue
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, nil, fmt.Errorf("role %s: %s gave the address %q: %w", p.Role, from, ip, err)
		}
		entries = append(entries, Entry{IP: addr, Names: p.Names, Role: p.Role})
	}
	return entries, missing, nil
}
