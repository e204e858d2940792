package main

import (
	"strings"
	"testing"
)

// TestTimeoutExpiredSaysSo: when the command's own --timeout expires, the
// error says so and what was being done, rather than blaming the instance
// metadata service, which answers (issue 17: `--timeout 1ns` said IMDS was
// unreachable).
func TestTimeoutExpiredSaysSo(t *testing.T) {
	newWorld(t, "role: db\nroles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n")
	for _, cmd := range []string{"claim", "status", "watch"} {
		_, stderr, code := eipclaim(t, cmd, "--timeout", "1ns")
		if code != 1 || !strings.Contains(stderr, "--timeout 1ns expired while trying to read this instance's id") || strings.Contains(stderr, "unreachable") || strings.Contains(stderr, "IMDS enabled") {
			t.Errorf("%s --timeout 1ns: exit %d, want 1 saying that --timeout 1ns expired while trying to read this instance's id:\n%s", cmd, code, stderr)
		}
	}
}
