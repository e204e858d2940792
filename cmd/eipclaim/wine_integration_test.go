//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

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

// windowsHosts is the hosts file of the prefix, where eipclaim.exe's hosts
// writes by default (%SystemRoot%\System32\drivers\etc\hosts).
const windowsHosts = `C:\windows\system32\drivers\etc\hosts`

// The Windows binary writes the Windows hosts file, at its default path:
// a CRLF file stays CRLF, the operator's lines are kept, the managed block
// is replaced (never appended) when the EIP moves, and an answer that
// cannot be had leaves the file as it was with the documented exit codes.
func TestWindowsHostsFile(t *testing.T) {
	w := newWindowsWorld(t)
	a, b := w.tw.NewInstance(), w.tw.NewInstance()
	eip := w.tw.NewEIP(nil)
	w.tw.Associate(eip.AllocationID, a.ID)
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	writeFile(t, conf, []byte("roles:\n  master-db:\n    allocation_id: "+eip.AllocationID+
		"\n    dns:\n      route53: {zone_id: Z123, name: master-db.example.internal}\n"))

	path := w.wine.HostPath(windowsHosts)
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(path, saved, 0o644) })
	const original = "# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n127.0.0.1       localhost\r\n::1             localhost\r\n10.9.9.9 legacy.example.internal\r\n"
	writeFile(t, path, []byte(original))
	etc := dirNames(t, filepath.Dir(path))

	// hostsFile reads the file and checks what holds after every run: the
	// operator's lines first, CRLF throughout, one managed block.
	hostsFile := func(when string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := string(b)
		if !strings.HasPrefix(got, original) {
			t.Fatalf("%s: the operator's lines were not kept:\n%q", when, got)
		}
		if n := strings.Count(got, "\n"); n != strings.Count(got, "\r\n") {
			t.Errorf("%s: %d line feeds, %d of them CRLF: the file was CRLF\n%q", when, n, strings.Count(got, "\r\n"), got)
		}
		if n := strings.Count(got, "# BEGIN eipclaim"); n != 1 {
			t.Errorf("%s: %d managed blocks, want 1:\n%s", when, n, got)
		}
		return got
	}
	entry := func(ip string) string { return ip + " " }
	hosts := []string{"hosts", "--config", testenv.WinPath(conf), "--timeout", "60s"}

	out, errs, code := w.run(w.env(nil), hosts...)
	if code != 0 {
		t.Fatalf("eipclaim.exe hosts: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(strings.ToLower(out), strings.ToLower(windowsHosts)+" updated") {
		t.Errorf("stdout %q does not name the Windows hosts file %s", out, windowsHosts)
	}
	got := hostsFile("first run")
	block := got[strings.Index(got, "# BEGIN eipclaim"):]
	if !strings.Contains(block, entry(a.PrivateIP)) || !strings.Contains(block, "master-db.example.internal") {
		t.Errorf("the block lacks %s master-db.example.internal:\n%s", a.PrivateIP, block)
	}

	// The EIP moves to B: the block is replaced, not appended.
	if _, err := w.tw.EC2.DisassociateAddress(t.Context(), &ec2.DisassociateAddressInput{AssociationId: w.tw.Address(eip.AllocationID).AssociationId}); err != nil {
		t.Fatal(err)
	}
	w.tw.Associate(eip.AllocationID, b.ID)
	if out, errs, code := w.run(w.env(nil), hosts...); code != 0 {
		t.Fatalf("second run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	got = hostsFile("second run")
	block = got[strings.Index(got, "# BEGIN eipclaim"):]
	if !strings.Contains(block, entry(b.PrivateIP)) || strings.Contains(got, entry(a.PrivateIP)) {
		t.Errorf("after the move to B (%s), the file is not B's alone (A %s):\n%s", b.PrivateIP, a.PrivateIP, got)
	}
	before := got

	// EC2 out of reach: exit 1 after the retries, the file byte for byte.
	_, errs, code = w.run(w.env(nil, "AWS_ENDPOINT_URL=http://127.0.0.1:1"), "hosts", "--config", testenv.WinPath(conf), "--timeout", "3s")
	if code != 1 || !strings.Contains(errs, "left as it was") {
		t.Errorf("EC2 unreachable: exit %d, want 1 saying the file was left as it was\n%s", code, errs)
	}
	if got := hostsFile("EC2 unreachable"); got != before {
		t.Errorf("the file changed although EC2 was unreachable:\nbefore: %q\nafter:  %q", before, got)
	}

	// A role table that is not one: exit 2, the file byte for byte.
	bad := filepath.Join(dir, "roles.json")
	writeFile(t, bad, []byte(`{"not": "a table"}`))
	_, errs, code = w.run(w.env(nil), "hosts", "--from", testenv.WinPath(bad), "--timeout", "10s")
	if code != 2 || !strings.Contains(errs, "left as it was") {
		t.Errorf("a role table that is not one: exit %d, want 2 saying the file was left as it was\n%s", code, errs)
	}
	if got := hostsFile("bad role table"); got != before {
		t.Errorf("the file changed although the role table was bad:\nbefore: %q\nafter:  %q", before, got)
	}
	if got := dirNames(t, filepath.Dir(path)); !slices.Equal(got, etc) {
		t.Errorf("files in drivers\\etc: %v, want %v as before (no temporary file left)", got, etc)
	}
}

// dirNames lists dir's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
