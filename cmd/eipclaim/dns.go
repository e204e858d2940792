package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/publish"
)

// dnsNames lists the names a role publishes.
func dnsNames(r *config.Role) []string {
	var names []string
	if r.DNS != nil && r.DNS.Route53 != nil {
		names = append(names, r.DNS.Route53.Name)
	}
	if r.DNS != nil && r.DNS.RFC2136 != nil {
		names = append(names, r.DNS.RFC2136.Name)
	}
	return names
}

// publicDNSName is the name a role's CNAME points at: the one the EC2 API
// reports, else the one the partition's rules give.
func (s *session) publicDNSName(res *claim.Result) string {
	if res.PublicDNSName != "" {
		return res.PublicDNSName
	}
	ip, err := netip.ParseAddr(res.PublicIP)
	if err != nil {
		return ""
	}
	return publish.PublicDNSName(ip, s.region)
}

// publishDNS publishes the role's names after a claim. Every configured
// publisher runs; their failures come back joined, with exit code 5: the
// claim stands.
func (s *session) publishDNS(ctx context.Context, spec *config.Role, res *claim.Result, wait bool) ([]string, error) {
	if spec.DNS == nil {
		return nil, nil
	}
	log := s.log.With("role", res.Role)
	target := s.publicDNSName(res)
	var done []string
	var errs []error
	if c := spec.DNS.Route53; c != nil {
		p := &publish.Route53{API: route53.NewFromConfig(s.aws), Log: log, Wait: wait}
		var r publish.CNAMEResult
		// Publishing is idempotent (it reads first), so a throttle or a
		// network error that outlasts the SDK's attempts is retried whole.
		err := s.retrier().Do(ctx, "route53 publish", func(ctx context.Context) error {
			var err error
			r, err = p.PublishCNAME(ctx, c, target)
			return err
		})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("route53 %s CNAME %s: %w", c.Name, target, err))
		case r.Changed:
			done = append(done, fmt.Sprintf("route53: %s CNAME %s (zone %s, change %s)", r.Record, r.Value, r.ZoneID, r.ChangeID))
		default:
			done = append(done, fmt.Sprintf("route53: %s CNAME %s already published", r.Record, r.Value))
		}
	}
	if c := spec.DNS.RFC2136; c != nil {
		p := &publish.RFC2136{Log: log}
		ip, _ := netip.ParseAddr(res.PrivateIP)
		var changed bool
		err := s.retrier().Do(ctx, "rfc2136 publish", func(ctx context.Context) error {
			var err error
			changed, err = p.Publish(ctx, c, ip, target)
			return err
		})
		what := fmt.Sprintf("rfc2136: %s at %s", c.Name, c.Server)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		case changed:
			done = append(done, what+" updated")
		default:
			done = append(done, what+" already published")
		}
	}
	if len(errs) > 0 {
		return done, exitcode.With(exitcode.DNSFailed, fmt.Errorf("claimed %s for role %s, but DNS publication failed (the claim stands; fix this and rerun eipclaim, which will not move the EIP again): %w", res.PublicIP, res.Role, errors.Join(errs...)))
	}
	return done, nil
}

// checkDNS checks what the role's DNS publication needs: the Route 53 zone
// exists and holds the name, the RFC 2136 server answers for the zone with
// the TSIG key. It changes nothing.
func (s *session) checkDNS(ctx context.Context, role string, r *config.Role) []checkLine {
	if r.DNS == nil {
		return nil
	}
	var lines []checkLine
	if c := r.DNS.Route53; c != nil {
		p := &publish.Route53{API: route53.NewFromConfig(s.aws), Log: s.log}
		l := checkLine{Role: role, What: "route53 zone for " + c.Name}
		id, name, err := p.Zone(ctx, c)
		if err != nil {
			l.Detail, l.denied = err.Error(), exitcode.Of(err) == exitcode.Denied
		} else {
			l.OK, l.Detail = true, fmt.Sprintf("%s (%s)", name, id)
		}
		lines = append(lines, l)
	}
	if c := r.DNS.RFC2136; c != nil {
		p := &publish.RFC2136{Log: s.log}
		l := checkLine{Role: role, What: "rfc2136 " + c.Server + " for " + c.Zone}
		if err := p.Check(ctx, c); err != nil {
			l.Detail, l.denied = err.Error(), exitcode.Of(err) == exitcode.Denied
		} else {
			l.OK = true
		}
		lines = append(lines, l)
	}
	return lines
}

// currentDNS says, for status, what each of the role's names resolves to
// now at its publisher: "master-db.example.internal: CNAME ... TTL 60".
// A lookup that fails says so in place of the value.
func (s *session) currentDNS(ctx context.Context, r *config.Role) []string {
	if r.DNS == nil {
		return nil
	}
	var out []string
	if c := r.DNS.Route53; c != nil {
		v, err := (&publish.Route53{API: route53.NewFromConfig(s.aws), Log: s.log}).Current(ctx, c)
		out = append(out, describeCurrent("route53 "+c.Name, v, err))
	}
	if c := r.DNS.RFC2136; c != nil {
		v, err := (&publish.RFC2136{Log: s.log}).Current(ctx, c)
		out = append(out, describeCurrent("rfc2136 "+c.Name, v, err))
	}
	return out
}

func describeCurrent(what, value string, err error) string {
	if err != nil {
		return what + ": lookup failed: " + err.Error()
	}
	return what + ": " + value
}
