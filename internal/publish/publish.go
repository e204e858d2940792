// Package publish publishes a role's DNS name once its Elastic IP is held:
// as a Route 53 CNAME to the EIP's public DNS name ([Route53]), or by an
// RFC 2136 dynamic update signed with TSIG to a DNS server of one's own
// ([RFC2136]), as an A record with the holder's private IP or a CNAME.
//
// Both publishers read first and change nothing when the record already
// says what it should (every change is a write someone pays for, and a
// Route 53 change takes a minute to reach every server), never delete a
// record of another type at the name, and read the record back after
// changing it.
package publish

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
)

// ErrConflict marks a refusal to publish because the name holds records
// that eipclaim does not own (another type, or a record with a routing
// policy) and would have to delete. Check it with errors.Is.
var ErrConflict = errors.New("the name holds other records")

// PublicDNSName returns the public DNS name that EC2 gives the IPv4 address
// ip in region: ec2-a-b-c-d.compute-1.amazonaws.com in us-east-1,
// ec2-a-b-c-d.REGION.compute.amazonaws.com.cn in the China regions (cn-*),
// and ec2-a-b-c-d.REGION.compute.amazonaws.com elsewhere (GovCloud included).
// It returns "" when ip is not an IPv4 address or region is not a region
// name. The EC2 API's PublicDnsName, when it reports one, is the better
// source; this is the fallback.
func PublicDNSName(ip netip.Addr, region string) string {
	ip = ip.Unmap()
	region = strings.ToLower(region)
	if !ip.Is4() || strings.Contains(region, ".") || !dnsname.IsDomainName(region) {
		return ""
	}
	a := ip.As4()
	host := fmt.Sprintf("ec2-%d-%d-%d-%d", a[0], a[1], a[2], a[3])
	switch {
	case region == "us-east-1":
		return host + ".compute-1.amazonaws.com"
	case strings.HasPrefix(region, "cn-"):
		return host + "." + region + ".compute.amazonaws.com.cn"
	default:
		return host + "." + region + ".compute.amazonaws.com"
	}
}

// logger returns l, or a logger that discards everything when l is nil.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// maxTTL is the longest TTL published, as config validates it: a week.
const maxTTL = 604800

// ttlOf returns the configured TTL, config.DefaultTTL when it is 0.
func ttlOf(ttl int64) int64 {
	if ttl == 0 {
		return config.DefaultTTL
	}
	return ttl
}
