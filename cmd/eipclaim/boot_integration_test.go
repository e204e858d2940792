package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// startIMDS starts an IMDS emulator for the world's instance, without
// pointing the environment at it.
func (w *world) startIMDS(o testenv.IMDSOptions) *testenv.IMDS {
	w.t.Helper()
	o.InstanceID, o.Region, o.AvailabilityZone = w.instance, "us-east-1", "us-east-1a"
	return testenv.StartIMDS(w.t, o)
}

// TestSlowIMDSIsWaitedFor: the instance metadata service answers every
// request after 1.5 s, as a busy one does at boot. The SDK's IMDS client
// gives up on an answer after half a second by default; the claim must wait
// for it (the command's --timeout is the limit), not fail.
func TestSlowIMDSIsWaitedFor(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	md := w.startIMDS(testenv.IMDSOptions{UserData: []byte(fixedRole(alloc, ""))})
	p, err := faultproxy.New(md.Endpoint, faultproxy.Options{Rate: 1, Kinds: []faultproxy.Kind{faultproxy.Latency}, Latency: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", p.URL)

	start := time.Now()
	out, errs, code := eipclaim(t, "--timeout", "90s")
	if code != 0 {
		t.Fatalf("IMDS answering after 1.5s: exit %d after %s, want 0\nstdout: %s\nstderr: %s", code, time.Since(start).Round(time.Millisecond), out, errs)
	}
	if !strings.Contains(out, "db: claimed "+ip) {
		t.Errorf("stdout %q does not say it claimed %s", out, ip)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != w.primaryENI() {
		t.Errorf("EIP on %q, want %s", got, w.primaryENI())
	}
	c := p.Counts()
	if c.Faults[faultproxy.Latency] < 3 || c.Requests("GET /latest/meta-data/instance-id") == 0 {
		t.Errorf("the proxy delayed %d IMDS requests (%d instance-id reads), want the token, instance-id, region and user-data", c.Faults[faultproxy.Latency], c.Requests("GET /latest/meta-data/instance-id"))
	}
	if strings.Contains(errs, "will retry") {
		t.Errorf("a slow IMDS was retried, not waited for:\n%s", errs)
	}
}

// TestTimeoutMustBePositive: --timeout 0 or less is a usage error for every
// command, said as such before anything is read.
func TestTimeoutMustBePositive(t *testing.T) {
	for _, cmd := range []string{"claim", "status", "release", "check", "hosts"} {
		for _, d := range []string{"0", "0s", "-5s"} {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{cmd, "--timeout", d, "--role", "db"}, func(string) string { return "" }, &out, &errb)
			if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), "--timeout must be positive") {
				t.Errorf("%s --timeout %s: %v (exit %d), want exit 2 --timeout must be positive", cmd, d, err, exitcode.Of(err))
			}
		}
	}
}

// TestEmptyOutIsUsage: hosts --out "" is a usage error, said before
// anything is read.
func TestEmptyOutIsUsage(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"hosts", "--out", "", "--config", "/nonexistent/eipclaim.yaml"}, func(string) string { return "" }, &out, &errb)
	if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), "--out must name the hosts file") {
		t.Errorf("hosts --out '': %v (exit %d), want exit 2 --out must name the hosts file", err, exitcode.Of(err))
	}
}

// blockPUT is a proxy in front of an IMDS that answers the token request
// (PUT /latest/api/token) with status itself, as IMDS does when it is
// disabled for the instance (403), or a proxy that lets no PUT through
// (405), and passes everything else.
func blockPUT(t *testing.T, target string, status int) (string, *atomic.Int32) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var puts atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
			http.Error(w, http.StatusText(status), status)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &puts
}

// TestIMDSTokenRefused: IMDS answers the token request 403 or 405. The
// claim must not retry it as a network error until --timeout, but say at
// once what to do, exit 2, and change nothing; and --imdsv1, which it
// suggests, must then work where the instance allows IMDSv1.
func TestIMDSTokenRefused(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	md := w.startIMDS(testenv.IMDSOptions{UserData: []byte(fixedRole(alloc, "")), AllowIMDSv1: true})
	for _, status := range []int{http.StatusForbidden, http.StatusMethodNotAllowed} {
		endpoint, puts := blockPUT(t, md.Endpoint, status)
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)
		start := time.Now()
		out, errs, code := eipclaim(t, "--timeout", "60s")
		took := time.Since(start)
		if code != exitcode.Usage {
			t.Fatalf("token answered %d: exit %d after %s, want 2\nstdout: %s\nstderr: %s", status, code, took.Round(time.Millisecond), out, errs)
		}
		for _, want := range []string{"IMDS refused the token request (HTTP " + strconv.Itoa(status), "--imdsv1", "--http-endpoint enabled", "a proxy blocks PUT"} {
			if !strings.Contains(errs, want) {
				t.Errorf("token answered %d: stderr lacks %q:\n%s", status, want, errs)
			}
		}
		if strings.Contains(errs, "hop limit") {
			t.Errorf("token answered %d: stderr gives the hop-limit advice of an unreachable IMDS:\n%s", status, errs)
		}
		// The identity, the region and the user-data are read at once:
		// each may ask for a token twice (a refusal is asked once more), and none
		// is retried to the deadline.
		if n := puts.Load(); n < 1 || n > 6 || took > 15*time.Second {
			t.Errorf("token answered %d: %d token requests in %s, want 1 to 6 (at most two per concurrent read), promptly", status, n, took.Round(time.Millisecond))
		}
		if a := w.address(alloc); aws.ToString(a.AssociationId) != "" {
			t.Errorf("token answered %d: the EIP was associated: %+v", status, a)
		}
	}
	// This instance allows IMDSv1: --imdsv1 claims through the same proxy.
	out, errs, code := eipclaim(t, "--imdsv1", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "db: claimed "+ip) {
		t.Fatalf("--imdsv1 behind a proxy that blocks PUT: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

// TestIMDSDisabledByEnvironment: AWS_EC2_METADATA_DISABLED=true is said at
// once, exit 2, not retried as an unreachable IMDS.
func TestIMDSDisabledByEnvironment(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	w.withUserData(fixedRole(alloc, ""))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	start := time.Now()
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.Usage || !strings.Contains(errs, "AWS_EC2_METADATA_DISABLED=true turns the instance metadata service off") || time.Since(start) > 15*time.Second {
		t.Fatalf("exit %d after %s, want 2 at once naming AWS_EC2_METADATA_DISABLED\nstdout: %s\nstderr: %s", code, time.Since(start).Round(time.Millisecond), out, errs)
	}
}

// noCredentials empties the AWS credential chain's environment: no keys,
// no profile, no shared files.
func noCredentials(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	missing := filepath.Join(t.TempDir(), "nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	t.Setenv("AWS_CONFIG_FILE", missing)
}

// TestNoCredentials: an instance without an instance profile, and no
// credentials in the environment or files: exit 3 at once, saying what to
// set; and the same for hosts off EC2.
func TestNoCredentials(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	md := w.startIMDS(testenv.IMDSOptions{UserData: []byte(fixedRole(alloc, "")), NoInstanceProfile: true})
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md.Endpoint)
	noCredentials(t)
	want := "no AWS credentials found: run on an instance with an instance profile"

	start := time.Now()
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.Denied || !strings.Contains(errs, want) || !strings.Contains(errs, "AWS_ACCESS_KEY_ID") || time.Since(start) > 20*time.Second {
		t.Fatalf("claim without credentials: exit %d after %s, want 3 at once with %q\nstdout: %s\nstderr: %s", code, time.Since(start).Round(time.Millisecond), want, out, errs)
	}
	if a := w.address(alloc); aws.ToString(a.AssociationId) != "" {
		t.Errorf("the EIP was associated: %+v", a)
	}

	// A client off EC2 with its own --config: no IMDS answers (nothing
	// listens at its address), or IMDS is turned off.
	conf := filepath.Join(t.TempDir(), "eipclaim.yaml")
	if err := os.WriteFile(conf, []byte(fixedRole(alloc, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://"+ln.Addr().String())
	ln.Close()
	for _, disabled := range []string{"false", "true"} {
		t.Setenv("AWS_EC2_METADATA_DISABLED", disabled)
		start = time.Now()
		out, errs, code = eipclaim(t, "hosts", "--config", conf, "--dry-run", "--timeout", "60s")
		if code != exitcode.Denied || !strings.Contains(errs, want) || time.Since(start) > 20*time.Second {
			t.Fatalf("hosts off EC2 without credentials (AWS_EC2_METADATA_DISABLED=%s): exit %d after %s, want 3 at once with %q\nstdout: %s\nstderr: %s",
				disabled, code, time.Since(start).Round(time.Millisecond), want, out, errs)
		}
	}
}

// TestExplicitConfigBeatsUserData: user-data names the role and has its own
// roles: entry for it; --config (or EIPCLAIM_CONFIG) names a document with
// another EIP for the same role. The document named by flag or environment
// wins; user-data still gives the role's name.
func TestExplicitConfigBeatsUserData(t *testing.T) {
	w := newWorld(t, "")
	fromUserData, _ := w.allocate()
	fromFlag, flagIP := w.allocate()
	fromEnv, envIP := w.allocate()
	w.withUserData(fixedRole(fromUserData, ""))
	dir := t.TempDir()
	flagDoc, envDoc := filepath.Join(dir, "flag.yaml"), filepath.Join(dir, "env.yaml")
	for path, alloc := range map[string]string{flagDoc: fromFlag, envDoc: fromEnv} {
		if err := os.WriteFile(path, []byte("roles:\n  db:\n    allocation_id: "+alloc+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, errs, code := eipclaim(t, "--config", flagDoc, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "db: claimed "+flagIP) {
		t.Fatalf("--config: exit %d, want 0 claiming %s (%s)\nstdout: %s\nstderr: %s", code, flagIP, fromFlag, out, errs)
	}
	if a := w.address(fromUserData); aws.ToString(a.AssociationId) != "" {
		t.Errorf("user-data's EIP %s was claimed despite --config", fromUserData)
	}
	w.disassociate(fromFlag)

	t.Setenv("EIPCLAIM_CONFIG", envDoc)
	out, errs, code = eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "db: claimed "+envIP) {
		t.Fatalf("EIPCLAIM_CONFIG: exit %d, want 0 claiming %s (%s)\nstdout: %s\nstderr: %s", code, envIP, fromEnv, out, errs)
	}
	if a := w.address(fromUserData); aws.ToString(a.AssociationId) != "" {
		t.Errorf("user-data's EIP %s was claimed despite EIPCLAIM_CONFIG", fromUserData)
	}
}

// disassociate frees the EIP.
func (w *world) disassociate(alloc string) {
	w.t.Helper()
	a := w.address(alloc)
	if _, err := w.ec2.DisassociateAddress(context.Background(), &ec2.DisassociateAddressInput{AssociationId: a.AssociationId}); err != nil {
		w.t.Fatalf("DisassociateAddress %s: %v", alloc, err)
	}
}
