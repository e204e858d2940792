package config

import (
	"net"
	"net/url"
	"strings"

	"github.com/eipclaim/eipclaim/internal/dnsname"
)

// DynDNS publishes Hostname through a provider's HTTP API that speaks the
// dyndns2 protocol (GET URL?hostname=…&myip=… with basic auth).
type DynDNS struct {
	URL          string `yaml:"url"` // https only, except a loopback URL
	Hostname     string `yaml:"hostname"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// Address is the address published: private (default, the holder's
	// private IP) or public (the EIP).
	Address string `yaml:"address"`
}

// The dyndns address values.
const (
	DynDNSPrivate = "private"
	DynDNSPublic  = "public"
)

// EffectiveAddress returns private or public; private when unset.
func (d *DynDNS) EffectiveAddress() string {
	if d.Address == "" {
		return DynDNSPrivate
	}
	return d.Address
}

// CheckDynDNSURL checks a dyndns2 endpoint: https, or http to a loopback
// address (a provider's agent on the same machine, or a test); no user
// info (the credentials are username and password_file) and no query.
func CheckDynDNSURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "want the provider's dyndns2 update URL, such as https://members.example-ddns.net/nic/update"
	}
	if u.User != nil {
		return "the URL must not carry credentials: use username and password_file"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "the URL must not carry a query: eipclaim adds hostname and myip"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || strings.EqualFold(host, "localhost") {
			return ""
		}
		return "plain http would send the password in the clear: use https (http only to a loopback address)"
	}
	return "want an https:// URL"
}

func (v *validator) dyndns(path string, d *DynDNS) {
	if d == nil {
		return
	}
	switch {
	case d.URL == "":
		v.add(path+".url", "", "required: the provider's dyndns2 update URL")
	default:
		if want := CheckDynDNSURL(d.URL); want != "" {
			u, _, _ := strings.Cut(d.URL, "?")
			if p, err := url.Parse(u); err == nil {
				p.User = nil
				u = p.String()
			}
			v.add(path+".url", u, want)
		}
	}
	switch {
	case d.Hostname == "":
		v.add(path+".hostname", "", "required: the name to update")
	case !dnsname.IsDomainName(d.Hostname) || !strings.Contains(dnsname.HostName(d.Hostname), "."):
		v.add(path+".hostname", d.Hostname, "want a fully qualified host name, such as master-db.example-ddns.net")
	}
	if d.Username == "" {
		v.add(path+".username", "", "required: the account name for basic auth")
	}
	if d.PasswordFile == "" {
		v.add(path+".password_file", "", "required: a file holding the password (mode 0600)")
	}
	switch d.Address {
	case "", DynDNSPrivate, DynDNSPublic:
	default:
		v.add(path+".address", d.Address, "want private (the holder's private IP, the default) or public (the EIP)")
	}
}
