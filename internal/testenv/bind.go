package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

var namedTool = tool{
	name:     "named",
	env:      "NAMED_BIN",
	fallback: []string{"/usr/sbin"},
	install:  "sudo apt-get install -y bind9 bind9-dnsutils  (or: bash scripts/tools.sh)",
}

// BIND is a running BIND 9 named serving one primary zone that accepts
// RFC 2136 updates signed with a TSIG key.
type BIND struct {
	// Addr is where it answers, over UDP and TCP: 127.0.0.1:PORT.
	Addr string
	// Zone is the zone's name, fully qualified: "example.internal.".
	Zone string
	// KeyName is the TSIG key's name, fully qualified: "eipclaim-test.".
	KeyName string
	// KeyAlgorithm is the TSIG algorithm as named.conf and eipclaim's
	// tsig_algorithm spell it: "hmac-sha256" (miekg/dns: dns.HmacSHA256).
	KeyAlgorithm string
	// Secret is the TSIG secret, base64, random for each server. Never log it.
	Secret string
	// KeyFile holds Secret followed by a newline, as a file written by hand
	// would, mode 0600: what tsig_secret_file names.
	KeyFile string
}

// String describes b without its secret, so that printing a BIND cannot leak
// it into test logs.
func (b BIND) String() string {
	return fmt.Sprintf("BIND{Addr: %s, Zone: %s, KeyName: %s, KeyAlgorithm: %s, Secret: <redacted>, KeyFile: %s}",
		b.Addr, b.Zone, b.KeyName, b.KeyAlgorithm, b.KeyFile)
}

// GoString is String, for %#v.
func (b BIND) GoString() string { return b.String() }

// StartBIND starts named for t, serving zone (e.g. "example.internal"; a
// final dot is added) with SOA and NS records and accepting dynamic updates
// signed with the returned TSIG key; it is stopped when t ends. The zone's
// name server is ns1.<zone> at 127.0.0.1.
func StartBIND(t testing.TB, zone string) *BIND {
	t.Helper()
	began := time.Now()
	zone = dns.Fqdn(strings.ToLower(zone))
	if _, ok := dns.IsDomainName(zone); !ok || zone == "." {
		t.Fatalf("testenv: StartBIND: %q is not a zone name", zone)
	}
	dir := t.TempDir()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	b := &BIND{
		Zone:         zone,
		KeyName:      "eipclaim-test.",
		KeyAlgorithm: "hmac-sha256",
		Secret:       base64.StdEncoding.EncodeToString(secret),
		KeyFile:      filepath.Join(dir, "tsig.key"),
	}
	if err := os.WriteFile(b.KeyFile, []byte(b.Secret+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	zoneFile := filepath.Join(dir, "zone.db")
	if err := os.WriteFile(zoneFile, []byte(zoneText(zone)), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p, port, err := bindLaunch(b, dir, zoneFile).run()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanupProcess(t, p)
	b.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	t.Logf("testenv: named ready on %s (zone %s) in %s", b.Addr, zone, since(began))
	return b
}

// bindLaunch starts named for b's zone and key, with its files in dir.
func bindLaunch(b *BIND, dir, zoneFile string) launch {
	conf := filepath.Join(dir, "named.conf")
	return launch{
		name:    "named",
		tool:    namedTool,
		timeout: 10 * time.Second,
		prepare: func(port int) ([]string, []string, string, error) {
			var s strings.Builder
			err := namedConf.Execute(&s, map[string]any{
				"Dir": dir, "Port": port, "Zone": b.Zone, "ZoneFile": zoneFile,
				"KeyName": b.KeyName, "Algorithm": b.KeyAlgorithm, "Secret": b.Secret,
			})
			if err != nil {
				return nil, nil, "", err
			}
			if err := os.WriteFile(conf, []byte(s.String()), 0o600); err != nil {
				return nil, nil, "", err
			}
			// -g: foreground, log to stderr. No -u: named keeps the user
			// it was started as, who owns dir. -4: IPv4 only. -n 1: one
			// worker thread is plenty.
			return []string{"-g", "-4", "-n", "1", "-c", conf}, baseEnv(), dir, nil
		},
		ready: func(port int) error {
			return probeSOA(fmt.Sprintf("127.0.0.1:%d", port), b.Zone)
		},
	}
}

// probeSOA wants an authoritative SOA answer for zone over UDP and over TCP.
func probeSOA(addr, zone string) error {
	for _, network := range []string{"udp", "tcp"} {
		c := dns.Client{Net: network, Timeout: time.Second}
		m := new(dns.Msg)
		m.SetQuestion(zone, dns.TypeSOA)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			return fmt.Errorf("SOA %s over %s: %w", zone, network, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			return fmt.Errorf("SOA %s over %s: rcode %s, authoritative %t, %d answers",
				zone, network, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		}
		if _, ok := r.Answer[0].(*dns.SOA); !ok {
			return errors.New("SOA query answered with " + r.Answer[0].String())
		}
	}
	return nil
}

func zoneText(zone string) string {
	return fmt.Sprintf(`$TTL 300
@	IN SOA	ns1.%[1]s hostmaster.%[1]s ( 1 3600 600 86400 300 )
@	IN NS	ns1.%[1]s
ns1	IN A	127.0.0.1
`, zone)
}

// namedConf keeps every file named writes inside Dir, answers only on
// 127.0.0.1:Port, serves only the zone (no recursion), and has no control
// channel.
var namedConf = template.Must(template.New("named.conf").Parse(`options {
	directory "{{.Dir}}";
	pid-file "{{.Dir}}/named.pid";
	session-keyfile "{{.Dir}}/session.key";
	managed-keys-directory "{{.Dir}}";
	dump-file "{{.Dir}}/named_dump.db";
	statistics-file "{{.Dir}}/named.stats";
	listen-on port {{.Port}} { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-query { any; };
	allow-transfer { none; };
};

controls { };

key "{{.KeyName}}" {
	algorithm {{.Algorithm}};
	secret "{{.Secret}}";
};

zone "{{.Zone}}" {
	type primary;
	file "{{.ZoneFile}}";
	journal "{{.ZoneFile}}.jnl";
	allow-update { key "{{.KeyName}}"; };
};
`))
