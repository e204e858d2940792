package watch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
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
