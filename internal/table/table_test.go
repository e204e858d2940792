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
		{"name mismatch", `{"version": 1, "roles": {"db": {"name": "web", "private_ip": "10.0.0.1", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`, `the entry names "web"`},
		{"bad address", `{"version": 1, "roles": {"db": {"name": "db", "private_ip": "10.0.0.300", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`, "is not an IP address"},
		{"no address", `{"version": 1, "roles": {"db": {"name": "db", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`, "no private_ip nor public_ip"},
		{"bad role name", `{"version": 1, "roles": {"a b": {"name": "a b", "private_ip": "10.0.0.1", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"}}}`, `role "a b"`},
		{"negative epoch", `{"version": 1, "roles": {"db": {"name": "db", "private_ip": "10.0.0.1", "epoch": -1, "updated_at": "2025-01-02T03:04:05Z"}}}`, "negative"},
		{"trailing data", validDoc + `{}`, "not JSON"},
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
// refuses both.
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
		if _, err := Parse([]byte(doc), "t"); err == nil || !strings.Contains(err.Error(), "role db: epoch") {
			t.Errorf("Parse epoch %d: %v, want refused naming role db", n, err)
		}
	}
}
