package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestTypedValues(t *testing.T) {
	c, err := Parse([]byte(good), "test")
	if err != nil {
		t.Fatal(err)
	}
	db := c.Roles["master-db"]
	if db.Interface.ENI != "eni-0123456789abcdef0" || !db.Interface.Set() || db.Interface.String() != "eni-0123456789abcdef0" {
		t.Errorf("master-db interface = %+v", db.Interface)
	}
	if db.HealthCheck.Port != 5432 || !db.HealthCheck.Set() || db.HealthCheck.String() != "tcp:5432" {
		t.Errorf("master-db health_check = %+v", db.HealthCheck)
	}
	if got := db.DNS.RFC2136.Addr(); got != "10.0.0.2:53" {
		t.Errorf("rfc2136 addr = %q", got)
	}
	web := c.Roles["web"]
	if web.Interface.Set() || web.HealthCheck.Set() || web.Interface.String() != "" || web.HealthCheck.String() != "" {
		t.Errorf("web: unset interface and health check read as set: %+v %+v", web.Interface, web.HealthCheck)
	}
	for in, want := range map[string]string{"10.0.0.2": "10.0.0.2:53", "ns.example:5353": "ns.example:5353", "[::1]": "[::1]:53", "::1": "[::1]:53"} {
		if got := (&RFC2136{Server: in}).Addr(); got != want {
			t.Errorf("Addr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	var holder struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &holder); err != nil {
		t.Fatal(err)
	}
	if holder.D.D != 90*time.Second || holder.D.String() != "1m30s" || holder.D.Or(time.Second) != 90*time.Second {
		t.Errorf("1m30s decoded as %v", holder.D)
	}
	if got := (Duration{}).Or(5 * time.Second); got != 5*time.Second {
		t.Errorf("unset Or = %v", got)
	}
	for _, bad := range []string{"5", "soon", "-5s", "5 s"} {
		holder.D = Duration{}
		if err := yaml.Unmarshal([]byte("d: '"+bad+"'\n"), &holder); err != nil {
			t.Fatal(err)
		}
		c := &Config{lines: map[string]int{"roles.db.watch": 7, "roles.db.watch.interval": 8}}
		v := &validator{c: c}
		v.duration("roles.db.watch.interval", holder.D)
		want := `roles.db.watch.interval "` + bad + `" (line 8): ` + durationRule
		if len(v.problems) != 1 || v.problems[0].Error() != want {
			t.Errorf("%q: problems %v, want %s", bad, v.problems, want)
		}
	}
}

// TestParseRejectsWhatPublishersTrust: the publishers (internal/publish)
// take the DNS names and the rfc2136 server as validated here and do not
// check them again, so each is refused here, with its key and line.
func TestParseRejectsWhatPublishersTrust(t *testing.T) {
	const rfc = "roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      rfc2136: {"
	tests := map[string]struct{ doc, want string }{
		"rfc2136 bad server":       {rfc + "server: '10.0.0.2:99999', zone: example.internal., name: db.example.internal., tsig_name: k., tsig_secret_file: /k}\n", `roles.db.dns.rfc2136.server "10.0.0.2:99999" (line 5)`},
		"rfc2136 no zone":          {rfc + "server: 10.0.0.2, name: db.example.internal., tsig_name: k., tsig_secret_file: /k}\n", `roles.db.dns.rfc2136.zone (line 5): want the zone's DNS name`},
		"rfc2136 name outside":     {rfc + "server: 10.0.0.2, zone: example.internal., name: db.example.com., tsig_name: k., tsig_secret_file: /k}\n", `roles.db.dns.rfc2136.name "db.example.com." (line 5): want a name inside zone example.internal.`},
		"rfc2136 bad tsig name":    {rfc + "server: 10.0.0.2, zone: example.internal., name: db.example.internal., tsig_name: 'a b', tsig_secret_file: /k}\n", `roles.db.dns.rfc2136.tsig_name "a b" (line 5)`},
		"route53 empty label name": {"roles:\n  db:\n    public_ip: 203.0.113.3\n    dns:\n      route53: {zone_id: Z1, name: db..corp.example}\n", `roles.db.dns.route53.name "db..corp.example" (line 5)`},
	}
	for name, tc := range tests {
		_, err := Parse([]byte(tc.doc), "test")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}
