package publish_test

// The dyndns2 publisher against a local provider that speaks the protocol
// (an HTTP server on loopback): every answer class, the address chosen, the
// exit codes, and the password never in a log line (at debug level) nor in
// an error.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/retry"
)

const ddnsPassword = "s3cr3t-Pa55word-never-logged"

// ddnsProvider is a dyndns2 server: it checks basic auth, then answers
// for each hostname from answers (a list, the last repeated), recording
// every request's myip.
type ddnsProvider struct {
	mu       sync.Mutex
	answers  map[string][]string
	requests map[string][]string // hostname -> myip of each request
	records  map[string]string
}

func (p *ddnsProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	user, pw, ok := r.BasicAuth()
	host, ip := r.URL.Query().Get("hostname"), r.URL.Query().Get("myip")
	p.requests[host] = append(p.requests[host], ip)
	if !ok || user != "fleet" || pw != ddnsPassword {
		fmt.Fprint(w, "badauth")
		return
	}
	if a := p.answers[host]; len(a) > 0 {
		ans := a[0]
		if len(a) > 1 {
			p.answers[host] = a[1:]
		}
		if ans != "good" {
			fmt.Fprint(w, ans)
			return
		}
	}
	if p.records[host] == ip {
		fmt.Fprintf(w, "nochg %s", ip)
		return
	}
	p.records[host] = ip
	fmt.Fprintf(w, "good %s", ip)
}

func (p *ddnsProvider) count(host string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests[host])
}

func TestDynDNS(t *testing.T) {
	prov := &ddnsProvider{answers: map[string][]string{
		"badauth.example-ddns.net":  {"badauth"},
		"nohost.example-ddns.net":   {"nohost"},
		"notfqdn.example-ddns.net":  {"notfqdn"},
		"numhost.example-ddns.net":  {"numhost"},
		"abuse.example-ddns.net":    {"abuse"},
		"badagent.example-ddns.net": {"badagent"},
		"dnserr.example-ddns.net":   {"dnserr", "911", "good"},
		"down.example-ddns.net":     {"911"},
	}, requests: map[string][]string{}, records: map[string]string{}}
	srv := httptest.NewServer(prov) // loopback: plain http allowed
	defer srv.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "dyndns.secret")
	if err := os.WriteFile(pwFile, []byte(ddnsPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	retrier := &retry.Retrier{Log: log, Backoff: retry.Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}}
	facts := placement.Placement{Role: "db", PublicIP: netip.MustParseAddr("203.0.113.10"), PrivateIP: netip.MustParseAddr("10.0.1.5")}

	publishTo := func(host, address string, timeout time.Duration) ([]publish.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		spec := &config.Role{DNS: &config.DNS{DynDNS: &config.DynDNS{URL: srv.URL + "/nic/update", Hostname: host, Username: "fleet", PasswordFile: pwFile, Address: address}}}
		return publish.All(ctx, publish.For("db", spec, publish.Deps{Log: log, Retry: retrier.Do}), facts)
	}

	// good, then nochg: the private address by default.
	res, err := publishTo("db.example-ddns.net", "", 10*time.Second)
	if err != nil || !res[0].Changed || res[0].Value != "A 10.0.1.5" {
		t.Fatalf("first publish: %+v %v, want changed to A 10.0.1.5", res, err)
	}
	if res, err := publishTo("db.example-ddns.net", "", 10*time.Second); err != nil || res[0].Changed {
		t.Errorf("second publish: %+v %v, want nochg (not changed)", res, err)
	}
	if res, err := publishTo("db.example-ddns.net", "public", 10*time.Second); err != nil || !res[0].Changed || prov.records["db.example-ddns.net"] != "203.0.113.10" {
		t.Errorf("address: public: %+v %v, record %s", res, err, prov.records["db.example-ddns.net"])
	}

	// dnserr and 911 are retried within the deadline.
	if res, err := publishTo("dnserr.example-ddns.net", "", 10*time.Second); err != nil || !res[0].Changed {
		t.Errorf("dnserr, 911, good: %+v %v, want published after retries", res, err)
	}
	if n := prov.count("dnserr.example-ddns.net"); n != 3 {
		t.Errorf("dnserr host: %d requests, want 3", n)
	}
	_, err = publishTo("down.example-ddns.net", "", 300*time.Millisecond)
	if code := exitcode.Of(err); err == nil || code != exitcode.DNSFailed || prov.count("down.example-ddns.net") < 2 {
		t.Errorf("911 until the deadline: %v (exit %d, %d requests), want exit 5 after several tries", err, code, prov.count("down.example-ddns.net"))
	}

	for _, c := range []struct {
		host string
		code int
		want string
	}{
		{"badauth.example-ddns.net", exitcode.Denied, "refused the username and password"},
		{"nohost.example-ddns.net", exitcode.Usage, "no such hostname"},
		{"notfqdn.example-ddns.net", exitcode.Usage, "not a fully qualified name"},
		{"numhost.example-ddns.net", exitcode.Usage, "too many hostnames"},
		{"abuse.example-ddns.net", exitcode.DNSFailed, "blocked the hostname for abuse"},
		{"badagent.example-ddns.net", exitcode.DNSFailed, "refused this client"},
	} {
		_, err := publishTo(c.host, "", 10*time.Second)
		if err == nil || exitcode.Of(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (exit %d), want exit %d and %q", c.host, err, exitcode.Of(err), c.code, c.want)
		}
		if n := prov.count(c.host); n != 1 {
			t.Errorf("%s: %d requests, want 1 (not retried)", c.host, n)
		}
		if err != nil && strings.Contains(err.Error(), ddnsPassword) {
			t.Errorf("%s: the error shows the password", c.host)
		}
	}

	// A wrong password is badauth (exit 3), and the password read is not
	// logged either.
	if err := os.WriteFile(pwFile, []byte("wrong-"+ddnsPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pwFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = publishTo("db.example-ddns.net", "", 10*time.Second)
	if exitcode.Of(err) != exitcode.Denied {
		t.Errorf("wrong password: %v (exit %d), want exit 3", err, exitcode.Of(err))
	}
	if runtime.GOOS != "windows" && !strings.Contains(logs.String(), "may be read by others") {
		t.Error("no warning for a password file readable by others")
	}
	if !strings.Contains(logs.String(), "dyndns2 answer") {
		t.Fatalf("no debug log lines at all: the secret check would prove nothing:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), ddnsPassword) {
		t.Errorf("the password is in the logs:\n%s", logs.String())
	}
}

func TestDynDNSConfig(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"http://members.example-ddns.net/nic/update", "plain http would send the password in the clear"},
		{"https://user:pw@members.example-ddns.net/nic/update", "must not carry credentials"},
		{"https://members.example-ddns.net/nic/update?hostname=x", "must not carry a query"},
		{"ftp://members.example-ddns.net/", "want an https:// URL"},
	} {
		doc := "roles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n    dns:\n      dyndns:\n        url: " + c.url +
			"\n        hostname: db.example-ddns.net\n        username: fleet\n        password_file: /etc/eipclaim/dyndns.secret\n"
		_, err := config.Parse([]byte(doc), "test")
		if err == nil || !strings.Contains(err.Error(), "roles.db.dns.dyndns.url") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: the error shows the URL's credentials: %v", c.url, err)
		}
	}
	ok := "roles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n    dns:\n      dyndns: {url: 'http://127.0.0.1:8245/nic/update', hostname: db.example-ddns.net, username: fleet, password_file: /x, address: public}\n"
	if _, err := config.Parse([]byte(ok), "test"); err != nil {
		t.Errorf("loopback http: %v", err)
	}
	bad := "roles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n    dns:\n      dyndns: {url: 'https://x.example/nic/update', hostname: db, username: fleet, password_file: /x, address: elastic}\n"
	_, err := config.Parse([]byte(bad), "test")
	if err == nil || !strings.Contains(err.Error(), "fully qualified") || !strings.Contains(err.Error(), "want private") {
		t.Errorf("bad hostname and address: %v", err)
	}
}

// TestDynDNSAnswerChecks: an answer naming another address than the one
// sent is a failure (exit 5, both addresses named); a 401 or 403 is
// badauth (exit 3) whatever its body, an HTML page included.
func TestDynDNSAnswerChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("hostname") {
		case "other.example-ddns.net":
			fmt.Fprint(w, "good 8.8.8.8")
		case "nochg-other.example-ddns.net":
			fmt.Fprint(w, "nochg 8.8.8.8\n")
		case "same.example-ddns.net":
			fmt.Fprintf(w, "good %s\n", r.URL.Query().Get("myip"))
		case "html401.example-ddns.net":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "<html><body><h1>401 Unauthorized</h1></body></html>")
		case "html403.example-ddns.net":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "<!DOCTYPE html>\n<title>Forbidden</title>")
		}
	}))
	defer srv.Close()
	pwFile := filepath.Join(t.TempDir(), "dyndns.secret")
	if err := os.WriteFile(pwFile, []byte(ddnsPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	retrier := &retry.Retrier{Log: log, Backoff: retry.Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}}
	facts := placement.Placement{Role: "db", PublicIP: netip.MustParseAddr("203.0.113.10"), PrivateIP: netip.MustParseAddr("10.0.1.5")}
	publishTo := func(host string) ([]publish.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		spec := &config.Role{DNS: &config.DNS{DynDNS: &config.DynDNS{URL: srv.URL + "/nic/update", Hostname: host, Username: "fleet", PasswordFile: pwFile}}}
		return publish.All(ctx, publish.For("db", spec, publish.Deps{Log: log, Retry: retrier.Do}), facts)
	}
	if res, err := publishTo("same.example-ddns.net"); err != nil || !res[0].Changed {
		t.Errorf("good with the address sent: %+v %v, want changed", res, err)
	}
	for _, c := range []struct {
		host string
		code int
		want []string
	}{
		{"other.example-ddns.net", exitcode.DNSFailed, []string{"8.8.8.8", "10.0.1.5"}},
		{"nochg-other.example-ddns.net", exitcode.DNSFailed, []string{"8.8.8.8", "10.0.1.5"}},
		{"html401.example-ddns.net", exitcode.Denied, []string{"refused the username and password"}},
		{"html403.example-ddns.net", exitcode.Denied, []string{"refused the username and password"}},
	} {
		_, err := publishTo(c.host)
		if err == nil || exitcode.Of(err) != c.code {
			t.Errorf("%s: %v (exit %d), want exit %d", c.host, err, exitcode.Of(err), c.code)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to say %q", c.host, err, w)
			}
		}
	}
}
