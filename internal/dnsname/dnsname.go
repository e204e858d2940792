// Package dnsname holds the rules of DNS names, in one place: which
// strings are domain names (IsDomainName) and host names (CheckHostName),
// a DNS name as a host name (HostName), their canonical form (Canonical), zone membership (InZone), and Route
// 53's spelling of a name (Route53). internal/config validates with them,
// publishers and hosts files write with them.
package dnsname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

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

// CheckHostName reports why name is not a host name that a resolver would
// look up, in DNS or in a hosts file: RFC 952 as relaxed by RFC 1123 (labels
// of letters, digits and inner hyphens, at most 63 characters, which may
// start with a digit), at most 253 characters in all, no final dot, and a
// last label that is not all digits (it would read as an IP address). It is
// the rule of the names eipclaim publishes, and internal/hosts applies it to
// every name it writes.
func CheckHostName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			return fmt.Errorf("contains white space (%q): a hosts file would read two names", r)
		case r == '#':
			return errors.New("contains '#', which starts a comment in a hosts file")
		case r == '_':
			return errors.New("contains '_': RFC 952/1123 host names have letters, digits, '-' and '.' only (rename it, e.g. with '-')")
		case !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.'):
			return fmt.Errorf("character %q not allowed: host names have letters, digits, '-' and '.' only", r)
		}
	}
	if strings.HasSuffix(name, ".") {
		return errors.New("trailing dot: give the name without it")
	}
	if len(name) > 253 {
		return fmt.Errorf("%d characters, more than the 253 a host name may have", len(name))
	}
	var last string
	for rest, more := name, true; more; {
		last, rest, more = strings.Cut(rest, ".")
		switch {
		case last == "":
			return errors.New("empty label (leading dot or \"..\")")
		case len(last) > 63:
			return fmt.Errorf("label %.20q... is %d characters, more than 63", last, len(last))
		case last[0] == '-' || last[len(last)-1] == '-':
			return fmt.Errorf("label %q starts or ends with '-'", last)
		}
	}
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("last label %q is all digits: resolvers would read the name as an IP address", last)
	}
	return nil
}

// HostName returns the host name of a DNS name: without its final dot,
// which DNS names may have and host names (hosts files, the role table, a
// dyndns2 update) may not.
func HostName(name string) string { return strings.TrimSuffix(name, ".") }

// Canonical returns name in lower case with a final dot.
func Canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// InZone reports whether name is zone or a name below it.
func InZone(name, zone string) bool {
	n, z := Canonical(name), Canonical(zone)
	return n == z || strings.HasSuffix(n, "."+z)
}

// Route53 returns a name as Route 53 spells it (octal escapes such as
// \052 for '*', any case, final dot or not) in canonical form: unescaped,
// lower case, with a final dot.
func Route53(s string) string {
	if strings.IndexByte(s, '\\') >= 0 {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
				n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	return Canonical(s)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
