package table

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

const validDoc = `{"version": 1, "roles": {"db": {"name": "db", "private_ip": "10.0.1.5", "public_ip": "203.0.113.10", "names": ["db.example.internal"], "holder": "i-0abc", "epoch": 3, "updated_at": "2025-01-02T03:04:05Z"}}}`

func TestParse(t *testing.T) {
	d, err := Parse([]byte(validDoc), "t")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if e := d.Roles["db"]; e.PrivateIP != "10.0.1.5" || e.Epoch != 3 || e.Names[0] != "db.example.internal" {
		t.Errorf("entry = %+v", e)
	}
	cases := []struct {
		name, doc, want string
	}{
		{"empty", "  \n", "empty"},
		{"truncated", validDoc[:len(validDoc)/2], "cut short"},
		{"corrupt", `{"version": 1, "roles": {"db": [}}`, "not JSON at byte"},
		{"oversized", `{"version":1,"roles":{}}` + strings.Repeat(" ", MaxSize), "larger than"},
		{"wrong version", `{"version": 2, "roles": {}}`, "version 2: this eipclaim reads version 1"},
		{"no version", `{"roles": {}}`, "no version"},
		{"not an object", `[1,2]`, "want a JSON object"},
		{"unknown key", `{"version": 1, "roles": {}, "extra": 1}`, `unknown field "extra"`},
		{"trailing data", validDoc + `{}`, "not JSON"},
		{"version twice", `{"version": 1, "roles": {}, "version": 1}`, `key "version" given twice`},
		{"roles twice", `{"version": 1, "roles": {}, "roles": {"db": {"name": "db", "private_ip": "10.0.0.1", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`, `key "roles" given twice`},
		{"roles not an object", `{"version": 1, "roles": []}`, "roles: want an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), "s3://b/roles.json")
			if err == nil {
				t.Fatal("Parse: no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "role table s3://b/roles.json") {
				t.Errorf("error %q: want it to name the table and say %q", err, c.want)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("exit code %d, want %d", code, exitcode.Usage)
			}
		})
	}
}

func TestSetOlderEpochNeverReplacesNewer(t *testing.T) {
	d := New()
	if changed, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.1", Holder: "i-new", Epoch: 5}); !changed || err != nil {
		t.Fatalf("first Set: changed=%v err=%v", changed, err)
	}
	changed, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.2", Holder: "i-old", Epoch: 4})
	var stale *StaleError
	if changed || !errors.As(err, &stale) || stale.Newer != 5 {
		t.Fatalf("older Set: changed=%v err=%v, want a StaleError naming epoch 5", changed, err)
	}
	if d.Roles["db"].Holder != "i-new" {
		t.Errorf("the older entry replaced the newer: %+v", d.Roles["db"])
	}
	// The same entry again (a later time only) changes nothing.
	if changed, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.1", Holder: "i-new", Epoch: 5, UpdatedAt: d.Roles["db"].UpdatedAt.Add(1)}); changed || err != nil {
		t.Errorf("same Set: changed=%v err=%v, want no change", changed, err)
	}
	// The same epoch with another address (the holder moved the EIP to
	// another interface) replaces it; a newer epoch does too.
	if changed, _ := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.3", Holder: "i-new", Epoch: 5}); !changed {
		t.Error("same epoch, new address: not changed")
	}
	if changed, _ := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.4", Holder: "i-next", Epoch: 6}); !changed || d.Roles["db"].Holder != "i-next" {
		t.Error("newer epoch: not changed")
	}
}

// TestSetRefusesWhatIsNotAnEpoch: an entry whose epoch is negative or
// above epoch.Max is never written (the error names the role); a stored
// entry with such an epoch is replaced by any valid one, and the reader
// skips it, naming the role (one bad entry stops no client).
func TestSetRefusesWhatIsNotAnEpoch(t *testing.T) {
	for _, n := range []int64{-1, -9223372036854775808, 1 << 53, 9223372036854775807} {
		d := New()
		changed, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.1", Epoch: n})
		if changed || err == nil || !strings.Contains(err.Error(), "role db") || len(d.Roles) != 0 {
			t.Errorf("Set epoch %d: changed=%v err=%v, want refused naming role db", n, changed, err)
		}
		d.Roles["db"] = Entry{Name: "db", PrivateIP: "10.0.0.1", Epoch: n}
		if changed, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.2", Epoch: 1}); !changed || err != nil {
			t.Errorf("Set epoch 1 over a stored %d: changed=%v err=%v, want replaced", n, changed, err)
		}
		doc := fmt.Sprintf(`{"version": 1, "roles": {"db": {"name": "db", "private_ip": "10.0.0.1", "epoch": %d, "updated_at": "2025-01-02T03:04:05Z"}}}`, n)
		p, err := Parse([]byte(doc), "t")
		if err != nil {
			t.Fatalf("Parse epoch %d: %v, want the entry skipped, not the table refused", n, err)
		}
		if _, ok := p.Roles["db"]; ok || !strings.Contains(errors.Join(p.Skipped()...).Error(), "role db: epoch") {
			t.Errorf("Parse epoch %d: roles %v, skipped %v; want db skipped naming role db: epoch", n, p.Roles, p.Skipped())
		}
	}
}

// TestParseSkipsInvalidEntries: an entry readers cannot use is left out of
// Roles and named in Skipped; the valid entries are read all the same, and
// a write keeps the skipped entries as they were stored.
func TestParseSkipsInvalidEntries(t *testing.T) {
	const good = `"web": {"name": "web", "private_ip": "10.0.0.9", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}`
	entry := func(key, body string) string {
		return `"` + key + `": {"name": "` + key + `", ` + body + `"epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}`
	}
	cases := []struct {
		name, roles, skipped, want string
	}{
		{"name mismatch", `"db": {"name": "web2", "private_ip": "10.0.0.1", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}`, "db", `the entry names "web2"`},
		{"bad address", entry("db", `"private_ip": "10.0.0.300", `), "db", "is not an IP address"},
		{"zoned address", entry("db", `"private_ip": "fe80::1%eth0", `), "db", "zone"},
		{"zone with a newline", entry("db", `"private_ip": "fe80::1%eth0\n10.9.9.9 evil", `), "db", "zone"},
		{"unspecified address", entry("db", `"private_ip": "0.0.0.0", `), "db", "unspecified"},
		{"multicast address", entry("db", `"public_ip": "224.0.0.1", `), "db", "multicast"},
		{"broadcast address", entry("db", `"private_ip": "255.255.255.255", `), "db", "broadcast"},
		{"no address", entry("db", ``), "db", "no private_ip nor public_ip"},
		{"bad role name", entry("a b", `"private_ip": "10.0.0.1", `), "a b", `role "a b"`},
		{"negative epoch", `"db": {"name": "db", "private_ip": "10.0.0.1", "epoch": -1, "updated_at": "2025-01-02T03:04:05Z"}`, "db", "negative"},
		{"name with a final dot", entry("db", `"private_ip": "10.0.0.1", "names": ["legacy-db.example.internal."], `), "db", "trailing dot"},
		{"unknown key in an entry", entry("db", `"private_ip": "10.0.0.1", "extra": 1, `), "db", `unknown field "extra"`},
		{"key twice in an entry", entry("db", `"private_ip": "10.0.0.1", "private_ip": "10.0.0.2", `), "db", `key "private_ip" given twice`},
		{"role twice", entry("db", `"private_ip": "10.0.0.1", `) + ", " + entry("db", `"private_ip": "10.0.0.2", `), "db", "given 2 times"},
		{"role in two cases", entry("db", `"private_ip": "10.0.0.1", `) + ", " + entry("DB", `"private_ip": "10.0.0.2", `), "DB", "same role name whatever its case"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := `{"version": 1, "roles": {` + good + `, ` + c.roles + `}}`
			d, err := Parse([]byte(doc), "s3://b/roles.json")
			if err != nil {
				t.Fatalf("Parse: %v, want the table read without the bad entry", err)
			}
			if e, ok := d.Roles["web"]; !ok || e.PrivateIP != "10.0.0.9" {
				t.Errorf("the valid entry: %+v, %v", e, ok)
			}
			if _, ok := d.Roles[c.skipped]; ok {
				t.Errorf("role %q is in Roles, want it skipped", c.skipped)
			}
			sk := d.Skipped()
			if len(sk) == 0 || !strings.Contains(errors.Join(sk...).Error(), c.want) || !strings.Contains(errors.Join(sk...).Error(), c.skipped) {
				t.Fatalf("Skipped() = %v, want it to name %q and say %q", sk, c.skipped, c.want)
			}
			// A writer of another role keeps the skipped entry as stored.
			if _, err := d.Set(Entry{Name: "cache", PrivateIP: "10.0.0.7", Epoch: 1}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			b, err := d.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			again, err := Parse(b, "rewritten")
			if err != nil {
				t.Fatalf("Parse of the rewritten table: %v\n%s", err, b)
			}
			if len(again.Skipped()) != len(sk) || len(again.Roles) != len(d.Roles) {
				t.Errorf("after a write: %d roles, skipped %v; want %d roles, skipped %v\n%s", len(again.Roles), again.Skipped(), len(d.Roles), sk, b)
			}
			// Taking the role out removes the skipped entry too.
			for _, k := range []string{"db", "DB", "a b"} {
				d.Remove(k)
			}
			if len(d.Skipped()) != 0 {
				t.Errorf("after Remove: skipped %v", d.Skipped())
			}
		})
	}
}

// TestSetRefusesWhatReadersRefuse: Set holds a writer to the rule Parse
// applies (exit 2, d unchanged), and to one name per role across the table.
func TestSetRefusesWhatReadersRefuse(t *testing.T) {
	cases := []struct {
		name string
		e    Entry
		want string
	}{
		{"name with a final dot", Entry{Name: "legacy", PrivateIP: "10.0.0.5", Names: []string{"legacy-db.example.internal."}}, "trailing dot"},
		{"zoned address", Entry{Name: "legacy", PrivateIP: "fe80::1%eth0"}, "zone"},
		{"unspecified address", Entry{Name: "legacy", PrivateIP: "0.0.0.0"}, "unspecified"},
		{"multicast address", Entry{Name: "legacy", PrivateIP: "10.0.0.5", PublicIP: "ff02::1"}, "multicast"},
		{"broadcast address", Entry{Name: "legacy", PrivateIP: "255.255.255.255"}, "broadcast"},
		{"role in another case", Entry{Name: "DB", PrivateIP: "10.0.0.5"}, "the table has role db"},
		{"another role's name", Entry{Name: "legacy", PrivateIP: "10.0.0.5", Names: []string{"DB.example.internal"}}, "is role db's"},
		{"another role's role name", Entry{Name: "legacy", PrivateIP: "10.0.0.5", Names: []string{"db"}}, "is role db's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New()
			if _, err := d.Set(Entry{Name: "db", PrivateIP: "10.0.0.1", Names: []string{"db.example.internal"}, Epoch: 1}); err != nil {
				t.Fatal(err)
			}
			changed, err := d.Set(c.e)
			if changed || err == nil || !strings.Contains(err.Error(), c.want) || exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("Set(%+v): changed=%v err=%v (exit %d), want exit 2 saying %q", c.e, changed, err, exitcode.Of(err), c.want)
			}
			if len(d.Roles) != 1 {
				t.Errorf("roles %v, want db alone", d.Roles)
			}
		})
	}
}

// TestInvalidNamesTheRole: Invalid says what is wrong with a skipped
// entry, for status; nil for a valid one or none.
func TestInvalidNamesTheRole(t *testing.T) {
	d, err := Parse([]byte(`{"version": 1, "roles": {"db": {"name": "db", "private_ip": "0.0.0.0", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}, "web": {"name": "web", "private_ip": "10.0.0.2", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`), "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Invalid("db"); err == nil || !strings.Contains(err.Error(), "unspecified") {
		t.Errorf("Invalid(db) = %v", err)
	}
	if d.Invalid("web") != nil || d.Invalid("none") != nil {
		t.Errorf("Invalid of a valid entry or none: %v, %v", d.Invalid("web"), d.Invalid("none"))
	}
}
