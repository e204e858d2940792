//go:build linux

package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// windowsWatcher is one eipclaim.exe watch under wine.
type windowsWatcher struct {
	cmd    *exec.Cmd
	stderr *testenv.LockedBuffer
	done   chan struct{}
	err    error
}

// startWatch starts eipclaim.exe watch for inst with the configuration
// file conf.
func (w *windowsWorld) startWatch(inst testenv.Instance, conf string, extra ...string) *windowsWatcher {
	w.t.Helper()
	md := w.tw.IMDSFor(inst, "")
	ww := &windowsWatcher{stderr: &testenv.LockedBuffer{}, done: make(chan struct{})}
	ww.cmd = w.wine.Command(context.Background(), w.exe, w.env(md, extra...),
		"watch", "--config", testenv.WinPath(conf), "--log-format", "json", "--timeout", "60s")
	ww.cmd.Stderr = ww.stderr
	if err := ww.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { ww.err = ww.cmd.Wait(); close(ww.done) }()
	w.t.Cleanup(func() {
		ww.cmd.Process.Kill()
		<-ww.done
		if w.t.Failed() {
			w.t.Logf("eipclaim.exe watch on %s, stderr:\n%s", inst.ID, ww.stderr)
		}
	})
	return ww
}

// The Windows binary as watch, a holder and a standby on a loopback VPC
// (the standby's health check dials the holder's service for real): when
// the holder's instance and service stop, the standby takes the EIP over
// and runs its on_holder hook through cmd.exe; both watchers stop on
// Ctrl-C (wine turns SIGINT into CTRL_C_EVENT) with exit 0.
func TestWindowsWatchTakesOver(t *testing.T) {
	w := newWindowsWorld(t)
	pair, err := w.tw.NewLoopbackInstances(t.Context(), "127.0.1.40", "127.0.1.41")
	if err != nil {
		t.Fatal(err)
	}
	a, b := pair[0], pair[1]
	svc, err := net.Listen("tcp", net.JoinHostPort(a.PrivateIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(svc.Addr().String())
	eip := w.tw.NewEIP(nil)
	w.tw.Associate(eip.AllocationID, a.ID)
	t.Cleanup(func() { os.RemoveAll(w.wine.HostPath(`C:\ProgramData\eipclaim`)) }) // the watchers' locks

	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	// The hook runs cmd.exe, which writes the hook's environment to
	// %HOOK_DIR%\EVENT.txt, HOOK_DIR being the watcher's own.
	hook := `["C:\\windows\\system32\\cmd.exe", "/c", "set EIPCLAIM_> %HOOK_DIR%\\%EIPCLAIM_EVENT%.txt"]`
	writeFile(t, conf, []byte(`role: db
roles:
  db:
    allocation_id: `+eip.AllocationID+`
    health_check: tcp:`+port+`
    watch: {interval: 1s, fall: 2, hold_down: 1s}
    hooks:
      on_holder: `+hook+`
      on_standby: `+hook+`
      timeout: 20s
`))
	hookDir := func(inst testenv.Instance) string { return filepath.Join(dir, inst.ID) }
	hookEnv := func(event string, inst testenv.Instance) map[string]string {
		b, err := os.ReadFile(filepath.Join(hookDir(inst), event+".txt"))
		if err != nil {
			return nil
		}
		m := map[string]string{}
		for l := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimRight(l, "\r\n"), "=")
			m[k] = v
		}
		return m
	}
	for _, inst := range pair {
		if err := os.Mkdir(hookDir(inst), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wa := w.startWatch(a, conf, "HOOK_DIR="+testenv.WinPath(hookDir(a)))
	wb := w.startWatch(b, conf, "HOOK_DIR="+testenv.WinPath(hookDir(b)))
	waitFor(t, 60*time.Second, "A runs on_holder and B on_standby (cmd.exe hooks under wine)", func() bool {
		return hookEnv("holder", a) != nil && hookEnv("standby", b) != nil
	})
	if h := hookEnv("standby", b); h["EIPCLAIM_HOLDER"] != a.ID {
		t.Errorf("B's on_standby: EIPCLAIM_HOLDER %q, want A %s: %v", h["EIPCLAIM_HOLDER"], a.ID, h)
	}

	svc.Close()
	if _, err := w.tw.EC2.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{a.ID}}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 30*time.Second, "B holds the EIP", func() bool {
		return aws.ToString(w.tw.Address(eip.AllocationID).NetworkInterfaceId) == b.ENI
	})
	t.Logf("failover under wine: the EIP on B %s after the holder stopped (interval 1s, fall 2)", took.Round(100*time.Millisecond))
	waitFor(t, 30*time.Second, "B's on_holder ran", func() bool { return hookEnv("holder", b) != nil })
	h := hookEnv("holder", b)
	for k, want := range map[string]string{"EIPCLAIM_EVENT": "holder", "EIPCLAIM_ROLE": "db", "EIPCLAIM_PUBLIC_IP": eip.PublicIP, "EIPCLAIM_EPOCH": "2"} {
		if h[k] != want {
			t.Errorf("B's on_holder: %s=%q, want %q (%v)", k, h[k], want, h)
		}
	}

	for name, ww := range map[string]*windowsWatcher{"A": wa, "B": wb} {
		ww.cmd.Process.Signal(os.Interrupt)
		select {
		case <-ww.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("watcher %s did not exit within 30s of Ctrl-C\n%s", name, ww.stderr)
		}
		if ww.err != nil {
			t.Errorf("watcher %s: %v after Ctrl-C, want exit 0\n%s", name, ww.err, ww.stderr)
		}
		if !strings.Contains(ww.stderr.String(), `"msg":"stopping`) {
			t.Errorf("watcher %s exited without saying it was stopping (not a graceful stop?):\n%s", name, ww.stderr)
		}
	}
}

// The system environment's key: wine's service manager gives a service
// these variables (and not the host's environment), read when it starts.
const systemEnvKey = `HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\Session Manager\Environment`

// setSystemEnv sets the system environment variables of the prefix (a
// variable whose value is "" is deleted) with one reg import.
func (w *windowsWorld) setSystemEnv(env map[string]string) {
	w.t.Helper()
	var b strings.Builder
	b.WriteString("REGEDIT4\r\n\r\n[" + systemEnvKey + "]\r\n")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if v == "" {
			fmt.Fprintf(&b, "%q=-\r\n", k)
			continue
		}
		fmt.Fprintf(&b, "%q=\"%s\"\r\n", k, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v))
	}
	f := filepath.Join(w.t.TempDir(), "env.reg")
	writeFile(w.t, f, []byte(b.String()))
	if out, errs, code := w.wine.Run(w.t, wineTimeout, "reg", nil, "import", testenv.WinPath(f)); code != 0 {
		w.t.Fatalf("reg import %s: exit %d\n%s%s", b.String(), code, out, errs)
	}
}

// sc runs wine's sc.exe.
func (w *windowsWorld) sc(args ...string) (string, int) {
	w.t.Helper()
	out, errs, code := w.wine.Run(w.t, wineTimeout, "sc", nil, args...)
	return out + errs, code
}

// installPS1Service is what TestWindowsService takes from
// windows/install.ps1.
type installPS1Service struct {
	failure []string // the arguments of sc.exe failure after the name
}

// installPS1 reads the service's part of windows/install.ps1 and fails the
// test when it no longer makes the service TestWindowsService makes.
func installPS1(t *testing.T) installPS1Service {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "windows", "install.ps1"))
	if err != nil {
		t.Fatal(err)
	}
	ps1 := string(b)
	for _, want := range []string{
		`$svcName = 'eipclaim-watch'`,
		"$binPath = \"`\"$Exe`\" watch$claimArguments --log-file `\"$DataDir\\watch.log`\"\"",
		`$common += " --config ` + "`" + `"$Config` + "`" + `""`,
		`$InstallDir = Join-Path $ProgramFiles 'eipclaim'`,
		`$DataDir = Join-Path $env:ProgramData 'eipclaim'`,
	} {
		if !strings.Contains(ps1, want) {
			t.Errorf("windows/install.ps1 no longer contains %s: make TestWindowsService install the service as it does", want)
		}
	}
	m := regexp.MustCompile(`& sc\.exe failure \$svcName (.+?) \| Out-Null`).FindStringSubmatch(ps1)
	if m == nil {
		t.Fatal("windows/install.ps1 has no `& sc.exe failure $svcName ... | Out-Null`")
	}
	return installPS1Service{failure: strings.Fields(m[1])}
}

// The Windows binary as the service eipclaim-watch, as install.ps1 -Watch
// installs it (the executable under Program Files, watch --log-file under
// ProgramData), through wine's service manager: sc create, sc start (the
// service runs, claims the EIP, logs), sc stop (it stops cleanly: the
// service manager says STOPPED with exit code 0, the log says so).
// The service's environment is the system environment (the registry):
// wine's service manager, like Windows', does not pass its own.
func TestWindowsService(t *testing.T) {
	w := newWindowsWorld(t)
	// The test build: see service_wine_testhooks_windows.go for why.
	w.exe = testenv.EipclaimWindows(t, testenv.TestHooksTag)
	self := w.tw.NewInstance()
	eip := w.tw.NewEIP(nil)
	md := w.tw.IMDSFor(self, "")
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	writeFile(t, conf, []byte("role: db\nroles:\n  db:\n    allocation_id: "+eip.AllocationID+"\n    watch: {interval: 1s}\n"))

	env := map[string]string{}
	var names []string
	for _, kv := range testenv.WindowsEnv(w.env(md)) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
		names = append(names, k)
	}
	w.setSystemEnv(env)
	const name = "eipclaim-watch"
	exe := w.wine.HostPath(`C:\Program Files\eipclaim\eipclaim.exe`)
	b, err := os.ReadFile(w.exe)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, exe, b)
	// install.ps1 makes the log folder (Install-DataDir); --log-file
	// does not.
	logPath := w.wine.HostPath(`C:\ProgramData\eipclaim\watch.log`)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.sc("stop", name)
		w.sc("delete", name)
		clear := map[string]string{}
		for _, k := range names {
			clear[k] = ""
		}
		w.setSystemEnv(clear)
		w.wine.Restart(t) // no service manager with the test's environment
		os.RemoveAll(filepath.Dir(exe))
		os.RemoveAll(filepath.Dir(logPath))
	})
	// The service manager reads the system environment when it starts.
	w.wine.Restart(t)

	// The service as install.ps1 -Watch makes it (its $binPath with
	// -Config, and its sc.exe failure), which PowerShell cannot run here.
	ps1 := installPS1(t)
	binPath := `"C:\Program Files\eipclaim\eipclaim.exe" watch --config "` + testenv.WinPath(conf) + `" --log-file "C:\ProgramData\eipclaim\watch.log"`
	w.sc("delete", name) // left by a test process that was killed
	if out, code := w.sc("create", name, "binPath=", binPath, "DisplayName=", "eipclaim watch"); code != 0 {
		t.Fatalf("sc create: exit %d\n%s", code, out)
	}
	// Restart on failure; wine's sc takes it (whether wine's service
	// manager acts on it is not tested).
	if out, code := w.sc(append([]string{"failure", name}, ps1.failure...)...); code != 0 {
		t.Errorf("sc failure: exit %d\n%s", code, out)
	}
	began := time.Now()
	if out, code := w.sc("start", name); code != 0 {
		logb, _ := os.ReadFile(logPath)
		t.Fatalf("sc start: exit %d\n%s\nthe service's log:\n%s", code, out, logb)
	}
	state := func() string {
		out, _ := w.sc("query", name)
		return out
	}
	if out := state(); !strings.Contains(out, "RUNNING") {
		logb, _ := os.ReadFile(logPath)
		t.Fatalf("sc query after sc start:\n%s\nthe service's log:\n%s", out, logb)
	}
	logged := func(s string) bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), s)
	}
	waitFor(t, 60*time.Second, "the service holds the EIP", func() bool {
		return aws.ToString(w.tw.Address(eip.AllocationID).NetworkInterfaceId) == self.ENI
	})
	t.Logf("the service held the EIP %s after sc start", time.Since(began).Round(100*time.Millisecond))
	waitFor(t, 10*time.Second, "the service's log says it holds the EIP", func() bool { return logged("msg=holder") })

	if out, code := w.sc("stop", name); code != 0 {
		t.Fatalf("sc stop: exit %d\n%s", code, out)
	}
	waitFor(t, 30*time.Second, "sc query says STOPPED", func() bool { return strings.Contains(state(), "STOPPED") })
	out := state()
	if !regexp.MustCompile(`WIN32_EXIT_CODE\s*:\s*0\b`).MatchString(out) || !regexp.MustCompile(`SERVICE_EXIT_CODE\s*:\s*0\b`).MatchString(out) {
		t.Errorf("the stopped service's exit codes are not 0:\n%s", out)
	}
	if !logged("msg=stopping") {
		b, _ := os.ReadFile(logPath)
		t.Errorf("the service's log does not say it was stopping:\n%s", b)
	}
}

// taskAction is a scheduled task's Exec action.
type taskAction struct {
	Command          string
	Arguments        string
	WorkingDirectory string
}

// readTaskAction reads the Exec action of the task XML file (windows/NAME).
func readTaskAction(t *testing.T, name string) taskAction {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "windows", name))
	if err != nil {
		t.Fatal(err)
	}
	var task struct {
		Exec []taskAction `xml:"Actions>Exec"`
	}
	if err := xml.Unmarshal(b, &task); err != nil {
		t.Fatalf("windows/%s: %v", name, err)
	}
	if len(task.Exec) != 1 {
		t.Fatalf("windows/%s: %d Exec actions, want 1", name, len(task.Exec))
	}
	return task.Exec[0]
}

// splitCommandLine is testenv.WindowsArgs, failing the test on a line it
// cannot split.
func splitCommandLine(t *testing.T, line string) []string {
	t.Helper()
	args, err := testenv.WindowsArgs(line)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// The scheduled tasks cannot run under wine (no Task Scheduler runs their
// triggers), but their actions can: the Exec command lines of
// windows/eipclaim-task.xml and eipclaim-hosts-task.xml, run as the task
// would run them once install.ps1 has put the executable and the log folder
// in place, claim the EIP (the log in the task's --log-file) and write the
// hosts file, from the user-data.
func TestWindowsTaskActions(t *testing.T) {
	w := newWindowsWorld(t)
	self := w.tw.NewInstance()
	eip := w.tw.NewEIP(nil)
	zone := w.tw.NewZone("example.internal", false)
	md := w.tw.IMDSFor(self, "role: master-db\nroles:\n  master-db:\n    allocation_id: "+eip.AllocationID+
		"\n    dns:\n      route53: {zone_id: "+zone+", name: master-db.example.internal}\n")

	hostsPath := w.wine.HostPath(windowsHosts)
	saved, err := os.ReadFile(hostsPath)
	if err != nil {
		t.Fatal(err)
	}
	exe := w.wine.HostPath(`C:\Program Files\eipclaim\eipclaim.exe`)
	data := w.wine.HostPath(`C:\ProgramData\eipclaim`)
	t.Cleanup(func() {
		os.WriteFile(hostsPath, saved, 0o644)
		os.RemoveAll(filepath.Dir(exe))
		os.RemoveAll(data)
	})
	b, err := os.ReadFile(w.exe)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, exe, b)
	if err := os.MkdirAll(data, 0o755); err != nil { // install.ps1's Install-DataDir
		t.Fatal(err)
	}

	run := func(name string) {
		t.Helper()
		a := readTaskAction(t, name)
		argv := splitCommandLine(t, a.Command)
		if len(argv) != 1 {
			t.Fatalf("windows/%s: Command %s is not one program", name, a.Command)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wineTimeout)
		defer cancel()
		cmd := w.wine.Command(ctx, argv[0], w.env(md), splitCommandLine(t, a.Arguments)...)
		cmd.Dir = w.wine.HostPath(a.WorkingDirectory)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("windows/%s's action %s %s: %v\n%s", name, a.Command, a.Arguments, err, out)
		}
	}

	run("eipclaim-task.xml")
	if got := aws.ToString(w.tw.Address(eip.AllocationID).NetworkInterfaceId); got != self.ENI {
		t.Errorf("after the claim task's action, EIP %s is on %q, want %q", eip.AllocationID, got, self.ENI)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "eipclaim.log")); !strings.Contains(string(b), "msg=associated") || !strings.Contains(string(b), "action=claimed") {
		t.Errorf("C:\\ProgramData\\eipclaim\\eipclaim.log does not say associated, action=claimed:\n%s", b)
	}

	run("eipclaim-hosts-task.xml")
	b, _ = os.ReadFile(hostsPath)
	if !regexp.MustCompile(`\n` + regexp.QuoteMeta(self.PrivateIP) + ` +master-db\.example\.internal +master-db\r\n`).Match(b) {
		t.Errorf("after the hosts task's action, %s lacks %s master-db.example.internal master-db:\n%s", windowsHosts, self.PrivateIP, b)
	}
}
