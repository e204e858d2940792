package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
)

// Current says what Route 53 holds at c.Name now, for `eipclaim status`:
// "CNAME value TTL n" per record set, or "no record". It changes nothing.
func (p *Route53) Current(ctx context.Context, c *config.Route53) (string, error) {
	zoneID, err := p.publishZone(ctx, c)
	if err != nil {
		return "", err
	}
	sets, err := p.recordSets(ctx, zoneID, dnsname.Canonical(c.Name))
	if err != nil {
		return "", err
	}
	if len(sets) == 0 {
		return "no record", nil
	}
	var parts []string
	for _, s := range sets {
		var values []string
		for _, r := range s.ResourceRecords {
			values = append(values, aws.ToString(r.Value))
		}
		parts = append(parts, fmt.Sprintf("%s %s TTL %d", s.Type, strings.Join(values, ","), aws.ToInt64(s.TTL)))
	}
	return strings.Join(parts, "; "), nil
}

// Current says what the server answers for c.Name's record type now, for
// `eipclaim status`: "A 10.0.1.5 TTL 60", or "no record". The query is
// signed with the TSIG key. It changes nothing.
func (p *RFC2136) Current(ctx context.Context, c *config.RFC2136) (string, error) {
	u, err := p.newUpdater(c)
	if err != nil {
		return "", err
	}
	u.rrtype = dns.TypeA
	if strings.EqualFold(c.Record, "CNAME") {
		u.rrtype = dns.TypeCNAME
	}
	answer, err := u.lookup(ctx, u.rrtype)
	if err != nil {
		return "", err
	}
	return describeRRs(u.owned(answer, u.rrtype)), nil
}
