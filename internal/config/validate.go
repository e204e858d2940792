package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/dnsname"
)

var (
	allocationIDRE = regexp.MustCompile(`^eipalloc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	eniIDRE        = regexp.MustCompile(`^eni-([0-9a-f]{8}|[0-9a-f]{17})$`)
	zoneIDRE       = regexp.MustCompile(`^(/hostedzone/)?[A-Z0-9]{1,32}$`)
)

// roleNameRule says what a role name is, after what is wrong with one.
const roleNameRule = "a role name is a host name label (it is written into hosts files): letters, digits and inner hyphens, 1 to 63 characters, not all digits"

// TSIGAlgorithms are the accepted tsig_algorithm values.
var TSIGAlgorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"}

// problem is one validation failure: the key path, its value, its line and
// what is wanted instead.
type problem struct {
	path, value string
	line        int
	want        string
}

func (p problem) Error() string {
	var b strings.Builder
	b.WriteString(p.path)
	if p.value != "" {
		fmt.Fprintf(&b, " %q", p.value)
	}
	if p.line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.line)
	}
	b.WriteString(": ")
	b.WriteString(p.want)
	return b.String()
}

type validator struct {
	c        *Config
	problems []error
}

func (v *validator) add(path, value, want string) {
	v.problems = append(v.problems, problem{path: path, value: value, line: v.line(path), want: want})
}

func (c *Config) validate() []error {
	v := &validator{c: c}
	if c.Role != "" {
		if err := CheckRoleName(c.Role); err != nil {
			v.add("role", c.Role, err.Error()+"; "+roleNameRule)
		}
	}
	if c.Source != "" {
		if err := CheckSource(c.Source); err != nil {
			src, _, _ := strings.Cut(c.Source, "?") // a presigned URL's query is a credential
			v.add("source", src, err.Error())
		}
	}
	v.repository()
	names := make([]string, 0, len(c.Roles))
	for n := range c.Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v.role("roles."+n, n, c.Roles[n])
	}
	v.uniqueNames(names)
	v.uniqueAddresses(names)
	return v.problems
}

// uniqueNames reports a name that two roles publish: role names and DNS
// names (route53 and rfc2136) share one namespace, the hosts file's, where
// case and a final dot do not count. One role may give one name several
// times (its route53 and rfc2136 records, say).
func (v *validator) uniqueNames(roles []string) {
	type published struct{ role, path string }
	seen := map[string]published{}
	for _, role := range roles {
		cands := []published{{role, "roles." + role}}
		names := []string{role}
		for _, d := range v.c.Roles[role].dnsNames() {
			cands = append(cands, published{role, "roles." + role + "." + d.key})
			names = append(names, d.name)
		}
		for i, p := range cands {
			key := dnsname.Canonical(names[i])
			prev, ok := seen[key]
			switch {
			case !ok:
				seen[key] = p
			case prev.role == role:
				// the same role: one hosts line, one owner of the record
			case i == 0 && prev.path == "roles."+prev.role:
				v.add(p.path, "", fmt.Sprintf("role name %q is also role %q (line %d): role names are host names, "+
					"the same whatever their case; rename one of them", role, prev.role, v.line(prev.path)))
			default:
				value, what := names[i], ""
				if i == 0 {
					value, what = "", fmt.Sprintf("role name %q: ", role)
				}
				v.add(p.path, value, fmt.Sprintf("%srole %s publishes this name too (%s, line %d; case and a final dot do not count): "+
					"two roles cannot publish one name (each claim would take the other's record, and eipclaim hosts "+
					"cannot write one name for two addresses); give role %s or role %s another name",
					what, prev.role, prev.path, v.line(prev.path), role, prev.role))
			}
		}
	}
}

// uniqueAddresses reports an EIP that two roles name (one allocation_id,
// or one public_ip): each claim would take it from the other (a takeover:
// always role at once).
func (v *validator) uniqueAddresses(roles []string) {
	seen := map[string]string{} // allocation id or address -> the key path that gave it first
	for _, role := range roles {
		r := v.c.Roles[role]
		if r == nil {
			continue
		}
		overlay := ""
		if r.Overlay != nil {
			overlay = r.Overlay.Address
		}
		for _, k := range []struct{ key, value string }{{"allocation_id", r.AllocationID}, {"public_ip", r.PublicIP}, {"private_address", r.PrivateAddress}, {"overlay.address", overlay}} {
			if k.value == "" {
				continue
			}
			path := "roles." + role + "." + k.key
			key := k.key + " " + k.value
			if k.key == "overlay.address" {
				key = "private_address " + k.value // one address, whichever its kind
			}
			prev, ok := seen[key]
			if !ok {
				seen[key] = path
				continue
			}
			what := "EIP"
			if k.key == "private_address" || k.key == "overlay.address" {
				what = "address"
			}
			v.add(path, k.value, fmt.Sprintf("%s (line %d) names this %s too: two roles cannot share one %s "+
				"(each claim would take it from the other); give each role its own", prev, v.line(prev), what, what))
		}
	}
}

// line returns the line of path, or of its nearest ancestor that has one.
func (v *validator) line(path string) int {
	for p := path; ; {
		if line := v.c.lines[p]; line > 0 {
			return line
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return 0
		}
		p = p[:i]
	}
}

func (v *validator) role(path, name string, r *Role) {
	if err := CheckRoleName(name); err != nil {
		v.add(path, "", err.Error()+"; "+roleNameRule)
	}
	if r == nil {
		v.add(path, "", "empty role: want one of allocation_id, public_ip or pool, or private_address, or overlay")
		return
	}
	set := 0
	if r.AllocationID != "" {
		set++
		if !allocationIDRE.MatchString(r.AllocationID) {
			v.add(path+".allocation_id", r.AllocationID, "want eipalloc- and 8 or 17 lowercase hex digits")
		}
	}
	if r.PublicIP != "" {
		set++
		if a, err := netip.ParseAddr(r.PublicIP); err != nil || !a.Is4() {
			v.add(path+".public_ip", r.PublicIP, "want an IPv4 address such as 203.0.113.10")
		}
	}
	if r.Pool != nil {
		set++
		if len(r.Pool.Tags) == 0 {
			v.add(path+".pool.tags", "", "want at least one tag, such as {eip-pool: web}")
		}
		for k := range r.Pool.Tags {
			if k == "" || len(k) > 128 || strings.HasPrefix(k, "aws:") {
				v.add(path+".pool.tags", k, "want a tag key of 1 to 128 characters, not starting with aws:")
			}
		}
	}
	switch {
	case set == 0 && r.PrivateKind() != "":
		// a secondary private IP or an overlay address alone: no EIP
	case set == 0 && r.Overlay != nil:
		// overlay without address: said by overlay
	case set == 0:
		v.add(path, "", "want one of allocation_id, public_ip or pool (an EIP), or private_address (a secondary private IP) or overlay (an overlay address), or an EIP and one of those")
	case set > 1:
		v.add(path, "", fmt.Sprintf("want exactly one of allocation_id, public_ip or pool, got %d", set))
	}
	if r.PrivateIP != "" {
		if a, err := netip.ParseAddr(r.PrivateIP); err != nil || !a.Is4() || !a.IsPrivate() {
			v.add(path+".private_ip", r.PrivateIP, "want a private IPv4 address of this instance, such as 10.0.1.5")
		}
	}
	v.overlay(path, r)
	v.privateAddress(path, r)
	v.localInterface(path, r)
	if r.Interface.bad != "" {
		v.add(path+".interface", r.Interface.bad, interfaceRule)
	}
	switch r.Takeover {
	case "", TakeoverNever, TakeoverIfHolderDown, TakeoverAlways:
	default:
		v.add(path+".takeover", string(r.Takeover), "want never, if-holder-down or always")
	}
	v.fence(path, r)
	if r.HealthCheck.bad != "" {
		_, err := ParseHealthCheck(r.HealthCheck.bad)
		v.add(path+".health_check", r.HealthCheck.bad, err.Error())
	}
	if r.DNS != nil {
		v.route53(path+".dns.route53", r.DNS.Route53)
		v.rfc2136(path+".dns.rfc2136", r.DNS.RFC2136)
		v.dyndns(path+".dns.dyndns", r.DNS.DynDNS)
	}
	v.watch(path+".watch", r.Watch)
	v.hooks(path+".hooks", r.Hooks)
}

func (v *validator) route53(path string, d *Route53) {
	if d == nil {
		return
	}
	switch {
	case d.ZoneID == "" && d.Zone == "":
		v.add(path, "", "want zone_id (or zone, the hosted zone's name)")
	case d.ZoneID != "" && d.Zone != "":
		v.add(path, "", "want zone_id or zone, not both")
	case d.ZoneID != "" && !zoneIDRE.MatchString(d.ZoneID):
		v.add(path+".zone_id", d.ZoneID, "want a hosted zone id such as Z0123456789ABC")
	case d.Zone != "" && !dnsname.IsDomainName(d.Zone):
		v.add(path+".zone", d.Zone, "want a DNS name such as example.internal")
	}
	v.ttl(path+".ttl", d.TTL)
	if !dnsname.IsDomainName(d.Name) {
		v.add(path+".name", d.Name, "want a DNS name such as master-db.example.internal")
		return
	}
	if err := dnsname.CheckHostName(dnsname.HostName(d.Name)); err != nil {
		v.add(path+".name", d.Name, err.Error()+"; the name is a host name (clients resolve it, eipclaim hosts writes it)")
		return
	}
	switch strings.ToUpper(d.Record) {
	case "", "A", "CNAME":
	default:
		v.add(path+".record", d.Record, "want CNAME (the EIP's public DNS name) or A (the role's private address: private_address, or the holder's private IP)")
	}
	if d.Zone != "" && dnsname.IsDomainName(d.Zone) {
		switch {
		case dnsname.Canonical(d.Name) == dnsname.Canonical(d.Zone):
			v.add(path+".name", d.Name, "a CNAME cannot be at the zone apex, and eipclaim writes no A record there either (the apex is the zone's own name): want a name below "+d.Zone)
		case !dnsname.InZone(d.Name, d.Zone):
			v.add(path+".name", d.Name, "want a name inside zone "+d.Zone)
		}
	}
}

func (v *validator) rfc2136(path string, d *RFC2136) {
	if d == nil {
		return
	}
	if _, err := ServerAddr(d.Server); err != nil {
		v.add(path+".server", d.Server, err.Error())
	}
	zoneOK := dnsname.IsDomainName(d.Zone)
	if !zoneOK {
		v.add(path+".zone", d.Zone, "want the zone's DNS name such as example.internal.")
	}
	hostErr := dnsname.CheckHostName(dnsname.HostName(d.Name))
	switch {
	case !dnsname.IsDomainName(d.Name):
		v.add(path+".name", d.Name, "want a DNS name such as master-db.example.internal.")
	case hostErr != nil:
		v.add(path+".name", d.Name, hostErr.Error()+"; the name is a host name (clients resolve it, eipclaim hosts writes it)")
	case zoneOK && !dnsname.InZone(d.Name, d.Zone):
		v.add(path+".name", d.Name, "want a name inside zone "+d.Zone)
	case zoneOK && strings.EqualFold(d.Record, "CNAME") && dnsname.Canonical(d.Name) == dnsname.Canonical(d.Zone):
		v.add(path+".name", d.Name, "a CNAME cannot be at the zone apex: want a name below "+d.Zone)
	}
	v.ttl(path+".ttl", d.TTL)
	switch strings.ToUpper(d.Record) {
	case "", "A", "CNAME":
	default:
		v.add(path+".record", d.Record, "want A (the holder's private IP) or CNAME (the EIP's public DNS name)")
	}
	if !dnsname.IsDomainName(d.TSIGName) {
		v.add(path+".tsig_name", d.TSIGName, "want the TSIG key's name, such as eipclaim. (updates are always signed)")
	}
	if d.TSIGAlgorithm != "" && !slices.Contains(TSIGAlgorithms, d.TSIGAlgorithm) {
		v.add(path+".tsig_algorithm", d.TSIGAlgorithm, "want one of "+strings.Join(TSIGAlgorithms, ", "))
	}
	if d.TSIGSecretFile == "" {
		v.add(path+".tsig_secret_file", "", "want the path of the file that holds the base64 TSIG secret (or a BIND key statement)")
	}
}

func (v *validator) ttl(path string, ttl int64) {
	if ttl < 0 || ttl > 604800 {
		v.add(path, strconv.FormatInt(ttl, 10), "want seconds from 1 to 604800 (0 or absent means 60)")
	}
}

// decimal parses s, a number from lo to hi written in digits only: no sign,
// no space, no leading zero (strconv.Atoi takes "+5" and "05").
func decimal(s string, lo, hi int) (int, bool) {
	if s == "" || len(s) > len(strconv.Itoa(hi)) || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= lo && n <= hi
}

// ServerAddr parses an rfc2136 server, host or host:port, and returns
// host:port (port 53 when omitted).
func ServerAddr(s string) (string, error) {
	const want = "want the DNS server as host:port, such as 10.0.0.2:53"
	if s == "" {
		return "", fmt.Errorf("%s", want)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "53"
	}
	if _, ok := decimal(port, 1, 65535); !ok {
		return "", fmt.Errorf("%s (the port from 1 to 65535, digits only)", want)
	}
	if _, err := netip.ParseAddr(host); err != nil && !dnsname.IsDomainName(host) {
		return "", fmt.Errorf("%s", want)
	}
	return net.JoinHostPort(host, port), nil
}

// CheckSource checks the form of a source: s3://bucket/key, https://host/…,
// or a local path.
func CheckSource(s string) error {
	switch {
	case strings.HasPrefix(s, "s3://"):
		bucket, key, _ := strings.Cut(strings.TrimPrefix(s, "s3://"), "/")
		if bucket == "" || key == "" {
			return fmt.Errorf("want s3://bucket/key")
		}
	case strings.HasPrefix(s, "https://"):
		if len(s) == len("https://") {
			return fmt.Errorf("want https://host/path")
		}
	case strings.Contains(s, "://"):
		return fmt.Errorf("want s3://bucket/key, https://host/path or a file path (plain http is not accepted)")
	}
	return nil
}

// CheckHostAddress reports why a cannot be a role's address in the role
// table and in hosts files: the one rule of those addresses, which every
// writer (a claim's table entry, eipclaim register) and every reader
// (internal/table, internal/hosts) applies. An address is a unicast
// address a client can connect to: valid, without an IPv6 zone (fe80::1%eth0
// names an interface of the machine that wrote it, and a hosts file cannot
// hold one), not the unspecified address (0.0.0.0, ::), not multicast, not
// the IPv4 broadcast address 255.255.255.255.
func CheckHostAddress(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("not an IP address")
	case a.Zone() != "":
		return errors.New("has an IPv6 zone (%…): give the address without it, a zone names an interface of one machine")
	case a.IsUnspecified():
		return errors.New("is the unspecified address, not a host's address")
	case a.IsMulticast():
		return errors.New("is a multicast address, not a host's address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("is the broadcast address, not a host's address")
	}
	return nil
}

// ParseHostAddress parses s, an address written in the role table or given
// to eipclaim register, and checks it (CheckHostAddress). The error quotes
// s.
func ParseHostAddress(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if err := CheckHostAddress(a); err != nil {
		return netip.Addr{}, fmt.Errorf("%q %w", s, err)
	}
	return a, nil
}

// CheckRoleName reports why name cannot be a role name. A role name is
// written into hosts files as a short name for the role's address, so it
// is one host name label: letters, digits and inner hyphens, 1 to 63
// characters, not all digits (CheckHostName, without dots). Role names are
// also unique regardless of case, which validation checks across the
// roles table. internal/hosts applies the same function to the role names
// it writes, so that a table validation accepts is one it can write.
func CheckRoleName(name string) error {
	switch {
	case name == "":
		return errors.New("empty role name")
	case strings.Contains(name, "."):
		return errors.New("contains '.': a role name is a single label (use '-')")
	case len(name) > 63:
		return fmt.Errorf("%d characters, more than 63", len(name))
	case strings.Trim(name, "0123456789") == "":
		return errors.New("all digits: resolvers would read it as an address")
	}
	return dnsname.CheckHostName(name)
}

// ValidRoleName reports whether name is a valid role name (CheckRoleName).
func ValidRoleName(name string) bool { return CheckRoleName(name) == nil }

// fence checks fence and fence_timeout.
func (v *validator) fence(path string, r *Role) {
	switch r.Fence {
	case "", FenceOff, FenceStop:
	default:
		v.add(path+".fence", string(r.Fence), "want off or stop (stop the holder's instance before taking its EIP), or remove it")
	}
	v.durationIn(path+".fence_timeout", r.FenceTimeout, time.Second, 10*time.Minute, "such as 60s")
	switch {
	case r.FenceTimeout.Set() && r.EffectiveFence() != FenceStop:
		v.add(path+".fence_timeout", r.FenceTimeout.String(), "it bounds a fence, and fence is not stop: set fence: stop, or remove fence_timeout")
	case r.Fence == FenceStop && r.Pool != nil:
		v.add(path+".fence", string(r.Fence), "a pool's EIPs are claimed only when free, never taken from a holder: remove fence")
	}
}

// localInterface checks local_interface: auto or an interface's name
// (Linux: 1 to 15 characters, no slash, colon or white space), on a role
// with a private address. That the OS can do it is checked at start
// (localaddr.Supported), not here: a configuration is valid anywhere.
func (v *validator) localInterface(path string, r *Role) {
	n := r.LocalInterface
	if n == "" {
		return
	}
	if !r.HasPrivateAddress() {
		v.add(path+".local_interface", n, "the role has no private address to put on a local interface: set private_address, or remove local_interface")
	}
	if n == LocalInterfaceAuto {
		return
	}
	if len(n) > 15 || n == "." || n == ".." || strings.ContainsAny(n, "/: \t\n") {
		v.add(path+".local_interface", n, "want auto (the interface of the ENI that carries the address) or an interface's name such as eth1 (at most 15 characters, no slash, colon or space)")
	}
}

// privateAddress checks private_address (a secondary private IP): an IPv4
// address a host can have, not with pool (a pool's EIP is any free one, a
// secondary IP is one address), not the address an EIP is associated
// with (private_ip, which stays on this instance), and, for a role
// without an EIP, no use of what only an EIP has (private_ip, an rfc2136
// CNAME to the EIP's public name).
func (v *validator) privateAddress(path string, r *Role) {
	if r.PrivateAddress == "" {
		v.withoutEIP(path, r)
		return
	}
	a, err := netip.ParseAddr(r.PrivateAddress)
	if err == nil && !a.Is4() {
		err = errors.New("not IPv4")
	}
	if err == nil {
		err = CheckHostAddress(a)
	}
	if err != nil {
		v.add(path+".private_address", r.PrivateAddress, "want an IPv4 address of the holders' subnet, such as 10.0.1.50 (a secondary private IP)")
	}
	if r.Pool != nil {
		v.add(path+".private_address", r.PrivateAddress, "not with pool: a pool's EIP is any free one, a secondary private IP is one address; use allocation_id or public_ip beside it, or no EIP")
	}
	if r.PrivateIP != "" && r.PrivateIP == r.PrivateAddress {
		v.add(path+".private_ip", r.PrivateIP, "private_ip is the address of this instance that carries the EIP, private_address the one that moves: they cannot be the same; remove private_ip")
	}
	if r.Overlay != nil {
		v.add(path+".overlay", "", "not with private_address: a role has one private kind of address, a secondary private IP (private_address, one subnet) or an overlay address (overlay, routed, across subnets); remove one")
	}
	v.withoutEIP(path, r)
}

// withoutEIP checks that a role whose only address is a private kind
// (private_address or overlay) uses nothing only an EIP has (private_ip,
// an rfc2136 CNAME to the EIP's public name, dyndns's public address).
func (v *validator) withoutEIP(path string, r *Role) {
	if r.HasEIP() || r.PrivateKind() == "" {
		return
	}
	key := "private_address"
	if r.Overlay != nil {
		key = "overlay"
	}
	if r.PrivateIP != "" {
		v.add(path+".private_ip", r.PrivateIP, "private_ip chooses the address an EIP is associated with, and the role has no EIP: remove private_ip ("+key+" is the role's address)")
	}
	if r.DNS == nil {
		return
	}
	if r.DNS.RFC2136 != nil && strings.EqualFold(r.DNS.RFC2136.Record, "CNAME") {
		v.add(path+".dns.rfc2136.record", r.DNS.RFC2136.Record, "a CNAME points to the EIP's public DNS name, and the role has no EIP (only "+key+"): use record: A (the private address)")
	}
	if r.DNS.DynDNS != nil && r.DNS.DynDNS.EffectiveAddress() == DynDNSPublic {
		v.add(path+".dns.dyndns.address", r.DNS.DynDNS.Address, "the role has no EIP (only "+key+"), so no public address: use address: private (the private address)")
	}
	if r.DNS.Route53 != nil && strings.EqualFold(r.DNS.Route53.Record, "CNAME") {
		v.add(path+".dns.route53.record", r.DNS.Route53.Record, "a CNAME points to the EIP's public DNS name, and the role has no EIP (only "+key+"): use record: A (the private address; the default for such a role)")
	}
}

// routeTableRE is a route table's id.
var routeTableRE = regexp.MustCompile(`^rtb-[0-9a-f]{8}([0-9a-f]{9})?$`)

// overlay checks overlay (an overlay address): an IPv4 address a host can
// have (as private_address's), at least one route table, each an id, none
// twice; not with pool. That it lies outside the VPC's CIDR is checked
// against EC2 when claimed and by check; that the configuration has
// repository: (its compare-and-swap) by CheckOverlayRepository.
func (v *validator) overlay(path string, r *Role) {
	o := r.Overlay
	if o == nil {
		return
	}
	path += ".overlay"
	a, err := netip.ParseAddr(o.Address)
	if err == nil && !a.Is4() {
		err = errors.New("not IPv4")
	}
	if err == nil {
		err = CheckHostAddress(a)
	}
	switch {
	case o.Address == "":
		v.add(path+".address", "", "want the overlay address, an IPv4 address outside the VPC's CIDR, such as 192.168.100.10")
	case err != nil:
		v.add(path+".address", o.Address, "want an IPv4 address outside the VPC's CIDR, such as 192.168.100.10 (an overlay address)")
	}
	if len(o.RouteTables) == 0 {
		v.add(path+".route_tables", "", "want at least one route table, such as [rtb-0123456789abcdef0]: the tables whose subnets reach the address")
	}
	for i, t := range o.RouteTables {
		switch {
		case !routeTableRE.MatchString(t):
			v.add(path+".route_tables", t, "want rtb- and 8 or 17 lowercase hex digits")
		case slices.Contains(o.RouteTables[:i], t):
			v.add(path+".route_tables", t, "given twice: list each route table once")
		}
	}
	if r.Pool != nil {
		v.add(path, "", "not with pool: a pool's EIP is any free one, an overlay address is one address; use allocation_id or public_ip beside it, or no EIP")
	}
}

// overlayNeedsRepository says, for each role with an overlay, that the
// configuration needs repository: ReplaceRoute has no condition, and the
// role table's compare-and-swap decides who may move the routes.
func (v *validator) overlayNeedsRepository(roles []string) {
	if v.c.Repository != "" {
		return
	}
	for _, role := range roles {
		if r := v.c.Roles[role]; r != nil && r.Overlay != nil {
			v.add("roles."+role+".overlay", "", "an overlay role needs repository: its compare-and-swap (ReplaceRoute has no condition: the role table's conditional write decides who moves the routes); set repository: s3://BUCKET/KEY")
		}
	}
}
