package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// DefaultDNSTimeout bounds one DNS exchange when RFC2136.Timeout is 0.
const DefaultDNSTimeout = 5 * time.Second

// tsigFudge is the clock skew, in seconds, that signed messages allow.
const tsigFudge = 300

// RFC2136 publishes names by dynamic update (RFC 2136) signed with TSIG
// (RFC 8945) to a DNS server that is primary for the zone.
type RFC2136 struct {
	// Log receives one line per update (Info) or per name found already
	// published (Debug). The caller adds the role with Log.With.
	Log *slog.Logger
	// Timeout bounds each exchange with the server; DefaultDNSTimeout
	// when 0. ctx bounds the whole.
	Timeout time.Duration
}

// Publish makes c.Name hold exactly one record of c.Record's type: an A
// record with privateIP (the default), or a CNAME to publicDNS; with TTL
// c.TTL (config.DefaultTTL when 0). It reads the name first and sends
// nothing when it already says so. Otherwise one signed UPDATE replaces the
// whole RRset (the old address goes in the same message as the new one
// comes), and a signed query reads it back.
//
// Every message, queries included, is signed with the key c names: a wrong
// key fails at once (exitcode.Denied), and the answers read back are
// authenticated. Publish refuses ([ErrConflict]) to publish an A record
// where a CNAME is, or a CNAME where other data is, since the server would
// silently ignore it.
//
// changed is true once the server has accepted an UPDATE, even when the
// read back then fails.
//
// The secret comes from c.TSIGSecretFile (see readTSIGKey) and is never
// logged nor put in an error.
func (p *RFC2136) Publish(ctx context.Context, c *config.RFC2136, privateIP netip.Addr, publicDNS string) (changed bool, err error) {
	u, err := p.prepare(c, privateIP, publicDNS)
	if err != nil {
		return false, err
	}
	log := logger(p.Log).With("record", u.name, "server", u.server, "zone", u.zone)

	have, err := u.lookup(ctx, u.rrtype)
	if err != nil {
		return false, err
	}
	if err := u.conflicts(ctx, have); err != nil {
		return false, err
	}
	if u.matches(have) {
		log.Debug("dns record already published", "type", u.typeName(), "value", u.value, "ttl", u.want.Header().Ttl)
		return false, nil
	}
	if err := u.update(ctx); err != nil {
		return false, err
	}
	log.Info("dns record published", "type", u.typeName(), "value", u.value, "ttl", u.want.Header().Ttl, "previous", describeRRs(u.owned(have, u.rrtype)))

	after, err := u.lookup(ctx, u.rrtype)
	if err != nil {
		return true, fmt.Errorf("read back: %w", err)
	}
	if !u.matches(after) {
		msg := fmt.Sprintf("read back %s %s from %s after the update: want %s, found %s",
			u.name, u.typeName(), u.server, u.want.String(), describeRRs(u.owned(after, u.rrtype)))
		if u.rrtype == dns.TypeCNAME {
			msg += " (a server ignores a CNAME where other records are)"
		}
		return true, errors.New(msg)
	}
	return true, nil
}

// Check is the preflight of Publish, for eipclaim check: it reads the
// TSIG secret and sends the server a signed query for the zone's SOA,
// which proves that the server is reachable, is authoritative for the zone,
// and knows the key (name, algorithm and secret). It changes nothing, so it
// cannot prove that allow-update or update-policy grants the name: only an
// update can.
func (p *RFC2136) Check(ctx context.Context, c *config.RFC2136) error {
	u, err := p.newUpdater(c)
	if err != nil {
		return err
	}
	r, err := u.query(ctx, u.zone, dns.TypeSOA)
	if err != nil {
		return err
	}
	if !r.Authoritative {
		return usage("query %s SOA at %s: the server is not authoritative for the zone: want its primary server", u.zone, u.server)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == u.zone {
			return nil
		}
	}
	return usage("query %s SOA at %s: %s is not a zone on the server (no SOA at that name): check zone", u.zone, u.server, u.zone)
}

// updater holds one publication's resolved settings.
type updater struct {
	server, zone, name string
	rrtype             uint16
	want               dns.RR
	value              string // want's data, for logs
	keyName, algorithm string
	secret             string
	timeout            time.Duration
	log                *slog.Logger
}

func usage(format string, args ...any) error {
	return exitcode.With(exitcode.Usage, fmt.Errorf(format, args...))
}

// prepare checks c and the values to publish, and reads the TSIG secret.
func (p *RFC2136) prepare(c *config.RFC2136, privateIP netip.Addr, publicDNS string) (*updater, error) {
	u, err := p.newUpdater(c)
	if err != nil {
		return nil, err
	}
	ttl := ttlOf(c.TTL)
	if ttl < 1 || ttl > maxTTL {
		return nil, usage("rfc2136 ttl %d: want seconds from 1 to %d", ttl, maxTTL)
	}
	hdr := dns.RR_Header{Name: u.name, Class: dns.ClassINET, Ttl: uint32(ttl)}
	switch strings.ToUpper(c.Record) {
	case "", "A":
		ip := privateIP.Unmap()
		if !ip.Is4() {
			return nil, fmt.Errorf("rfc2136 %s: no private IPv4 address to publish (got %q)", u.name, privateIP)
		}
		hdr.Rrtype = dns.TypeA
		u.rrtype, u.value = dns.TypeA, ip.String()
		u.want = &dns.A{Hdr: hdr, A: ip.AsSlice()}
	case "CNAME":
		if u.name == u.zone {
			return nil, usage("rfc2136 name %s is the apex of zone %s: a CNAME cannot be at the apex", u.name, u.zone)
		}
		if !dnsname.IsDomainName(publicDNS) {
			return nil, fmt.Errorf("rfc2136 %s: no public DNS name to publish as CNAME (got %q)", u.name, publicDNS)
		}
		hdr.Rrtype = dns.TypeCNAME
		u.rrtype, u.value = dns.TypeCNAME, dns.CanonicalName(publicDNS)
		u.want = &dns.CNAME{Hdr: hdr, Target: u.value}
	default:
		return nil, usage("rfc2136 record %q: want A or CNAME", c.Record)
	}
	return u, nil
}

// newUpdater builds the updater of c, validated configuration (its
// server, zone, name and key name were checked by config's validation),
// and reads the secret.
func (p *RFC2136) newUpdater(c *config.RFC2136) (*updater, error) {
	if c == nil {
		return nil, usage("rfc2136: no configuration")
	}
	u := &updater{
		server:  c.Addr(),
		zone:    dns.CanonicalName(c.Zone),
		name:    dns.CanonicalName(c.Name),
		keyName: dns.CanonicalName(c.TSIGName),
		timeout: p.Timeout,
		log:     logger(p.Log),
	}
	if u.timeout <= 0 {
		u.timeout = DefaultDNSTimeout
	}
	key, err := readTSIGKey(c.TSIGSecretFile)
	if err != nil {
		return nil, err
	}
	if key.name != "" && key.name != u.keyName {
		return nil, usage("tsig_secret_file %s holds key %s, but tsig_name is %s", c.TSIGSecretFile, key.name, u.keyName)
	}
	algName := c.TSIGAlgorithm
	switch {
	case algName == "" && key.algorithm != "":
		algName = key.algorithm
	case algName == "":
		algName = DefaultTSIGAlgorithm
	case key.algorithm != "" && key.algorithm != strings.TrimSuffix(strings.ToLower(algName), "."):
		return nil, usage("tsig_secret_file %s holds a key for %s, but tsig_algorithm is %s", c.TSIGSecretFile, key.algorithm, algName)
	}
	alg, ok := tsigAlgorithm(algName)
	if !ok {
		return nil, usage("rfc2136 tsig_algorithm %q: want one of %s", algName, strings.Join(config.TSIGAlgorithms, ", "))
	}
	u.algorithm, u.secret = alg, key.secret
	warnIfShared(u.log, c.TSIGSecretFile)
	return u, nil
}

// warnIfShared warns when others than the owner can read the key file.
func warnIfShared(log *slog.Logger, path string) {
	if runtime.GOOS == "windows" {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("tsig_secret_file is readable by others than its owner: chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
}

func (u *updater) typeName() string { return dns.TypeToString[u.rrtype] }

// client returns a client for net ("udp" or "tcp") that signs and verifies
// with the key.
func (u *updater) client(network string) *dns.Client {
	return &dns.Client{
		Net:        network,
		Timeout:    u.timeout,
		TsigSecret: map[string]string{u.keyName: u.secret},
	}
}

// exchange sends m, signed, over network; over UDP it retries over TCP when
// the answer is truncated. The answer's rcode and TSIG are checked by
// answerError.
func (u *updater) exchange(ctx context.Context, m *dns.Msg, network, what string) (*dns.Msg, error) {
	u.sign(m)
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	r, _, err := u.client(network).ExchangeContext(ctx, m, u.server)
	if network == "udp" && r != nil && r.Truncated {
		u.log.Debug("dns answer truncated, retrying over tcp", "server", u.server)
		u.sign(m)
		r, _, err = u.client("tcp").ExchangeContext(ctx, m, u.server)
	}
	return r, u.answerError(what, r, err)
}

// sign gives m a fresh TSIG record, the last of its additional section.
// (Sending m takes the previous one off.)
func (u *updater) sign(m *dns.Msg) {
	if m.IsTsig() != nil {
		m.Extra = m.Extra[:len(m.Extra)-1]
	}
	m.SetTsig(u.keyName, u.algorithm, tsigFudge, time.Now().Unix())
}

// deniedHint is what to check when the server refuses an update.
const deniedHint = "check tsig_name/secret and allow-update/update-policy for the zone"

// answerError classifies the outcome of an exchange: a refusal or a TSIG
// failure is exitcode.Denied, a name outside the server's zone
// exitcode.Usage, a CNAME in the way ErrConflict.
func (u *updater) answerError(what string, r *dns.Msg, err error) error {
	if r != nil && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		rcode := dns.RcodeToString[r.Rcode]
		tsig := r.IsTsig()
		if tsig != nil && tsig.Error != dns.RcodeSuccess {
			// RFC 8945: the server could not verify our signature.
			rcode += ", tsig " + dns.RcodeToString[int(tsig.Error)]
			hint := "check tsig_name, tsig_algorithm and the secret against the server's key statement"
			if tsig.Error == dns.RcodeBadTime {
				hint = "this machine's clock and the server's differ by more than 5 minutes"
			}
			return exitcode.With(exitcode.Denied, fmt.Errorf("%s: the server rejected the TSIG signature (%s): %s", what, rcode, hint))
		}
		update := r.Opcode == dns.OpcodeUpdate
		switch {
		case update && r.Rcode == dns.RcodeNotAuth && tsig != nil:
			// Signed, so the key is good: the server is not primary for
			// the zone.
			return exitcode.With(exitcode.Usage, fmt.Errorf("%s: the server is not authoritative for zone %s (%s): check server and zone", what, u.zone, rcode))
		case update && (r.Rcode == dns.RcodeRefused || r.Rcode == dns.RcodeNotAuth):
			return exitcode.With(exitcode.Denied, fmt.Errorf("%s: the server refused the update (%s): %s", what, rcode, deniedHint))
		case r.Rcode == dns.RcodeRefused || r.Rcode == dns.RcodeNotAuth:
			return exitcode.With(exitcode.Denied, fmt.Errorf("%s: the server refused the query (%s): check that it serves zone %s and that its allow-query admits this machine", what, rcode, u.zone))
		case r.Rcode == dns.RcodeNotZone:
			return exitcode.With(exitcode.Usage, fmt.Errorf("%s: %s is not in zone %s on the server (%s): check zone and name", what, u.name, u.zone, rcode))
		case r.Rcode == dns.RcodeYXRrset:
			// The prerequisite "no CNAME at the name" failed.
			return fmt.Errorf("%s: %s has a CNAME record, which an A record cannot coexist with; eipclaim does not delete it: remove it or set record: CNAME (%s): %w", what, u.name, rcode, ErrConflict)
		}
		return fmt.Errorf("%s: the server answered %s", what, rcode)
	}
	if err != nil {
		if isTSIGError(err) {
			return exitcode.With(exitcode.Denied, fmt.Errorf("%s: the answer failed TSIG verification (check tsig_name, tsig_algorithm, the secret, and this machine's clock): %w", what, err))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if r == nil {
		return fmt.Errorf("%s: no answer", what)
	}
	if r.IsTsig() == nil {
		// The client verifies a signature when there is one; an answer
		// without one is not authenticated.
		return exitcode.With(exitcode.Denied, fmt.Errorf("%s: the answer is not signed: check that the server knows key %s", what, u.keyName))
	}
	return nil
}

func isTSIGError(err error) bool {
	for _, e := range []error{dns.ErrSig, dns.ErrTime, dns.ErrKeyAlg, dns.ErrSecret, dns.ErrNoSig, dns.ErrAuth} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lookup queries the server for the name's records of type t. It returns
// the whole answer section: owned filters it.
func (u *updater) lookup(ctx context.Context, t uint16) ([]dns.RR, error) {
	r, err := u.query(ctx, u.name, t)
	if err != nil {
		return nil, err
	}
	return r.Answer, nil
}

// query sends a signed query for name and type t, over UDP (TCP for ANY,
// whose answers are large and which some servers answer in full only over
// TCP).
func (u *updater) query(ctx context.Context, name string, t uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = false
	network := "udp"
	if t == dns.TypeANY {
		network = "tcp"
	}
	return u.exchange(ctx, m, network, fmt.Sprintf("query %s %s at %s", name, dns.TypeToString[t], u.server))
}

// owned returns the records of rrs owned by the name with type t (any type
// for TypeANY), leaving out the signatures of a signed zone.
func (u *updater) owned(rrs []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if dns.CanonicalName(h.Name) != u.name || h.Rrtype == dns.TypeRRSIG {
			continue
		}
		if t == dns.TypeANY || h.Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// matches reports whether the answer to the name's query holds exactly the
// record wanted, with its TTL.
func (u *updater) matches(answer []dns.RR) bool {
	rrs := u.owned(answer, u.rrtype)
	if len(rrs) != 1 || rrs[0].Header().Ttl != u.want.Header().Ttl {
		return false
	}
	switch rr := rrs[0].(type) {
	case *dns.A:
		return rr.A.Equal(u.want.(*dns.A).A)
	case *dns.CNAME:
		return dns.CanonicalName(rr.Target) == u.value
	}
	return false
}

// conflicts refuses to publish where the server would ignore the update
// (RFC 2136 section 3.4.2.2) or it would mean deleting someone's data: an
// A record at a name that has a CNAME, a CNAME at a name that has other
// records. have is the answer to the query for the wanted type.
func (u *updater) conflicts(ctx context.Context, have []dns.RR) error {
	if u.rrtype == dns.TypeA {
		// A query for A at a CNAME answers with the CNAME.
		if c := u.owned(have, dns.TypeCNAME); len(c) > 0 {
			return fmt.Errorf("rfc2136 %s at %s: the name has a CNAME record (%s), which an A record cannot coexist with; eipclaim does not delete it: remove it or set record: CNAME: %w",
				u.name, u.server, describeRRs(c), ErrConflict)
		}
		return nil
	}
	if u.matches(have) {
		return nil
	}
	all, err := u.lookup(ctx, dns.TypeANY)
	if err != nil {
		// Servers may refuse ANY (RFC 8482); the read back after the
		// update still catches a CNAME the server ignored.
		u.log.Debug("dns ANY query failed; relying on the read back", "error", err.Error())
		return nil
	}
	var other []dns.RR
	for _, rr := range u.owned(all, dns.TypeANY) {
		switch h := rr.Header(); h.Rrtype {
		case dns.TypeCNAME, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeKEY:
		case dns.TypeHINFO:
			if hi := rr.(*dns.HINFO); hi.Cpu == "RFC8482" {
				continue // the synthesized answer of a server that does not answer ANY
			}
			other = append(other, rr)
		default:
			other = append(other, rr)
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("rfc2136 %s at %s: the name has other records (%s), which a CNAME cannot coexist with; eipclaim does not delete them: remove them or set record: A: %w",
			u.name, u.server, typesOf(other), ErrConflict)
	}
	return nil
}

// update replaces the name's RRset of the wanted type with the wanted
// record, in one signed UPDATE sent over TCP.
func (u *updater) update(ctx context.Context) error {
	m := new(dns.Msg)
	m.SetUpdate(u.zone)
	if u.rrtype == dns.TypeA {
		// Prerequisite: no CNAME at the name, else the server would ignore
		// the A record silently.
		m.RRsetNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: u.name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}}})
	}
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: u.name, Rrtype: u.rrtype, Class: dns.ClassINET}}})
	m.Insert([]dns.RR{dns.Copy(u.want)})
	_, err := u.exchange(ctx, m, "tcp", fmt.Sprintf("update %s %s in zone %s at %s", u.name, u.typeName(), u.zone, u.server))
	return err
}

// describeRRs renders records for logs and messages: "A 10.0.0.5 TTL 60".
func describeRRs(rrs []dns.RR) string {
	if len(rrs) == 0 {
		return "no record"
	}
	parts := make([]string, len(rrs))
	for i, rr := range rrs {
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		parts[i] = fmt.Sprintf("%s %s TTL %d", dns.TypeToString[h.Rrtype], data, h.Ttl)
	}
	return strings.Join(parts, "; ")
}

// typesOf lists the distinct types of rrs: "A, TXT".
func typesOf(rrs []dns.RR) string {
	var names []string
	seen := map[uint16]bool{}
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if !seen[t] {
			seen[t] = true
			names = append(names, dns.TypeToString[t])
		}
	}
	return strings.Join(names, ", ")
}
