package watch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
)

// TestLock: a second lock of one role on one instance is refused, naming
// the first's PID, whatever the role's case; another role or instance is
// not; after release the lock can be taken again.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	release, err := Lock(dir, "db", "i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir, "DB", "i-0123456789abcdef0")
	var le *LockError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "role DB") {
		t.Fatalf("second lock: %v, want a LockError naming PID %d", err, os.Getpid())
	}
	for _, other := range [][2]string{{"web", "i-0123456789abcdef0"}, {"db", "i-0fedcba9876543210"}} {
		r, err := Lock(dir, other[0], other[1])
		if err != nil {
			t.Errorf("lock of %v: %v", other, err)
			continue
		}
		r()
	}
	release()
	again, err := Lock(dir, "db", "i-0123456789abcdef0")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
	if _, err := Lock(dir, "../x", "i-1"); err == nil {
		t.Error("a role with a path in it was accepted")
	}
}

// TestConfigDiff: what differs for the watcher of one role, and only that.
func TestConfigDiff(t *testing.T) {
	parse := func(doc string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(doc), "t")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const base = "role: db\nroles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n"
	was := parse(base)
	for _, c := range []struct{ doc, want string }{
		{base, ""},
		{base + "  web:\n    public_ip: 203.0.113.9\n", ""},
		{base + "    takeover: never\n", "roles.db"},
		{"role: web\nroles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n", "role"},
		{base + "repository: s3://b/roles.json\n", "repository"},
		{"role: db\nroles:\n  web:\n    public_ip: 203.0.113.9\n", "roles.db"},
	} {
		if got := ConfigDiff(was, parse(c.doc), "db"); got != c.want {
			t.Errorf("%q: diff %q, want %q", c.doc, got, c.want)
		}
	}
}
