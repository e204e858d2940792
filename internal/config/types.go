package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Interface is a role's interface: selector, parsed once when the
// configuration is decoded: an ENI id (eni-…) or a device index 0 to 31.
// The zero value is unset (the instance's primary interface, or the one
// that has private_ip). Consumers use ENI, Device and Set; nothing
// re-parses it.
type Interface struct {
	ENI    string // eni-…, or "" for a device index
	Device int    // the device index when ENI is ""
	set    bool
	bad    string // the value as written, when it is not valid (validate reports it)
}

const interfaceRule = "want eni- and 8 or 17 lowercase hex digits, or a device index 0 to 31 (digits only)"

// ParseInterface parses an interface: value, eni-… or a device index.
func ParseInterface(s string) (Interface, error) {
	if eniIDRE.MatchString(s) {
		return Interface{ENI: s, set: true}, nil
	}
	if n, ok := decimal(s, 0, 31); ok {
		return Interface{Device: n, set: true}, nil
	}
	return Interface{}, fmt.Errorf("interface %q: %s", s, interfaceRule)
}

// Set reports whether the role names an interface.
func (i Interface) Set() bool { return i.set }

// String returns the selector as written: the ENI id, the device index,
// or "" when unset.
func (i Interface) String() string {
	switch {
	case i.bad != "":
		return i.bad
	case !i.set:
		return ""
	case i.ENI != "":
		return i.ENI
	}
	return strconv.Itoa(i.Device)
}

// UnmarshalYAML parses the scalar; an invalid value is kept for
// validation to report with its key path and line.
func (i *Interface) UnmarshalYAML(n *yaml.Node) error {
	*i = Interface{}
	if n.Value == "" {
		return nil
	}
	p, err := ParseInterface(n.Value)
	if err != nil {
		i.bad = n.Value
		return nil
	}
	*i = p
	return nil
}

// MarshalText writes the selector as written (JSON, YAML).
func (i Interface) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// HealthCheck is a role's health_check:, tcp:PORT, parsed once when the
// configuration is decoded. The zero value is unset (no check).
type HealthCheck struct {
	Port int    // 1 to 65535 when set
	bad  string // the value as written, when it is not valid
}

// ParseHealthCheck parses a health_check value, tcp:PORT, PORT digits only.
func ParseHealthCheck(s string) (HealthCheck, error) {
	p, ok := strings.CutPrefix(s, "tcp:")
	n, valid := decimal(p, 1, 65535)
	if !ok || !valid {
		return HealthCheck{}, fmt.Errorf("want tcp:PORT with a port from 1 to 65535 (digits only), such as tcp:5432")
	}
	return HealthCheck{Port: n}, nil
}

// Set reports whether the role has a health check.
func (h HealthCheck) Set() bool { return h.Port > 0 }

// String returns "tcp:PORT", or "" when unset.
func (h HealthCheck) String() string {
	switch {
	case h.bad != "":
		return h.bad
	case h.Port == 0:
		return ""
	}
	return "tcp:" + strconv.Itoa(h.Port)
}

// UnmarshalYAML parses the scalar; an invalid value is kept for
// validation to report with its key path and line.
func (h *HealthCheck) UnmarshalYAML(n *yaml.Node) error {
	*h = HealthCheck{}
	if n.Value == "" {
		return nil
	}
	p, err := ParseHealthCheck(n.Value)
	if err != nil {
		h.bad = n.Value
		return nil
	}
	*h = p
	return nil
}

// MarshalText writes tcp:PORT (JSON, YAML).
func (h HealthCheck) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// Addr returns the server as host:port, port 53 when omitted. Server
// was checked when the configuration was validated (ServerAddr); Addr
// only adds the default port.
func (d *RFC2136) Addr() string {
	if _, _, err := net.SplitHostPort(d.Server); err == nil {
		return d.Server
	}
	return net.JoinHostPort(strings.Trim(d.Server, "[]"), "53")
}
