package placement

import (
	"strings"
	"testing"
)

func TestAddr(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"203.0.113.10", "203.0.113.10", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"203.0.113", "", `the public_ip EC2 reported, "203.0.113", is not an IP address`},
		{"ec2-203-0-113-10", "", `the public_ip EC2 reported, "ec2-203-0-113-10", is not an IP address`},
	} {
		a, err := Addr("public_ip", tt.in)
		if got := String(a); got != tt.want {
			t.Errorf("Addr(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Addr(%q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}
