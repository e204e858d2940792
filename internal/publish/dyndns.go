package publish

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/localfile"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// DynDNS publishes a name through a provider's HTTP API that speaks the
// dyndns2 protocol: GET URL?hostname=NAME&myip=IP with basic auth, and an
// answer of one word (and the address): good, nochg, badauth, notfqdn,
// nohost, numhost, abuse, badagent, dnserr, 911.
//
// The password is read from its file for each request and never logged
// nor put in an error.
type DynDNS struct {
	HTTP      *http.Client // nil: a client with a 30 s timeout that follows no redirect
	Log       *slog.Logger
	UserAgent string
}

// DynDNSError is a provider's answer that is not a success. Its class says
// what to do (retry.Classed): dnserr and 911 are retried, badauth is not
// permitted (exit 3), nohost, notfqdn and numhost are configuration errors
// (exit 2), abuse and badagent stop at once.
type DynDNSError struct {
	Answer   string // the protocol's code, or "http NNN"
	Hostname string
	class    retry.Class
	advice   string
}

func (e *DynDNSError) Error() string {
	return fmt.Sprintf("dyndns2 update of %s: the provider answered %q: %s", e.Hostname, e.Answer, e.advice)
}

// RetryClass implements retry.Classed.
func (e *DynDNSError) RetryClass() (retry.Class, string) { return e.class, e.Answer }

// ExitCode is the answer's exit code: 3 for badauth, 2 for nohost, notfqdn
// and numhost, 1 otherwise.
func (e *DynDNSError) ExitCode() int {
	switch e.class {
	case retry.Denied:
		return exitcode.Denied
	case retry.Invalid:
		return exitcode.Usage
	}
	return exitcode.Failed
}

// dyndnsAnswers classify every answer of the protocol but good and nochg.
var dyndnsAnswers = map[string]struct {
	class  retry.Class
	advice string
}{
	"badauth":  {retry.Denied, "the provider refused the username and password: check username and the password_file"},
	"notfqdn":  {retry.Invalid, "the hostname is not a fully qualified name: fix hostname"},
	"nohost":   {retry.Invalid, "the account has no such hostname: fix hostname, or create it at the provider"},
	"numhost":  {retry.Invalid, "too many hostnames in one request: give one hostname"},
	"abuse":    {retry.Fatal, "the provider blocked the hostname for abuse: not retried; unblock it at the provider"},
	"badagent": {retry.Fatal, "the provider refused this client (user agent or method): report it to eipclaim's maintainers"},
	"dnserr":   {retry.Retry, "a DNS error at the provider: retried"},
	"911":      {retry.Retry, "a problem or maintenance at the provider: retried"},
	"!donator": {retry.Invalid, "the account lacks a feature the request used: check the account"},
}

func (p *DynDNS) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		// A redirect could take the credentials elsewhere: none followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// password reads the password file: its first line, trimmed. A file that
// others may read is used, with a warning.
func (p *DynDNS) password(c *config.DynDNS) (string, error) {
	f, st, err := localfile.Open(c.PasswordFile)
	if err != nil {
		// Missing or not a regular file: exit 2; not readable: 3.
		return "", fmt.Errorf("%w (it holds the password alone, mode 0600)", localfile.Describe("dyndns password_file", c.PasswordFile, err))
	}
	defer f.Close()
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		logger(p.Log).Warn("the dyndns password file may be read by others: chmod 600 it", "path", c.PasswordFile, "mode", st.Mode().Perm().String())
	}
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", exitcode.With(exitcode.Failed, fmt.Errorf("dyndns password_file %s: %w", c.PasswordFile, unwrapPathError(err)))
	}
	pw := strings.TrimSpace(line)
	if pw == "" {
		return "", exitcode.With(exitcode.Usage, fmt.Errorf("dyndns password_file %s is empty: put the password in it", c.PasswordFile))
	}
	return pw, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Update sets c.Hostname to ip. It reports whether the provider changed
// the record (good) or already had it (nochg).
func (p *DynDNS) Update(ctx context.Context, c *config.DynDNS, ip netip.Addr) (changed bool, err error) {
	if !ip.IsValid() {
		return false, exitcode.With(exitcode.Failed, fmt.Errorf("dyndns2 update of %s: no %s address to publish", c.Hostname, c.EffectiveAddress()))
	}
	pw, err := p.password(c)
	if err != nil {
		return false, err
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return false, exitcode.With(exitcode.Usage, errors.New("dyndns url: not a URL"))
	}
	q := u.Query()
	q.Set("hostname", dnsname.HostName(c.Hostname))
	q.Set("myip", ip.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, exitcode.With(exitcode.Usage, errors.New("dyndns url: not a URL"))
	}
	req.SetBasicAuth(c.Username, pw)
	ua := p.UserAgent
	if ua == "" {
		ua = "eipclaim"
	}
	req.Header.Set("User-Agent", ua)
	log := logger(p.Log).With("hostname", c.Hostname)
	log.Debug("dyndns2 update", "url", redactQuery(c.URL), "myip", ip.String())
	resp, err := p.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL would repeat what the log says
		}
		return false, fmt.Errorf("dyndns2 update of %s at %s: %w", c.Hostname, redactQuery(c.URL), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	answer := firstWord(string(body))
	log.Debug("dyndns2 answer", "status", resp.StatusCode, "answer", answer)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Refused whatever the body says (often an HTML page), unless it
		// is one of the protocol's own refusals, which says more.
		if _, known := dyndnsAnswers[answer]; !known {
			answer = "badauth"
		}
	case resp.StatusCode == http.StatusTooManyRequests:
		return false, &DynDNSError{Answer: "http 429", Hostname: c.Hostname, class: retry.Retry, advice: "too many requests: retried"}
	case resp.StatusCode >= 500 && answer != "911" && answer != "dnserr":
		return false, &DynDNSError{Answer: fmt.Sprintf("http %d", resp.StatusCode), Hostname: c.Hostname, class: retry.Retry, advice: "the provider failed: retried"}
	case resp.StatusCode != http.StatusOK && answer == "":
		return false, &DynDNSError{Answer: fmt.Sprintf("http %d", resp.StatusCode), Hostname: c.Hostname, class: retry.Fatal, advice: "not a dyndns2 answer: check url"}
	}
	switch answer {
	case "good", "nochg":
		// The answer's address, when it gives one, is what the name now
		// points at: another than the one sent means the provider ignored
		// myip (it took the address the request came from, say).
		if got, ok := answerAddress(string(body)); ok && got != ip.Unmap() {
			return false, &DynDNSError{Answer: answer + " " + got.String(), Hostname: c.Hostname, class: retry.Fatal,
				advice: fmt.Sprintf("the name points at %s, not at %s, the address sent: check that the provider honours myip (some take the address the request comes from)", got, ip)}
		}
		if answer == "nochg" {
			return false, nil
		}
		log.Info("dyndns2 record updated", "address", ip.String())
		return true, nil
	}
	if a, ok := dyndnsAnswers[answer]; ok {
		return false, &DynDNSError{Answer: answer, Hostname: c.Hostname, class: a.class, advice: a.advice}
	}
	return false, &DynDNSError{Answer: answer, Hostname: c.Hostname, class: retry.Fatal, advice: "not a dyndns2 answer: check url"}
}

// answerAddress returns the address a good or nochg answer gives after
// its first word, if it gives one.
func answerAddress(body string) (netip.Addr, bool) {
	f := strings.Fields(body)
	if len(f) < 2 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(f[1])
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// firstWord returns the answer's first word, at most 32 printable
// characters (the answer is shown in errors and logs).
func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	w := f[0]
	if len(w) > 32 {
		w = w[:32]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '?'
		}
		return r
	}, w)
}

// redactQuery returns u without user info and query.
func redactQuery(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		s, _, _ := strings.Cut(u, "?")
		return s
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// dyndnsPublisher publishes the holder's private IP (or the EIP) at a
// dyndns2 provider.
type dyndnsPublisher struct {
	p *DynDNS
	c *config.DynDNS
}

func (d *dyndnsPublisher) Kind() string { return "dyndns" }
func (d *dyndnsPublisher) Name() string { return d.c.Hostname }

func (d *dyndnsPublisher) address(f placement.Placement) netip.Addr {
	if d.c.EffectiveAddress() == config.DynDNSPublic {
		return f.PublicIP
	}
	return f.Private() // the role's private-kind address (secondary or overlay) when it has one
}

func (d *dyndnsPublisher) Publish(ctx context.Context, f placement.Placement) (Result, error) {
	ip := d.address(f)
	changed, err := d.p.Update(ctx, d.c, ip)
	return Result{Value: "A " + ip.String(), Changed: changed, Detail: "provider " + redactQuery(d.c.URL)}, err
}

// Check proves what it can without changing the record: the password file
// reads. The dyndns2 protocol has no request that checks the credentials
// without updating the name, so Check says it cannot.
func (d *dyndnsPublisher) Check(ctx context.Context) (string, error) {
	if _, err := d.p.password(d.c); err != nil {
		return "", err
	}
	return "password file readable; the credentials cannot be verified without changing the record (the dyndns2 protocol has no read-only request): the first claim proves them", nil
}

// CheckLocal reads the password file (see CheckLocal).
func (d *dyndnsPublisher) CheckLocal() error {
	_, err := d.p.password(d.c)
	return err
}

// Current cannot read the record through dyndns2: it says so.
func (d *dyndnsPublisher) Current(ctx context.Context) (string, error) {
	return "publishes the " + d.c.EffectiveAddress() + " address at " + redactQuery(d.c.URL) + " (dyndns2 cannot read the record back)", nil
}
