package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const good = `role: master-db
source: s3://fleet-config/eipclaim.yaml
roles:
  master-db:
    allocation_id: eipalloc-0123456789abcdef0
    private_ip: 10.0.1.5
    interface: eni-0123456789abcdef0
    takeover: if-holder-down
    health_check: tcp:5432
    dns:
      route53: {zone_id: Z0123456789ABC, name: master-db.example.internal, ttl: 60}
      rfc2136: {server: 10.0.0.2:53, zone: example.internal., name: master-db.example.internal.,
                tsig_name: eipclaim., tsig_algorithm: hmac-sha256, tsig_secret_file: /etc/eipclaim/tsig.key}
  mail:
    public_ip: 203.0.113.10
    interface: 1
  web:
    pool: {tags: {eip-pool: web}}
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), "test")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Role != "master-db" || c.Source != "s3://fleet-config/eipclaim.yaml" {
		t.Errorf("role, source = %q, %q", c.Role, c.Source)
	}
	db, err := c.Lookup("master-db")
	if err != nil {
		t.Fatal(err)
	}
	if db.AllocationID != "eipalloc-0123456789abcdef0" || db.DNS.Route53.TTL != 60 || db.DNS.RFC2136.TSIGName != "eipclaim." {
		t.Errorf("master-db decoded wrong: %+v", db)
	}
	if got := c.Roles["mail"].Interface; got.String() != "1" || got.Device != 1 || got.ENI != "" {
		t.Errorf("mail.interface = %q, want \"1\"", got)
	}
	if got := c.Roles["web"].Pool.Tags["eip-pool"]; got != "web" {
		t.Errorf("web pool tag = %q", got)
	}
	if got := c.Roles["mail"].EffectiveTakeover(); got != TakeoverIfHolderDown {
		t.Errorf("default takeover = %q", got)
	}
	if got := c.Line("roles.master-db.allocation_id"); got != 5 {
		t.Errorf("line of allocation_id = %d, want 5", got)
	}
}

func TestParseJSON(t *testing.T) {
	c, err := Parse([]byte(`{"role":"db","roles":{"db":{"public_ip":"198.51.100.7"}}}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Roles["db"].PublicIP != "198.51.100.7" {
		t.Errorf("public_ip = %q", c.Roles["db"].PublicIP)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every one must appear in the message
	}{
		{"unknown top key", "role: db\nrolez: {}\n", []string{"rolez (line 2): unknown key"}},
		{"unknown role key", "roles:\n  db:\n    public_ip: 203.0.113.1\n    alocation_id: x\n", []string{"roles.db.alocation_id (line 4): unknown key"}},
		{"malformed allocation id", "roles:\n  db:\n    allocation_id: eipalloc-XYZ\n", []string{`roles.db.allocation_id "eipalloc-XYZ" (line 3): want eipalloc-`}},
		{"not an ip", "roles:\n  db:\n    public_ip: 203.0.113.300\n", []string{`roles.db.public_ip "203.0.113.300" (line 3)`}},
		{"two selectors", "roles:\n  db:\n    public_ip: 203.0.113.3\n    allocation_id: eipalloc-01234567\n", []string{"roles.db (line 2): want exactly one"}},
		{"no selector", "roles:\n  db:\n    takeover: never\n", []string{"roles.db (line 2): want one of allocation_id, public_ip or pool"}},
		{"bad takeover", "roles:\n  db:\n    public_ip: 203.0.113.3\n    takeover: sometimes\n", []string{`roles.db.takeover "sometimes" (line 4)`}},
		{"bad fence", "roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: kill\n", []string{`roles.db.fence "kill" (line 4): want off or stop`}},
		{"fence wrong type", "roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: [stop]\n", []string{"roles.db.fence", "line 4"}},
		{"fence timeout without fence", "roles:\n  db:\n    public_ip: 203.0.113.3\n    fence_timeout: 30s\n", []string{`roles.db.fence_timeout "30s" (line 4)`, "set fence: stop"}},
		{"fence timeout bare number", "roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: stop\n    fence_timeout: 30\n", []string{`roles.db.fence_timeout "30" (line 5): want a duration`}},
		{"fence timeout too long", "roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: stop\n    fence_timeout: 1h\n", []string{`roles.db.fence_timeout "1h0m0s" (line 5): want a duration from 1s to 10m0s`}},
		{"fence on a pool", "roles:\n  web:\n    pool: {tags: {eip-pool: web}}\n    fence: stop\n", []string{`roles.web.fence "stop" (line 4)`, "never taken from a holder"}},
		{"bad health check", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: http:80\n", []string{`roles.db.health_check "http:80" (line 4): want tcp:PORT`}},
		{"bad dns name", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: 'bad name!'}\n", []string{`roles.db.dns.route53.name "bad name!" (line 5)`}},
		{"cname at apex", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone: example.com, name: example.com}\n", []string{"zone apex"}},
		{"name outside zone", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: 127.0.0.1:53, zone: a.example., name: db.b.example., tsig_name: k., tsig_secret_file: /k}\n", []string{"want a name inside zone a.example."}},
		{"bad interface", "roles:\n  db:\n    public_ip: 203.0.113.3\n    interface: eth0\n", []string{`roles.db.interface "eth0" (line 4)`}},
		{"public private ip", "roles:\n  db:\n    public_ip: 203.0.113.3\n    private_ip: 8.8.8.8\n", []string{`roles.db.private_ip "8.8.8.8"`}},
		{"wrong type", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: a.b, ttl: soon}\n", []string{"line 5", "want a whole number"}},
		{"list for mapping", "roles: [a, b]\n", []string{"roles (line 1): want a mapping"}},
		{"not yaml", "roles: {a: [}\n", []string{"not YAML"}},
		{"empty", "", []string{"empty"}},
		{"scalar document", "hello\n", []string{"want a mapping"}},
		{"http source", "source: http://x/y\n", []string{`source "http://x/y"`}},
		{"rfc2136 without tsig", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: 127.0.0.1:53, zone: a., name: db.a.}\n", []string{"tsig_name", "tsig_secret_file"}},
		{"all problems at once", "roles:\n  a:\n    allocation_id: eipalloc-1\n  b:\n    public_ip: nope\n", []string{"roles.a.allocation_id", "roles.b.public_ip"}},

		// Role names are host names (they go into hosts files): one rule,
		// and unique whatever their case, across role names and DNS names.
		{"all-numeric role name", "roles:\n  '123':\n    public_ip: 203.0.113.3\n", []string{"roles.123 (line 2)", "all digits"}},
		{"all-numeric role", "role: 42\n", []string{`role "42" (line 1)`, "all digits"}},
		{"role name with underscore", "roles:\n  master_db:\n    public_ip: 203.0.113.3\n", []string{"roles.master_db (line 2)", "'_'"}},
		{"role name with dot", "roles:\n  db.a:\n    public_ip: 203.0.113.3\n", []string{"roles.db.a (line 2)", "single label"}},
		{"role name ends with hyphen", "roles:\n  db-:\n    public_ip: 203.0.113.3\n", []string{"roles.db- (line 2)", "'-'"}},
		{"role name too long", "roles:\n  " + strings.Repeat("a", 64) + ":\n    public_ip: 203.0.113.3\n", []string{"64 characters", "63"}},
		{"role names differ only in case", "roles:\n  DB:\n    public_ip: 203.0.113.3\n  db:\n    public_ip: 203.0.113.4\n",
			[]string{`roles.db (line 4): role name "db" is also role "DB" (line 2)`, "case"}},
		{"same route53 name", "roles:\n  a:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: x.example.com}\n" +
			"  b:\n    public_ip: 203.0.113.4\n    dns:\n      route53: {zone_id: Z1, name: X.Example.com.}\n",
			[]string{`roles.b.dns.route53.name "X.Example.com." (line 9)`, "role a publishes this name too (roles.a.dns.route53.name, line 5", "give role b or role a another name"}},
		{"route53 name of one role is the rfc2136 name of another", "roles:\n  a:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: x.example.com}\n" +
			"  b:\n    public_ip: 203.0.113.4\n    dns:\n      rfc2136: {server: 127.0.0.1, zone: example.com., name: x.example.com., tsig_name: k., tsig_secret_file: /k}\n",
			[]string{`roles.b.dns.rfc2136.name "x.example.com." (line 9): role a publishes this name too (roles.a.dns.route53.name, line 5`}},
		{"dyndns hostname of one role is the route53 name of another", "roles:\n  a:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: x.example.com}\n" +
			"  b:\n    public_ip: 203.0.113.4\n    dns:\n      dyndns: {url: 'https://members.example-ddns.net/nic/update', hostname: X.example.com, username: u, password_file: /p}\n",
			[]string{`roles.b.dns.dyndns.hostname "X.example.com" (line 9): role a publishes this name too (roles.a.dns.route53.name, line 5`}},
		{"dns name is another role's name", "roles:\n  cache:\n    public_ip: 203.0.113.3\n  db:\n    public_ip: 203.0.113.4\n    dns:\n      route53: {zone_id: Z1, name: Cache}\n",
			[]string{`roles.db.dns.route53.name "Cache" (line 7): role cache publishes this name too (roles.cache, line 2`}},
		{"role name is another role's dns name", "roles:\n  app:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: CACHE.}\n  cache:\n    public_ip: 203.0.113.4\n",
			[]string{`roles.cache (line 6): role name "cache": role app publishes this name too (roles.app.dns.route53.name, line 5`}},
		{"underscore in dns name", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: _db.example.com}\n", []string{`roles.db.dns.route53.name "_db.example.com" (line 5)`, "'_'"}},
		{"all-digit last label", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: 127.0.0.1, zone: '123.', name: db.123., tsig_name: k., tsig_secret_file: /k}\n", []string{`roles.db.dns.rfc2136.name "db.123." (line 5)`, "all digits"}},

		// A second YAML document would be ignored.
		{"second document", "role: db\n---\nrole: web\n", []string{"--- (line 2): a second YAML document"}},
		{"second document after an end marker", "---\nrole: db\n...\n---\nroles: {web: {public_ip: 203.0.113.3}}\n", []string{"--- (line 4)"}},
		{"second document and a bad first one", "rolez: db\n---\nrole: web\n", []string{"rolez (line 1): unknown key", "--- (line 2)"}},
		{"syntax error in a second document", "role: db\n---\nroles: {a: [}\n", []string{"not YAML"}},

		// Whole numbers only, and ports and indexes are plain digits.
		{"fractional route53 ttl", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: a.b, ttl: 60.5}\n", []string{`roles.db.dns.route53.ttl "60.5" (line 5): want a whole number`}},
		{"exponent rfc2136 ttl", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: 127.0.0.1, zone: b., name: a.b., tsig_name: k., tsig_secret_file: /k,\n                ttl: 6e1}\n", []string{`roles.db.dns.rfc2136.ttl "6e1" (line 6): want a whole number`}},
		{"float ttl in JSON", `{"roles": {"db": {"public_ip": "203.0.113.3", "dns": {"route53": {"zone_id": "Z1", "name": "a.b", "ttl": 60.0}}}}}`, []string{`roles.db.dns.route53.ttl "60.0" (line 1): want a whole number`}},
		{"health check port with a sign", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: tcp:+5432\n", []string{`roles.db.health_check "tcp:+5432" (line 4): want tcp:PORT`}},
		{"health check port with a leading zero", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: tcp:05432\n", []string{`roles.db.health_check "tcp:05432" (line 4)`}},
		{"health check port with spaces", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: 'tcp: 5432'\n", []string{`roles.db.health_check "tcp: 5432" (line 4)`}},
		{"health check port 0", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: tcp:0\n", []string{`roles.db.health_check "tcp:0" (line 4)`}},
		{"health check port too big", "roles:\n  db:\n    public_ip: 203.0.113.3\n    health_check: tcp:65536\n", []string{`roles.db.health_check "tcp:65536" (line 4)`}},
		{"device index with a sign", "roles:\n  db:\n    public_ip: 203.0.113.3\n    interface: +1\n", []string{`roles.db.interface "+1" (line 4)`}},
		{"device index with a leading zero", "roles:\n  db:\n    public_ip: 203.0.113.3\n    interface: 01\n", []string{`roles.db.interface "01" (line 4)`}},
		{"device index negative zero", "roles:\n  db:\n    public_ip: 203.0.113.3\n    interface: '-0'\n", []string{`roles.db.interface "-0" (line 4)`}},
		{"device index 32", "roles:\n  db:\n    public_ip: 203.0.113.3\n    interface: 32\n", []string{`roles.db.interface "32" (line 4)`}},
		{"server port with a sign", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: '127.0.0.1:+53', zone: b., name: a.b., tsig_name: k., tsig_secret_file: /k}\n", []string{`roles.db.dns.rfc2136.server "127.0.0.1:+53" (line 5)`}},
		{"server port with a leading zero", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: 'ns.example:053', zone: b., name: a.b., tsig_name: k., tsig_secret_file: /k}\n", []string{`roles.db.dns.rfc2136.server "ns.example:053" (line 5)`}},
		{"server port 0", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {server: '[::1]:0', zone: b., name: a.b., tsig_name: k., tsig_secret_file: /k}\n", []string{`roles.db.dns.rfc2136.server "[::1]:0" (line 5)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), "test")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseAccepts lists edge cases that are valid and must stay so.
func TestParseAccepts(t *testing.T) {
	role := func(body string) string { return "role: db\nroles:\n  db:\n    public_ip: 203.0.113.3\n" + body }
	rfc := func(extra string) string {
		return role("    dns:\n      rfc2136: {server: 10.0.0.2, zone: example.internal., name: db.example.internal., tsig_name: k., tsig_secret_file: /k" + extra + "}\n")
	}
	for name, doc := range map[string]string{
		"63-character role name":          "roles:\n  " + strings.Repeat("a", 63) + ":\n    public_ip: 203.0.113.3\n",
		"role name starting with a digit": "roles:\n  1db:\n    public_ip: 203.0.113.3\n  x--y:\n    public_ip: 203.0.113.4\n",
		"one role's names in any case":    role("    dns:\n      route53: {zone_id: Z1, name: DB.example.internal}\n      rfc2136: {server: 10.0.0.2, zone: example.internal., name: db.Example.Internal., tsig_name: k., tsig_secret_file: /k}\n"),
		"dns name that is the role name":  role("    dns:\n      route53: {zone_id: Z1, name: db}\n"),
		"digits inside a dns name":        role("    dns:\n      route53: {zone_id: Z1, name: 10.db.example2.internal}\n"),
		"device index 0":                  role("    interface: 0\n"),
		"device index 31":                 role("    interface: '31'\n"),
		"health check port 1":             role("    health_check: tcp:1\n"),
		"health check port 65535":         role("    health_check: tcp:65535\n"),
		"server without a port":           rfc(""),
		"ttl 604800":                      rfc(", ttl: 604800"),
		"hexadecimal ttl":                 rfc(", ttl: 0x3c"),
		"server with a port":              strings.Replace(rfc(""), "10.0.0.2", "'[fd00::2]:5353'", 1),
		"empty document after ---":        role("---\n"),
		"comments after ---":              role("---\n# role: web\n"),
		"--- before the document":         "---\n" + role("") + "...\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc), "test"); err != nil {
				t.Errorf("Parse:\n%s\n: %v", doc, err)
			}
		})
	}
}

func TestCheckRoleName(t *testing.T) {
	for name, want := range map[string]string{
		"master-db": "", "a": "", "1db": "", "db1": "", "Db": "", strings.Repeat("x", 63): "",
		"": "empty", "123": "all digits", "0": "all digits", "master_db": "'_'", "db.a": "single label",
		"-db": "'-'", "db-": "'-'", "d b": "white space", "db#": "'#'", "dé": "not allowed",
		strings.Repeat("x", 64): "64 characters",
	} {
		err := CheckRoleName(name)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckRoleName(%q) = %v, want nil", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckRoleName(%q) = %v, want an error containing %q", name, err, want)
		}
		if ValidRoleName(name) != (err == nil) {
			t.Errorf("ValidRoleName(%q) = %v disagrees with CheckRoleName", name, ValidRoleName(name))
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	_, err := Parse([]byte("roles:\n  a:\n    allocation_id: x\n  b:\n    public_ip: y\n"), "test")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not *Error", err)
	}
	if len(ce.Problems) != 2 {
		t.Errorf("got %d problems, want 2: %v", len(ce.Problems), ce.Problems)
	}
}

func TestLookup(t *testing.T) {
	c, err := Parse([]byte(good), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup("nope"); err == nil || !strings.Contains(err.Error(), "master-db, mail, web") && !strings.Contains(err.Error(), "mail, master-db, web") {
		t.Errorf("Lookup(nope) = %v, want the list of roles", err)
	}
	if _, err := c.Lookup(""); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("Lookup(\"\") = %v", err)
	}
	empty := &Config{}
	if _, err := empty.Lookup("db"); err == nil || !strings.Contains(err.Error(), "no roles table") {
		t.Errorf("Lookup on empty = %v", err)
	}
}

func TestMerge(t *testing.T) {
	base := &Config{Role: "a", Source: "s3://b/k", Roles: map[string]*Role{"a": {PublicIP: "203.0.113.1"}, "b": {PublicIP: "203.0.113.2"}}}
	over := &Config{Role: "b", Roles: map[string]*Role{"b": {PublicIP: "203.0.113.9"}}}
	m := Merge(base, over)
	if m.Role != "b" || m.Source != "s3://b/k" || m.Roles["a"].PublicIP != "203.0.113.1" || m.Roles["b"].PublicIP != "203.0.113.9" {
		t.Errorf("Merge = %+v", m)
	}
	// Role names do not differ by case alone: over's DB replaces base's db.
	m = Merge(base, &Config{Roles: map[string]*Role{"A": {PublicIP: "203.0.113.8"}}})
	if len(m.Roles) != 2 || m.Roles["a"] != nil || m.Roles["A"].PublicIP != "203.0.113.8" {
		t.Errorf("Merge with a role differing in case = %+v", m.Roles)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("{}"))
	f.Add([]byte("roles: {a: {pool: {tags: {x: y}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err == nil && c == nil {
			t.Fatal("Parse returned nil config and nil error")
		}
		if err != nil && c != nil {
			t.Fatal("Parse returned both a config and an error")
		}
	})
}

// TestHostNames: a role's host names are its DNS names without the final
// dot, each once whatever its case, without the role's own name.
func TestHostNames(t *testing.T) {
	r := &Role{Name: "legacy", DNS: &DNS{
		Route53: &Route53{Name: "legacy-db.example.internal."},
		RFC2136: &RFC2136{Name: "Legacy-DB.example.internal"},
		DynDNS:  &DynDNS{Hostname: "legacy."},
	}}
	if got, want := r.HostNames(), []string{"legacy-db.example.internal"}; !slices.Equal(got, want) {
		t.Errorf("HostNames = %q, want %q", got, want)
	}
	if got := (*Role)(nil).HostNames(); got != nil {
		t.Errorf("nil role: %q", got)
	}
}

// TestCheckHostAddress: the addresses the role table and hosts files take.
func TestCheckHostAddress(t *testing.T) {
	for s, want := range map[string]string{
		"10.0.0.5": "", "2001:db8::1": "", "203.0.113.10": "",
		"fe80::1%eth0": "zone", "fe80::1%eth0\nx": "zone", "0.0.0.0": "unspecified", "::": "unspecified",
		"224.0.0.1": "multicast", "ff02::1": "multicast", "255.255.255.255": "broadcast", "10.0.0.300": "not an IP address",
	} {
		_, err := ParseHostAddress(s)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", s, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want an error saying %q", s, err, want)
		}
	}
}

// TestSharedEIPRefused: two roles naming one allocation_id, or one
// public_ip, are refused, the message naming both roles and their lines.
func TestSharedEIPRefused(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"allocation_id", "roles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n  web:\n    allocation_id: eipalloc-0123456789abcdef0\n    takeover: always\n",
			`roles.web.allocation_id "eipalloc-0123456789abcdef0" (line 5): roles.db.allocation_id (line 3) names this EIP too`},
		{"public_ip", "roles:\n  db:\n    public_ip: 203.0.113.10\n  web:\n    public_ip: 203.0.113.10\n",
			`roles.web.public_ip "203.0.113.10" (line 5): roles.db.public_ip (line 3) names this EIP too`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), "t")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse: %v\nwant an error saying %q", err, c.want)
			}
		})
	}
}

func TestParseFence(t *testing.T) {
	tests := []struct {
		doc     string
		fence   Fence
		timeout time.Duration
	}{
		{"roles:\n  db:\n    public_ip: 203.0.113.3\n", FenceOff, DefaultFenceTimeout},
		{"roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: off\n", FenceOff, DefaultFenceTimeout},
		{"roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: stop\n", FenceStop, DefaultFenceTimeout},
		{"roles:\n  db:\n    public_ip: 203.0.113.3\n    fence: stop\n    fence_timeout: 20s\n", FenceStop, 20 * time.Second},
	}
	for _, tc := range tests {
		c, err := Parse([]byte(tc.doc), "test")
		if err != nil {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		r := c.Roles["db"]
		if got := r.EffectiveFence(); got != tc.fence {
			t.Errorf("%q: fence %q, want %q", tc.doc, got, tc.fence)
		}
		if got := r.EffectiveFenceTimeout(); got != tc.timeout {
			t.Errorf("%q: fence timeout %s, want %s", tc.doc, got, tc.timeout)
		}
	}
}

func TestParsePrivateAddress(t *testing.T) {
	ok := []string{
		"roles:\n  db:\n    private_address: 10.0.1.50\n",
		"roles:\n  db:\n    allocation_id: eipalloc-01234567\n    private_address: 10.0.1.50\n",
		"roles:\n  db:\n    public_ip: 203.0.113.3\n    private_address: 10.0.1.50\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal}\n",
	}
	for _, doc := range ok {
		c, err := Parse([]byte(doc), "test")
		if err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
			continue
		}
		if got := c.Roles["db"].PrivateAddress; got != "10.0.1.50" {
			t.Errorf("private_address = %q, want 10.0.1.50", got)
		}
	}
	if c, _ := Parse([]byte(ok[0]), "test"); c.Roles["db"].HasEIP() {
		t.Errorf("a role with only private_address has an EIP, says HasEIP")
	}
	// The Route 53 record's type: A by default without an EIP, CNAME with
	// one, as configured otherwise.
	for doc, want := range map[string]string{
		"roles:\n  db:\n    private_address: 10.0.1.50\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal}\n":                                        "A",
		"roles:\n  db:\n    public_ip: 203.0.113.3\n    private_address: 10.0.1.50\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal}\n":            "CNAME",
		"roles:\n  db:\n    public_ip: 203.0.113.3\n    private_address: 10.0.1.50\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal, record: a}\n": "A",
		"roles:\n  db:\n    public_ip: 203.0.113.3\n": "CNAME",
	} {
		c, err := Parse([]byte(doc), "test")
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if got := c.Roles["db"].Route53Record(); got != want {
			t.Errorf("%s: Route53Record %q, want %q", doc, got, want)
		}
	}
	bad := []struct {
		name, doc string
		want      []string
	}{
		{"not an address", "roles:\n  db:\n    private_address: 10.0.1.500\n", []string{`roles.db.private_address "10.0.1.500" (line 3): want an IPv4 address`}},
		{"ipv6", "roles:\n  db:\n    private_address: fd00::5\n", []string{`roles.db.private_address "fd00::5" (line 3): want an IPv4`}},
		{"with pool", "roles:\n  db:\n    pool: {tags: {p: q}}\n    private_address: 10.0.1.50\n", []string{`roles.db.private_address "10.0.1.50" (line 4): not with pool`}},
		{"private_ip without an EIP", "roles:\n  db:\n    private_address: 10.0.1.50\n    private_ip: 10.0.1.5\n", []string{`roles.db.private_ip "10.0.1.5" (line 4): private_ip chooses the address an EIP`}},
		{"private_ip is the address", "roles:\n  db:\n    public_ip: 203.0.113.3\n    private_address: 10.0.1.50\n    private_ip: 10.0.1.50\n", []string{`roles.db.private_ip "10.0.1.50" (line 5): private_ip is the address of this instance`}},
		{"cname without an EIP", "roles:\n  db:\n    private_address: 10.0.1.50\n    dns:\n      rfc2136: {server: 10.0.0.2, zone: example.internal., name: db.example.internal., record: CNAME, tsig_name: k., tsig_secret_file: /k}\n",
			[]string{`roles.db.dns.rfc2136.record "CNAME"`, "use record: A"}},
		{"route53 cname without an EIP", "roles:\n  db:\n    private_address: 10.0.1.50\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal, record: CNAME}\n", []string{`roles.db.dns.route53.record "CNAME" (line 5): a CNAME points to the EIP's public DNS name`, "use record: A"}},
		{"route53 record of another type", "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: db.example.internal, record: AAAA}\n", []string{`roles.db.dns.route53.record "AAAA" (line 5): want CNAME`}},
		{"dyndns public without an EIP", "roles:\n  db:\n    private_address: 10.0.1.50\n    dns:\n      dyndns: {url: 'https://x.example/nic/update', hostname: db.example-ddns.net, username: u, password_file: /x, address: public}\n", []string{`roles.db.dns.dyndns.address "public"`, "use address: private"}},
		{"shared", "roles:\n  db:\n    private_address: 10.0.1.50\n  db2:\n    private_address: 10.0.1.50\n", []string{`roles.db2.private_address "10.0.1.50" (line 5): roles.db.private_address (line 3) names this address too`}},
		{"nothing", "roles:\n  db:\n    takeover: never\n", []string{"roles.db (line 2): want one of allocation_id, public_ip or pool (an EIP), or private_address"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "test")
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseLocalInterface(t *testing.T) {
	for _, v := range []string{"auto", "eth1", "ens5", "bond0.100"} {
		doc := "roles:\n  db:\n    private_address: 10.0.1.50\n    local_interface: " + v + "\n"
		c, err := Parse([]byte(doc), "test")
		if err != nil {
			t.Errorf("Parse(local_interface: %s): %v", v, err)
			continue
		}
		if got := c.Roles["db"].LocalInterface; got != v {
			t.Errorf("local_interface = %q, want %q", got, v)
		}
	}
	bad := []struct {
		name, doc string
		want      []string
	}{
		{"no private address", "roles:\n  db:\n    public_ip: 203.0.113.3\n    local_interface: auto\n",
			[]string{`roles.db.local_interface "auto" (line 4): the role has no private address`, "set private_address, or remove local_interface"}},
		{"too long", "roles:\n  db:\n    private_address: 10.0.1.50\n    local_interface: abcdefghijklmnop\n",
			[]string{`roles.db.local_interface "abcdefghijklmnop" (line 4): want auto`}},
		{"slash", "roles:\n  db:\n    private_address: 10.0.1.50\n    local_interface: eth/1\n", []string{`roles.db.local_interface "eth/1"`}},
		{"alias", "roles:\n  db:\n    private_address: 10.0.1.50\n    local_interface: 'eth0:1'\n", []string{`roles.db.local_interface "eth0:1"`}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "test")
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseOverlay(t *testing.T) {
	const tables = "route_tables: [rtb-0123456789abcdef0, rtb-01234567]"
	ok := []string{
		"repository: s3://b/t.json\nroles:\n  vpn:\n    overlay: {address: 192.168.100.10, " + tables + "}\n",
		"repository: s3://b/t.json\nroles:\n  vpn:\n    allocation_id: eipalloc-01234567\n    overlay: {address: 192.168.100.10, " + tables + "}\n",
	}
	for _, doc := range ok {
		c, err := Parse([]byte(doc), "test")
		if err == nil {
			err = c.CheckMerged("test")
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
			continue
		}
		o := c.Roles["vpn"].Overlay
		if o == nil || o.Address != "192.168.100.10" || !slices.Equal(o.RouteTables, []string{"rtb-0123456789abcdef0", "rtb-01234567"}) {
			t.Errorf("overlay = %+v, want 192.168.100.10 on two tables", o)
		}
		if got := c.Roles["vpn"].PrivateKind(); got != "192.168.100.10" {
			t.Errorf("PrivateKind() = %q, want the overlay address", got)
		}
	}
	if c, _ := Parse([]byte(ok[0]), "test"); c.Roles["vpn"].HasEIP() {
		t.Errorf("a role with only overlay has an EIP, says HasEIP")
	}
	bad := []struct {
		name, doc string
		want      []string
	}{
		{"not an address", "roles:\n  vpn:\n    overlay: {address: 192.168.100.500, " + tables + "}\n", []string{`roles.vpn.overlay.address "192.168.100.500" (line 3): want an IPv4 address outside the VPC's CIDR`}},
		{"ipv6", "roles:\n  vpn:\n    overlay: {address: 'fd00::5', " + tables + "}\n", []string{`roles.vpn.overlay.address "fd00::5" (line 3): want an IPv4`}},
		{"no address", "roles:\n  vpn:\n    overlay: {" + tables + "}\n", []string{`roles.vpn.overlay.address (line 3): want the overlay address`}},
		{"no tables", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10}\n", []string{`roles.vpn.overlay.route_tables (line 3): want at least one route table`}},
		{"bad table", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10, route_tables: [rtb-xyz]}\n", []string{`roles.vpn.overlay.route_tables "rtb-xyz"`, "want rtb- and 8 or 17 lowercase hex digits"}},
		{"table twice", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10, route_tables: [rtb-01234567, rtb-01234567]}\n", []string{`roles.vpn.overlay.route_tables "rtb-01234567"`, "given twice"}},
		{"with private_address", "roles:\n  vpn:\n    private_address: 10.0.1.50\n    overlay: {address: 192.168.100.10, " + tables + "}\n", []string{"roles.vpn.overlay (line 4): not with private_address: a role has one private kind of address"}},
		{"with pool", "roles:\n  vpn:\n    pool: {tags: {p: q}}\n    overlay: {address: 192.168.100.10, " + tables + "}\n", []string{"roles.vpn.overlay (line 4): not with pool"}},
		{"unknown key", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10, tables: [rtb-01234567]}\n", []string{"roles.vpn.overlay.tables (line 3): unknown key"}},
		{"private_ip without an EIP", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10, " + tables + "}\n    private_ip: 10.0.1.5\n", []string{`roles.vpn.private_ip "10.0.1.5" (line 4): private_ip chooses the address an EIP`, "(overlay is the role's address)"}},
		{"route53 CNAME without an EIP", "roles:\n  vpn:\n    overlay: {address: 192.168.100.10, " + tables + "}\n    dns:\n      route53: {zone_id: Z0123456789ABC, name: vpn.example.internal, record: CNAME}\n", []string{`roles.vpn.dns.route53.record "CNAME" (line 5): a CNAME points to the EIP's public DNS name, and the role has no EIP (only overlay)`}},
		{"shared with a private_address", "roles:\n  db:\n    private_address: 192.168.100.10\n  vpn:\n    overlay: {address: 192.168.100.10, " + tables + "}\n", []string{`roles.vpn.overlay.address "192.168.100.10" (line 5): roles.db.private_address (line 3) names this address too`}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "test")
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
	// repository: may come from another document (user-data beside a
	// source:): it is asked of the configuration as loaded.
	c, err := Parse([]byte("roles:\n  vpn:\n    overlay: {address: 192.168.100.10, "+tables+"}\n"), "test")
	if err != nil {
		t.Fatalf("Parse of an overlay role alone: %v (repository: is asked of the merged configuration)", err)
	}
	err = c.CheckMerged("test")
	if err == nil || !strings.Contains(err.Error(), "roles.vpn.overlay (line 3): an overlay role needs repository: its compare-and-swap") {
		t.Errorf("CheckMerged without repository: %v, want the overlay role's need of repository:", err)
	}
	if err := Merge(c, &Config{Repository: "s3://b/t.json"}).CheckMerged("test"); err != nil {
		t.Errorf("CheckMerged with repository: from another document: %v", err)
	}
}
