package hosts

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
)

func roleEntry(role, ip string, names ...string) Entry {
	return Entry{IP: netip.MustParseAddr(ip), Names: names, Role: role}
}

// TestRenderRoleErrors checks that errors about an entry for a role name
// the role, not the entry's index.
func TestRenderRoleErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    []string
		notWant string
	}{
		{
			name:    "two roles, one DNS name",
			entries: []Entry{roleEntry("a", "10.0.1.5", "x.example"), roleEntry("b", "10.0.1.6", "X.example")},
			want:    []string{`role b (10.0.1.6): name "X.example" is also given for 10.0.1.5 (role a): one name, one address`},
		},
		{
			name:    "role names differing in case",
			entries: []Entry{roleEntry("db", "10.0.1.5"), roleEntry("DB", "10.0.1.6")},
			want:    []string{`role DB (10.0.1.6): name "DB" is also given for 10.0.1.5 (role db)`},
		},
		{
			name:    "role name that is another role's DNS name",
			entries: []Entry{roleEntry("app", "10.0.1.5", "cache"), roleEntry("cache", "10.0.1.6", "cache.example")},
			want:    []string{`role cache (10.0.1.6): name "cache" is also given for 10.0.1.5 (role app)`},
		},
		{
			name:    "all-digit role name",
			entries: []Entry{roleEntry("123", "10.0.1.5", "db.example")},
			want:    []string{`role "123" (10.0.1.5): not a valid role name: all digits`},
		},
		{
			name:    "underscore in a role name",
			entries: []Entry{roleEntry("master_db", "10.0.1.5")},
			want:    []string{`role "master_db" (10.0.1.5): not a valid role name: contains '_'`},
		},
		{
			name:    "dotted role name",
			entries: []Entry{roleEntry("db.a", "10.0.1.5")},
			want:    []string{`role "db.a" (10.0.1.5): not a valid role name`, "single label"},
		},
		{
			name:    "bad DNS name",
			entries: []Entry{roleEntry("db", "10.0.1.5", "_db.example")},
			want:    []string{`role db (10.0.1.5): name "_db.example": contains '_'`},
		},
		{
			name:    "invalid IP",
			entries: []Entry{{Role: "db"}},
			want:    []string{"role db: invalid IP address"},
		},
		{
			name:    "every role reported",
			entries: []Entry{roleEntry("a", "10.0.1.5", "a b"), roleEntry("b", "0.0.0.0"), roleEntry("c", "10.0.1.7", "ok.example")},
			want:    []string{"role a (10.0.1.5)", "white space", "role b: IP 0.0.0.0", "unspecified"},
			notWant: "role c",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(nil, tc.entries)
			if err == nil {
				t.Fatalf("Render succeeded, want an error:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "entry ") {
				t.Errorf("error names an entry's index, not its role:\n%v", err)
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("error mentions %q, which is fine:\n%v", tc.notWant, err)
			}
		})
	}
}

// TestRenderRoleAlias checks that the role is written as the last name,
// once, and that two roles held by one instance may share a name.
func TestRenderRoleAlias(t *testing.T) {
	out, err := Render(nil, []Entry{
		roleEntry("master-db", "10.0.1.5", "master-db.example.internal", "MASTER-DB"),
		roleEntry("reports", "10.0.1.5", "master-db.example.internal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"10.0.1.5  master-db.example.internal  MASTER-DB\n",
		"10.0.1.5  reports\n",
	} {
		if !strings.Contains(string(out), line) {
			t.Errorf("block lacks %q:\n%s", line, out)
		}
	}
}

// TestRoleNameRuleAgrees checks that Render accepts exactly the role names
// configuration validation accepts ("" is not among them: in an Entry it
// means no role).
func TestRoleNameRuleAgrees(t *testing.T) {
	names := []string{
		"db", "master-db", "1db", "db1", "DB", "x--y", strings.Repeat("a", 63),
		"123", "0", "master_db", "db.a", "-db", "db-", "d b", "db#", "dé", strings.Repeat("a", 64), "db.", "_db",
	}
	for _, name := range names {
		doc := "roles:\n  '" + name + "':\n    public_ip: 203.0.113.3\n"
		_, cerr := config.Parse([]byte(doc), "test")
		_, herr := Render(nil, []Entry{roleEntry(name, "10.0.1.5", "host.example")})
		if (cerr == nil) != (herr == nil) {
			t.Errorf("role name %q: configuration says %v, hosts says %v", name, cerr, herr)
		}
		if (herr == nil) != config.ValidRoleName(name) {
			t.Errorf("role name %q: hosts says %v, config.ValidRoleName says %v", name, herr, config.ValidRoleName(name))
		}
	}
}

// TestWriteRoleErrorLeavesFile checks, through the file, that a table with
// two roles claiming one name is refused naming both, and that the hosts
// file is left as it was.
func TestWriteRoleErrorLeavesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	original := "127.0.0.1 localhost\n"
	if err := os.WriteFile(path, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := Write(path, []Entry{
		roleEntry("primary", "10.0.1.5", "db.example.internal"),
		roleEntry("replica", "10.0.1.6", "DB.example.internal"),
	})
	if err == nil || changed {
		t.Fatalf("Write = %v, %v; want an error", changed, err)
	}
	want := path + `: role replica (10.0.1.6): name "DB.example.internal" is also given for 10.0.1.5 (role primary): one name, one address`
	if err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if b, _ := os.ReadFile(path); string(b) != original {
		t.Errorf("the file changed:\n%s", b)
	}
}

// TestUsable: an entry Render would refuse is left out with an error
// naming it, and so is every entry giving a name another entry gives for
// another address; the others are kept, in order, and render.
func TestUsable(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	entries := []Entry{
		{IP: a("10.0.0.1"), Names: []string{"db.example.internal"}, Role: "db"},
		{IP: a("fe80::1%eth0"), Role: "zoned"},
		{IP: a("224.0.0.1"), Role: "multi"},
		{IP: a("10.0.0.2"), Names: []string{"legacy.example.internal."}, Role: "legacy"},
		{IP: a("10.0.0.3"), Role: "web"},
		{IP: a("10.0.0.4"), Role: "WEB"},
		{IP: a("10.0.0.1"), Names: []string{"DB.example.internal"}, Role: "db-alias"},
	}
	usable, skipped := Usable(entries)
	var got []string
	for _, e := range usable {
		got = append(got, e.Role)
	}
	if want := []string{"db", "db-alias"}; !slices.Equal(got, want) {
		t.Errorf("usable %v, want %v", got, want)
	}
	msg := errors.Join(skipped...).Error()
	for _, want := range []string{"role zoned", "zone", "role multi", "multicast", "role legacy", "trailing dot", `role web (10.0.0.3): name "web" is also given for 10.0.0.4`, "role WEB"} {
		if !strings.Contains(msg, want) {
			t.Errorf("skipped:\n%s\nwant it to say %q", msg, want)
		}
	}
	if _, err := Render(nil, usable); err != nil {
		t.Errorf("Render(usable): %v", err)
	}
}
