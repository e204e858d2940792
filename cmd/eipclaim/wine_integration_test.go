//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The Windows tests run eipclaim.exe, built for windows/amd64, under wine
// (internal/testenv's Wine): the real AWS SDK and the Windows code paths
// (the hosts file under %SystemRoot%, the service handler) against moto
// behind the IAM gate and the IMDS emulator, on 127.0.0.1 like the Linux
// tests. Each wine process gets exactly the environment the test gives it.

// wineTimeout bounds one eipclaim.exe run: wine starts in about a second.
const wineTimeout = 90 * time.Second

// windowsWorld is moto, a test world, wine and eipclaim.exe.
type windowsWorld struct {
	t    *testing.T
	wine *testenv.Wine
	exe  string
	moto *testenv.Moto
	tw   *testenv.TestWorld
}

func newWindowsWorld(t *testing.T) *windowsWorld {
	t.Helper()
	wine := testenv.SharedWine(t)
	exe := testenv.EipclaimWindows(t)
	moto := testenv.SharedMoto(t)
	return &windowsWorld{t: t, wine: wine, exe: exe, moto: moto, tw: testenv.NewTestWorld(t, moto.Config())}
}

// env is the environment of an eipclaim.exe on inst (md its IMDS, nil for
// none): moto as the instance, nothing of the host's AWS settings.
func (w *windowsWorld) env(md *testenv.IMDS, extra ...string) []string {
	env := append(w.moto.Env(), "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	if md != nil {
		env = append(env, md.Env()...)
	} else {
		// A client with --config needs no instance metadata.
		env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	}
	return append(env, extra...)
}

// run runs eipclaim.exe with args under wine.
func (w *windowsWorld) run(env []string, args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	return w.wine.Run(w.t, wineTimeout, w.exe, env, args...)
}

// The Windows binary claims the role's EIP from inside wine: the user-data
// from the IMDS emulator, the instance's identity, the association in
// moto, the JSON outcome and the exit code; a rerun is a no-op.
func TestWindowsClaim(t *testing.T) {
	w := newWindowsWorld(t)
	self := w.tw.NewInstance()
	eip := w.tw.NewEIP(nil)
	md := w.tw.IMDSFor(self, "role: master-db\nroles:\n  master-db:\n    allocation_id: "+eip.AllocationID+"\n")

	out, errs, code := w.run(w.env(md), "claim", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("eipclaim.exe claim: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	a := w.tw.Address(eip.AllocationID)
	if got := aws.ToString(a.NetworkInterfaceId); got != self.ENI {
		t.Fatalf("after eipclaim.exe claim, EIP %s is on interface %q, want the instance's %q\nstderr: %s", eip.AllocationID, got, self.ENI, errs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("claim --json printed no JSON object: %v\n%s", err, out)
	}
	for k, want := range map[string]string{"role": "master-db", "allocation_id": eip.AllocationID, "public_ip": eip.PublicIP, "instance_id": self.ID} {
		if got[k] != want {
			t.Errorf("claim --json: %s = %v, want %q\n%s", k, got[k], want, out)
		}
	}
	assoc := aws.ToString(a.AssociationId)

	out, errs, code = w.run(w.env(md), "claim", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("rerun: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.tw.Address(eip.AllocationID).AssociationId); got != assoc {
		t.Errorf("the rerun moved the EIP: association %s -> %s", assoc, got)
	}
	if !strings.Contains(out, "already held") {
		t.Errorf("rerun stdout %q does not say already held", out)
	}

	// A configuration error is exit 2, through wine, and changes nothing.
	bad := w.tw.IMDSFor(self, "role: master-db\nroles:\n  master-db:\n    allocation_id: eipalloc-XYZ\n")
	_, errs, code = w.run(w.env(bad), "release", "--timeout", "30s")
	if code != 2 || !strings.Contains(errs, `allocation_id "eipalloc-XYZ"`) {
		t.Errorf("a malformed allocation_id: exit %d, want 2 naming it\n%s", code, errs)
	}
	if got := aws.ToString(w.tw.Address(eip.AllocationID).AssociationId); got != assoc {
		t.Errorf("a bad configuration changed the association: %s -> %s", assoc, got)
	}
}

// writeFile writes b to path, failing the test on error.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
