package config

import (
	"errors"
	"strings"
	"testing"
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
	if got := c.Roles["mail"].Interface; got != "1" {
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
		{"no selector", "roles:\n  db:\n    takeover: never\n", []string{"roles.db (line 2): want exactly one"}},
		{"bad takeover", "roles:\n  db:\n    public_ip: 203.0.113.3\n    takeover: sometimes\n", []string{`roles.db.takeover "sometimes" (line 4)`}},
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
