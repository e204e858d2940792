package dnsname

import (
	"strings"
	"testing"
)

func TestRoute53Name(t *testing.T) {
	tests := []struct{ in, want string }{
		{"db.example.internal.", "db.example.internal."},
		{"DB.Example.Internal", "db.example.internal."},
		{`\052.example.internal.`, "*.example.internal."},
		{`a\100b.example.`, "a@b.example."},
		{`trailing\05`, `trailing\05.`}, // not an escape: kept
		{`back\\slash.`, `back\\slash.`},
	}
	for _, tc := range tests {
		if got := Route53(tc.in); got != tc.want {
			t.Errorf("Route53(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsDomainName(t *testing.T) {
	for s, want := range map[string]bool{
		"a.example.internal": true, "a.example.internal.": true, "_svc.a.b": true, "xn--bcher-kva.ch": true,
		"": false, ".": false, "a..b": false, "-a.b": false, "a-.b": false, "a b": false, "a_b.c": false,
		strings.Repeat("a", 64) + ".b": false, strings.Repeat("a.", 127) + "ab": false,
	} {
		if got := IsDomainName(s); got != want {
			t.Errorf("IsDomainName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestHostName: a DNS name as a host name (hosts files, the role table, a
// dyndns2 update) loses its final dot, and only that.
func TestHostName(t *testing.T) {
	for in, want := range map[string]string{
		"db.example.internal.": "db.example.internal",
		"db.example.internal":  "db.example.internal",
		"DB.Example.":          "DB.Example",
		"":                     "",
	} {
		if got := HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
}
