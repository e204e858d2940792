package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	allocationIDRE = regexp.MustCompile(`^eipalloc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	eniIDRE        = regexp.MustCompile(`^eni-([0-9a-f]{8}|[0-9a-f]{17})$`)
	zoneIDRE       = regexp.MustCompile(`^(/hostedzone/)?[A-Z0-9]{1,32}$`)
	roleNameRE     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

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
	line := v.c.lines[path]
	for p := path; line == 0 && p != ""; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
		line = v.c.lines[p]
	}
	v.problems = append(v.problems, problem{path: path, value: value, line: line, want: want})
}

func (c *Config) validate() []error {
	v := &validator{c: c}
	if c.Role != "" && !roleNameRE.MatchString(c.Role) {
		v.add("role", c.Role, "want a role name: letters, digits and inner hyphens, at most 63 (it is used as a host name)")
	}
	if c.Source != "" {
		if err := CheckSource(c.Source); err != nil {
			src, _, _ := strings.Cut(c.Source, "?") // a presigned URL's query is a credential
			v.add("source", src, err.Error())
		}
	}
	names := make([]string, 0, len(c.Roles))
	for n := range c.Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v.role("roles."+n, n, c.Roles[n])
	}
	return v.problems
}

func (v *validator) role(path, name string, r *Role) {
	if !roleNameRE.MatchString(name) {
		v.add(path, "", "want a role name: letters, digits and inner hyphens, at most 63 (it is used as a host name)")
	}
	if r == nil {
		v.add(path, "", "empty role: want one of allocation_id, public_ip or pool")
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
	if set != 1 {
		v.add(path, "", fmt.Sprintf("want exactly one of allocation_id, public_ip or pool, got %d", set))
	}
	if r.PrivateIP != "" {
		if a, err := netip.ParseAddr(r.PrivateIP); err != nil || !a.Is4() || !a.IsPrivate() {
			v.add(path+".private_ip", r.PrivateIP, "want a private IPv4 address of this instance, such as 10.0.1.5")
		}
	}
	if r.Interface != "" && !eniIDRE.MatchString(r.Interface) {
		if n, err := strconv.Atoi(r.Interface); err != nil || n < 0 || n > 31 {
			v.add(path+".interface", r.Interface, "want eni- and 8 or 17 lowercase hex digits, or a device index 0 to 31")
		}
	}
	switch r.Takeover {
	case "", TakeoverNever, TakeoverIfHolderDown, TakeoverAlways:
	default:
		v.add(path+".takeover", string(r.Takeover), "want never, if-holder-down or always")
	}
	if r.HealthCheck != "" {
		if _, err := HealthCheckPort(r.HealthCheck); err != nil {
			v.add(path+".health_check", r.HealthCheck, err.Error())
		}
	}
	if r.DNS != nil {
		v.route53(path+".dns.route53", r.DNS.Route53)
		v.rfc2136(path+".dns.rfc2136", r.DNS.RFC2136)
	}
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
	case d.Zone != "" && !IsDomainName(d.Zone):
		v.add(path+".zone", d.Zone, "want a DNS name such as example.internal")
	}
	v.ttl(path+".ttl", d.TTL)
	if !IsDomainName(d.Name) {
		v.add(path+".name", d.Name, "want a DNS name such as master-db.example.internal")
		return
	}
	if d.Zone != "" && IsDomainName(d.Zone) {
		switch {
		case Canonical(d.Name) == Canonical(d.Zone):
			v.add(path+".name", d.Name, "a CNAME cannot be at the zone apex: want a name below "+d.Zone)
		case !InZone(d.Name, d.Zone):
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
	zoneOK := IsDomainName(d.Zone)
	if !zoneOK {
		v.add(path+".zone", d.Zone, "want the zone's DNS name such as example.internal.")
	}
	switch {
	case !IsDomainName(d.Name):
		v.add(path+".name", d.Name, "want a DNS name such as master-db.example.internal.")
	case zoneOK && !InZone(d.Name, d.Zone):
		v.add(path+".name", d.Name, "want a name inside zone "+d.Zone)
	case zoneOK && strings.EqualFold(d.Record, "CNAME") && Canonical(d.Name) == Canonical(d.Zone):
		v.add(path+".name", d.Name, "a CNAME cannot be at the zone apex: want a name below "+d.Zone)
	}
	v.ttl(path+".ttl", d.TTL)
	switch strings.ToUpper(d.Record) {
	case "", "A", "CNAME":
	default:
		v.add(path+".record", d.Record, "want A (the holder's private IP) or CNAME (the EIP's public DNS name)")
	}
	if !IsDomainName(d.TSIGName) {
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

// HealthCheckPort parses a health_check value, tcp:PORT.
func HealthCheckPort(s string) (int, error) {
	p, ok := strings.CutPrefix(s, "tcp:")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want tcp:PORT with a port from 1 to 65535, such as tcp:5432")
	}
	return n, nil
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
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%s", want)
	}
	if _, err := netip.ParseAddr(host); err != nil && !IsDomainName(host) {
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

// IsDomainName reports whether s is a DNS host name: dot-separated labels
// of letters, digits and inner hyphens (a leading underscore is allowed for
// service labels), each at most 63 characters, at most 253 in all, with an
// optional final dot.
func IsDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' && i == 0
			if !ok {
				return false
			}
		}
	}
	return true
}

// Canonical returns name in lower case with a final dot.
func Canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// InZone reports whether name is zone or a name below it.
func InZone(name, zone string) bool {
	n, z := Canonical(name), Canonical(zone)
	return n == z || strings.HasSuffix(n, "."+z)
}
