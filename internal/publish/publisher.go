package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/table"
)

// Publisher is one place where a role's name is published: a Route 53
// record, a DNS server updated by RFC 2136. Every DNS target implements it;
// For builds a role's publishers from its dns: block.
type Publisher interface {
	// Kind names the publisher's type: "route53", "rfc2136".
	Kind() string
	// Name is the name it publishes, as configured.
	Name() string
	// Publish makes the name say what f says. It reads first and changes
	// nothing when the name already does.
	Publish(ctx context.Context, f placement.Placement) (Result, error)
	// Check is the preflight of Publish for `eipclaim check`: it proves
	// what it can without changing anything, and says what it proved.
	Check(ctx context.Context) (string, error)
	// Current says what the name holds now, for `eipclaim status`.
	Current(ctx context.Context) (string, error)
}

// Result is what one publisher did.
type Result struct {
	Publisher string `json:"publisher"` // the Kind
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"` // what the name holds now (or would hold, in a dry run)
	Changed   bool   `json:"changed"`
	Detail    string `json:"detail,omitempty"` // the Route 53 change id, the server
	Error     string `json:"error,omitempty"`
}

// String says in one line what the publisher did.
func (r Result) String() string {
	switch {
	case r.Error != "":
		return fmt.Sprintf("%s: %s FAILED: %s", r.Publisher, r.Name, r.Error)
	case r.Changed:
		s := fmt.Sprintf("%s: %s -> %s published", r.Publisher, r.Name, r.Value)
		if r.Detail != "" {
			s += " (" + r.Detail + ")"
		}
		return s
	}
	return fmt.Sprintf("%s: %s -> %s already published", r.Publisher, r.Name, r.Value)
}

// Deps are what the publishers need from the program.
type Deps struct {
	Route53 Route53API
	Log     *slog.Logger
	// Retry runs a call until it succeeds, fails for good or the deadline
	// comes (retry.Retrier.Do); nil calls it once. Route 53 retries each API
	// call; an RFC 2136 publication, idempotent (it reads first), is
	// retried whole.
	Retry func(ctx context.Context, op string, fn func(context.Context) error) error
	// WaitDNS makes Route 53 publication wait until the change is INSYNC.
	WaitDNS bool
	// Table is the role table (the repository: key), nil when there is
	// none: every claim writes the role's entry there.
	Table *table.Store
	// Zones, when set, holds Route 53 zones read whole once (see Zones).
	Zones *Zones
	// DynDNSHTTP is the dyndns2 publisher's HTTP client (nil: its own).
	DynDNSHTTP *http.Client
}

// For returns the publishers of a role's dns: block, in a fixed order.
func For(role string, r *config.Role, d Deps) []Publisher {
	if r == nil {
		return nil
	}
	log := logger(d.Log).With("role", role)
	var pubs []Publisher
	dns := r.DNS
	if dns == nil {
		dns = &config.DNS{}
	}
	if c := dns.Route53; c != nil {
		// Each Route 53 call is retried alone: a throttled change is not
		// preceded by its read again.
		pubs = append(pubs, &route53Publisher{p: &Route53{API: d.Route53, Log: log, Wait: d.WaitDNS, Retry: d.Retry, Zones: d.Zones}, c: c, a: r.Route53Record() == "A"})
	}
	if c := dns.RFC2136; c != nil {
		var p Publisher = &rfc2136Publisher{p: &RFC2136{Log: log}, c: c}
		if d.Retry != nil {
			p = &retrying{Publisher: p, retry: d.Retry}
		}
		pubs = append(pubs, p)
	}
	if c := dns.DynDNS; c != nil {
		// An update is idempotent (nochg): retried whole, on the answers
		// that say to (dnserr, 911) and on network errors.
		var p Publisher = &dyndnsPublisher{p: &DynDNS{HTTP: d.DynDNSHTTP, Log: log}, c: c}
		if d.Retry != nil {
			p = &retrying{Publisher: p, retry: d.Retry}
		}
		pubs = append(pubs, p)
	}
	if d.Table != nil {
		// The store retries each S3 call itself.
		pubs = append(pubs, &tablePublisher{store: d.Table, role: role, spec: r, now: time.Now})
	}
	return pubs
}

// All publishes f with every publisher, concurrently, and returns their
// results in the publishers' order. When any failed, the error says so with
// exit code 5 (exitcode.DNSFailed): the claim that came before stands, and a
// rerun publishes without moving the EIP again.
func All(ctx context.Context, pubs []Publisher, f placement.Placement) ([]Result, error) {
	results := make([]Result, len(pubs))
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() {
			r, err := p.Publish(ctx, f)
			r.Publisher, r.Name = p.Kind(), p.Name()
			if err != nil {
				r.Error = err.Error()
				errs[i] = fmt.Errorf("%s %s: %w", p.Kind(), p.Name(), err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// A provider's answer that says the configuration or the
		// credentials are wrong keeps its exit code (2 or 3): rerunning
		// cannot help until someone fixes them.
		for _, e := range errs {
			var dd *DynDNSError
			if errors.As(e, &dd) && dd.ExitCode() != exitcode.Failed {
				return results, exitcode.With(dd.ExitCode(), fmt.Errorf("the EIP %s is held for role %s (the claim stands), but publishing its name failed: %w", f.PublicIP, f.Role, err))
			}
		}
		return results, exitcode.With(exitcode.DNSFailed, fmt.Errorf("the EIP %s is held for role %s, but publishing its name failed (the claim stands; fix this and rerun eipclaim, which will not move the EIP again): %w", f.PublicIP, f.Role, err))
	}
	return results, nil
}

// Prefetch sends ahead, for the publishers that can, the reads of their
// next Publish that do not depend on the claim (a Route 53 record's
// current value), so that the failover step overlaps them with the claim.
func Prefetch(ctx context.Context, pubs []Publisher) {
	for _, p := range pubs {
		if r, ok := unwrap(p).(*route53Publisher); ok {
			r.p.Prefetch(ctx, r.c)
		}
	}
}

// Recorded starts reading, for the publishers that record epochs (the role
// table), what they record for the role, and returns the function that
// waits for that read (claim.Request.Recorded): the claim's epoch goes
// above it. The read is the first of the publisher's next Publish, so it
// costs no request. nil when no publisher records epochs.
func Recorded(ctx context.Context, pubs []Publisher, log *slog.Logger) func() *epoch.Recorded {
	for _, p := range pubs {
		if t, ok := unwrap(p).(*tablePublisher); ok {
			t.prefetch(ctx)
			return func() *epoch.Recorded { return t.recorded(logger(log)) }
		}
	}
	return nil
}

// Table returns the role table the publishers write (the repository:
// key's store), nil when none does: an overlay address's claim uses it as
// its compare-and-swap.
func Table(pubs []Publisher) *table.Store {
	for _, p := range pubs {
		if t, ok := unwrap(p).(*tablePublisher); ok {
			return t.store
		}
	}
	return nil
}

// localChecker is a publisher that reads local files (a secret): it can
// tell, before anything is changed anywhere, whether they are usable.
type localChecker interface {
	CheckLocal() error
}

// CheckLocal proves, without any request, what every publisher can prove
// of its local files (a dyndns password_file, a tsig_secret_file: present,
// a regular file, readable, well formed). A driver calls it before the
// claim, so that a file that is missing is an exit 2 before any EC2 change,
// not a publication retried to the deadline after a move. The errors
// carry their exit codes (2, or 3 when not readable).
func CheckLocal(pubs []Publisher) error {
	var errs []error
	for _, p := range pubs {
		if c, ok := unwrap(p).(localChecker); ok {
			if err := c.CheckLocal(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", p.Kind(), p.Name(), err))
			}
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return exitcode.With(exitcode.Of(errs[0]), errors.Join(errs...))
}

// DryRun says what every publisher would publish, without asking anyone.
func DryRun(pubs []Publisher, f placement.Placement) []Result {
	results := make([]Result, len(pubs))
	for i, p := range pubs {
		results[i] = Result{Publisher: p.Kind(), Name: p.Name(), Value: wouldPublish(p, f)}
	}
	return results
}

func wouldPublish(p Publisher, f placement.Placement) string {
	switch q := unwrap(p).(type) {
	case *tablePublisher:
		return describeEntry(q.entry(f))
	case *dyndnsPublisher:
		return "A " + q.address(f).String()
	}
	if r, ok := unwrap(p).(*rfc2136Publisher); ok && !strings.EqualFold(r.c.Record, "CNAME") {
		return "A " + f.Private().String()
	}
	if r, ok := unwrap(p).(*route53Publisher); ok && r.a {
		return "A " + placement.String(f.Private())
	}
	return "CNAME " + f.PublicDNSName
}

func unwrap(p Publisher) Publisher {
	if r, ok := p.(*retrying); ok {
		return r.Publisher
	}
	return p
}

// retrying retries a publisher's Publish, Check and Current.
type retrying struct {
	Publisher
	retry func(ctx context.Context, op string, fn func(context.Context) error) error
}

func (r *retrying) Check(ctx context.Context) (s string, err error) {
	err = r.retry(ctx, r.Kind()+":check", func(ctx context.Context) error {
		s, err = r.Publisher.Check(ctx)
		return err
	})
	return s, err
}

func (r *retrying) Current(ctx context.Context) (s string, err error) {
	err = r.retry(ctx, r.Kind()+":lookup", func(ctx context.Context) error {
		s, err = r.Publisher.Current(ctx)
		return err
	})
	return s, err
}

func (r *retrying) Publish(ctx context.Context, f placement.Placement) (res Result, err error) {
	err = r.retry(ctx, r.Kind()+":publish", func(ctx context.Context) error {
		res, err = r.Publisher.Publish(ctx, f)
		return err
	})
	return res, err
}

// route53Publisher publishes a CNAME in a Route 53 hosted zone, or an A
// record of the role's private address (config.Role.Route53Record).
type route53Publisher struct {
	p *Route53
	c *config.Route53
	a bool
}

func (r *route53Publisher) Kind() string { return "route53" }
func (r *route53Publisher) Name() string { return r.c.Name }

func (r *route53Publisher) Publish(ctx context.Context, f placement.Placement) (Result, error) {
	if r.a {
		res, err := r.p.PublishA(ctx, r.c, f.Private())
		out := Result{Value: wouldPublish(r, f), Changed: res.Changed}
		if res.ChangeID != "" {
			out.Detail = "zone " + res.ZoneID + ", change " + res.ChangeID
		}
		return out, err
	}
	res, err := r.p.PublishCNAME(ctx, r.c, f.PublicDNSName)
	out := Result{Value: "CNAME " + res.Value, Changed: res.Changed}
	if res.Value == "" {
		out.Value = "CNAME " + dnsname.Canonical(f.PublicDNSName)
	}
	if res.ChangeID != "" {
		out.Detail = "zone " + res.ZoneID + ", change " + res.ChangeID
	}
	return out, err
}

func (r *route53Publisher) Check(ctx context.Context) (string, error) {
	id, name, err := r.p.Zone(ctx, r.c)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("zone %s (%s)", name, id), nil
}

func (r *route53Publisher) Current(ctx context.Context) (string, error) {
	return r.p.Current(ctx, r.c)
}

// rfc2136Publisher publishes an A record (or a CNAME) by dynamic update.
type rfc2136Publisher struct {
	p *RFC2136
	c *config.RFC2136
}

func (r *rfc2136Publisher) Kind() string { return "rfc2136" }
func (r *rfc2136Publisher) Name() string { return r.c.Name }

func (r *rfc2136Publisher) Publish(ctx context.Context, f placement.Placement) (Result, error) {
	changed, err := r.p.Publish(ctx, r.c, f.Private(), f.PublicDNSName)
	return Result{Value: wouldPublish(r, f), Changed: changed, Detail: "server " + r.c.Server}, err
}

func (r *rfc2136Publisher) Check(ctx context.Context) (string, error) {
	if err := r.p.Check(ctx, r.c); err != nil {
		return "", err
	}
	return "server " + r.c.Server + " is primary for " + r.c.Zone + " and knows the key", nil
}

// CheckLocal reads the tsig_secret_file and matches it with tsig_name and
// tsig_algorithm (see CheckLocal); the warning about its mode is the
// publication's.
func (r *rfc2136Publisher) CheckLocal() error {
	_, err := (&RFC2136{}).newUpdater(r.c)
	return err
}

func (r *rfc2136Publisher) Current(ctx context.Context) (string, error) {
	return r.p.Current(ctx, r.c)
}
