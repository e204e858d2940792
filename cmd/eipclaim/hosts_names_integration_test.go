package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestHostsRoleNames runs eipclaim hosts on roles tables whose names a
// hosts file cannot hold, the roles held by two instances (two addresses):
// a table that names one name twice is refused by validation, exit 2,
// naming both roles and their lines; one that only the merge of user-data
// and the document it points at makes bad is refused by hosts, naming the
// roles. Either way the hosts file is left as it was.
func TestHostsRoleNames(t *testing.T) {
	w := newWorld(t, "")
	allocA, _ := w.allocate()
	allocB, _ := w.allocate()
	w.associate(allocA, w.instance)
	w.associate(allocB, w.runInstance())
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1") // --config: no instance metadata needed

	dir := t.TempDir()
	hostsPath := filepath.Join(dir, "hosts")
	original := "127.0.0.1 localhost\n"
	if err := os.WriteFile(hostsPath, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	route53 := func(name string) string { return "    dns:\n      route53: {zone_id: Z123, name: " + name + "}\n" }
	cases := []struct {
		name, doc string
		want      []string
	}{
		{
			"role names differing in case",
			"roles:\n  DB:\n    allocation_id: " + allocA + "\n  db:\n    allocation_id: " + allocB + "\n",
			[]string{`roles.db (line 4): role name "db" is also role "DB" (line 2)`},
		},
		{
			"two roles, one DNS name",
			"roles:\n  primary:\n    allocation_id: " + allocA + "\n" + route53("db.example.internal") +
				"  replica:\n    allocation_id: " + allocB + "\n" + route53("DB.example.internal."),
			[]string{`roles.replica.dns.route53.name "DB.example.internal." (line 9): role primary publishes this name too (roles.primary.dns.route53.name, line 5`},
		},
		{
			"all-digit role name",
			"roles:\n  '1':\n    allocation_id: " + allocA + "\n  db:\n    allocation_id: " + allocB + "\n",
			[]string{"roles.1 (line 2): all digits"},
		},
		{
			"underscore in a DNS name",
			"roles:\n  db:\n    allocation_id: " + allocA + "\n" + route53("_db.example.internal"),
			[]string{`roles.db.dns.route53.name "_db.example.internal" (line 5): contains '_'`},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, "eipclaim"+string(rune('a'+i))+".yaml")
			if err := os.WriteFile(conf, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errs, code := eipclaim(t, "hosts", "--config", conf, "--out", hostsPath, "--timeout", "60s")
			if code != exitcode.Usage {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitcode.Usage, out, errs)
			}
			for _, want := range append(tc.want, conf) {
				if !strings.Contains(errs, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, errs)
				}
			}
			if b, _ := os.ReadFile(hostsPath); string(b) != original {
				t.Errorf("the hosts file changed:\n%s", b)
			}
		})
	}

	// Each document is valid alone; together they give one name to two
	// roles on two addresses. The merged configuration is refused (exit 2)
	// naming both roles, before anything is looked up.
	t.Run("user-data and its source", func(t *testing.T) {
		fleet := filepath.Join(dir, "fleet.yaml")
		if err := os.WriteFile(fleet, []byte("roles:\n  primary:\n    allocation_id: "+allocA+"\n"+route53("db.example.internal")), 0o600); err != nil {
			t.Fatal(err)
		}
		w.withUserData("source: " + fleet + "\nroles:\n  replica:\n    allocation_id: " + allocB + "\n" + route53("db.example.internal"))
		out, errs, code := eipclaim(t, "hosts", "--out", hostsPath, "--timeout", "60s")
		if code != exitcode.Usage {
			t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
		}
		if !strings.Contains(errs, `invalid configuration in user-data merged with `+fleet) ||
			!strings.Contains(errs, `roles.replica.dns.route53.name "db.example.internal" (line 6): role primary publishes this name too (roles.primary.dns.route53.name, line 5`) {
			t.Errorf("stderr does not name both roles:\n%s", errs)
		}
		if strings.Contains(errs, "entry ") {
			t.Errorf("stderr names an entry by index:\n%s", errs)
		}
		if b, _ := os.ReadFile(hostsPath); string(b) != original {
			t.Errorf("the hosts file changed:\n%s", b)
		}
	})
}
