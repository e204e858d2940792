//go:build !linux

package localaddr

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestUnsupported: outside Linux, valid arguments get ErrUnsupported,
// which names the hooks' variable and carries exit code 2.
func TestUnsupported(t *testing.T) {
	ns := Host()
	defer ns.Close()
	addr := netip.MustParseAddr("10.0.1.50")
	if _, err := ns.Ensure(t.Context(), "eth1", addr); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Ensure = %v, want ErrUnsupported", err)
	}
	if _, err := ns.Remove(t.Context(), "eth1", addr); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Remove = %v, want ErrUnsupported", err)
	}
	if _, err := ns.ByMAC(t.Context(), "0e:1f:2a:3b:4c:5d"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ByMAC = %v, want ErrUnsupported", err)
	}
	if err := Supported(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Supported = %v, want ErrUnsupported (local_interface refused at start)", err)
	}
	if code := exitcode.Of(ErrUnsupported); code != exitcode.Usage {
		t.Errorf("ErrUnsupported: exit code %d, want %d", code, exitcode.Usage)
	}
}
