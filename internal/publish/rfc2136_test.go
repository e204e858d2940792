package publish

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

func TestRFC2136Prepare(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.key")
	stmt := filepath.Join(dir, "stmt.key")
	if err := os.WriteFile(bare, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stmt, []byte(`key "eipclaim." { algorithm hmac-sha512; secret "`+secret+`"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	// base is valid configuration, as config's validation leaves it: the
	// server, zone, name and key name are checked there
	// (config.TestParseRejectsWhatPublishersTrust), not again here.
	base := config.RFC2136{Server: "10.0.0.2", Zone: "example.internal.", Name: "DB.example.internal", TSIGName: "eipclaim", TSIGSecretFile: bare}
	ip := netip.MustParseAddr("10.0.1.5")
	pub := "ec2-203-0-113-10.compute-1.amazonaws.com"

	tests := []struct {
		name     string
		edit     func(c *config.RFC2136)
		ip       netip.Addr
		pub      string
		want     string // the wanted record, or
		wantAlg  string
		wantErr  string // an error containing this
		wantCode int
	}{
		{name: "A by default", want: "db.example.internal.\t60\tIN\tA\t10.0.1.5", wantAlg: dns.HmacSHA256},
		{name: "A with TTL", edit: func(c *config.RFC2136) { c.TTL = 30; c.Record = "A" }, want: "db.example.internal.\t30\tIN\tA\t10.0.1.5", wantAlg: dns.HmacSHA256},
		{name: "CNAME", edit: func(c *config.RFC2136) { c.Record = "CNAME" }, want: "db.example.internal.\t60\tIN\tCNAME\t" + pub + ".", wantAlg: dns.HmacSHA256},
		{name: "algorithm from the key statement", edit: func(c *config.RFC2136) { c.TSIGSecretFile = stmt }, want: "db.example.internal.\t60\tIN\tA\t10.0.1.5", wantAlg: dns.HmacSHA512},
		{name: "algorithm agrees with the key statement", edit: func(c *config.RFC2136) { c.TSIGSecretFile = stmt; c.TSIGAlgorithm = "HMAC-SHA512" }, want: "db.example.internal.\t60\tIN\tA\t10.0.1.5", wantAlg: dns.HmacSHA512},
		{name: "algorithm disagrees with the key statement", edit: func(c *config.RFC2136) { c.TSIGSecretFile = stmt; c.TSIGAlgorithm = "hmac-sha256" },
			wantErr: "tsig_secret_file " + stmt + " holds a key for hmac-sha512, but tsig_algorithm is hmac-sha256", wantCode: exitcode.Usage},
		{name: "key name disagrees", edit: func(c *config.RFC2136) { c.TSIGSecretFile = stmt; c.TSIGName = "other" },
			wantErr: "holds key eipclaim., but tsig_name is other.", wantCode: exitcode.Usage},
		{name: "unknown algorithm", edit: func(c *config.RFC2136) { c.TSIGAlgorithm = "hmac-md5" }, wantErr: `tsig_algorithm "hmac-md5": want one of`, wantCode: exitcode.Usage},
		{name: "no private IP", ip: netip.Addr{}, wantErr: "no private IPv4 address to publish", wantCode: exitcode.Failed},
		{name: "IPv6 private IP", ip: netip.MustParseAddr("fd00::5"), wantErr: "no private IPv4 address to publish", wantCode: exitcode.Failed},
		{name: "CNAME without a public name", edit: func(c *config.RFC2136) { c.Record = "CNAME" }, pub: "-", wantErr: "no public DNS name to publish as CNAME", wantCode: exitcode.Failed},
		{name: "CNAME at the apex", edit: func(c *config.RFC2136) { c.Record = "CNAME"; c.Name = "example.internal" }, wantErr: "a CNAME cannot be at the apex", wantCode: exitcode.Usage},
		{name: "bad record type", edit: func(c *config.RFC2136) { c.Record = "TXT" }, wantErr: `record "TXT": want A or CNAME`, wantCode: exitcode.Usage},
		{name: "missing secret file", edit: func(c *config.RFC2136) { c.TSIGSecretFile = filepath.Join(dir, "nope") }, wantErr: "no such file", wantCode: exitcode.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.edit != nil {
				tc.edit(&c)
			}
			if !tc.ip.IsValid() && !strings.Contains(tc.name, "private IP") {
				tc.ip = ip
			}
			switch tc.pub {
			case "":
				tc.pub = pub
			case "-":
				tc.pub = ""
			}
			u, err := (&RFC2136{}).prepare(&c, tc.ip, tc.pub)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				if got := exitcode.Of(err); got != tc.wantCode {
					t.Errorf("exit code: got %d, want %d", got, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.want.String() != tc.want || u.algorithm != tc.wantAlg || u.server != "10.0.0.2:53" || u.keyName != "eipclaim." || u.secret != secret {
				t.Errorf("got record %q, algorithm %q, server %q, key %q; want %q, %q, 10.0.0.2:53, eipclaim.", u.want, u.algorithm, u.server, u.keyName, tc.want, tc.wantAlg)
			}
		})
	}
}

// answer builds a server's answer to a signed message with rcode, and a
// TSIG record with tsigErr when signed.
func answer(opcode, rcode int, signed bool, tsigErr uint16) *dns.Msg {
	r := new(dns.Msg)
	r.Opcode = opcode
	r.Rcode = rcode
	if signed {
		r.Extra = append(r.Extra, &dns.TSIG{Hdr: dns.RR_Header{Name: "eipclaim.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256, Error: tsigErr})
	}
	return r
}

func TestAnswerError(t *testing.T) {
	u := &updater{server: "10.0.0.2:53", zone: "example.internal.", name: "db.example.internal.", keyName: "eipclaim."}
	update, query := dns.OpcodeUpdate, dns.OpcodeQuery
	tests := []struct {
		name     string
		r        *dns.Msg
		err      error
		wantErr  string // "" for no error
		wantCode int
		wantIs   error
	}{
		{name: "success", r: answer(update, dns.RcodeSuccess, true, 0)},
		{name: "no such name", r: answer(query, dns.RcodeNameError, true, 0)},
		{name: "bad signature", r: answer(update, dns.RcodeNotAuth, true, dns.RcodeBadSig), err: dns.ErrSig,
			wantErr: "op: the server rejected the TSIG signature (NOTAUTH, tsig BADSIG): check tsig_name, tsig_algorithm and the secret", wantCode: exitcode.Denied},
		{name: "unknown key", r: answer(query, dns.RcodeNotAuth, true, dns.RcodeBadKey), err: dns.ErrSig,
			wantErr: "(NOTAUTH, tsig BADKEY)", wantCode: exitcode.Denied},
		{name: "bad time", r: answer(update, dns.RcodeNotAuth, true, dns.RcodeBadTime),
			wantErr: "clock", wantCode: exitcode.Denied},
		{name: "update refused", r: answer(update, dns.RcodeRefused, true, 0),
			wantErr: "op: the server refused the update (REFUSED): check tsig_name/secret and allow-update/update-policy for the zone", wantCode: exitcode.Denied},
		{name: "update not authorized, unsigned", r: answer(update, dns.RcodeNotAuth, false, 0),
			wantErr: "the server refused the update (NOTAUTH): check tsig_name/secret and allow-update/update-policy for the zone", wantCode: exitcode.Denied},
		{name: "update to a zone the server does not serve", r: answer(update, dns.RcodeNotAuth, true, 0),
			wantErr: "the server is not authoritative for zone example.internal. (NOTAUTH)", wantCode: exitcode.Usage},
		{name: "query refused", r: answer(query, dns.RcodeRefused, true, 0),
			wantErr: "the server refused the query (REFUSED): check that it serves zone example.internal.", wantCode: exitcode.Denied},
		{name: "not zone", r: answer(update, dns.RcodeNotZone, true, 0),
			wantErr: "db.example.internal. is not in zone example.internal. on the server (NOTZONE)", wantCode: exitcode.Usage},
		{name: "CNAME prerequisite", r: answer(update, dns.RcodeYXRrset, true, 0),
			wantErr: "has a CNAME record", wantCode: exitcode.Failed, wantIs: ErrConflict},
		{name: "server failure", r: answer(update, dns.RcodeServerFailure, true, 0),
			wantErr: "op: the server answered SERVFAIL", wantCode: exitcode.Failed},
		{name: "answer fails verification", r: answer(update, dns.RcodeSuccess, true, 0), err: dns.ErrSig,
			wantErr: "the answer failed TSIG verification", wantCode: exitcode.Denied, wantIs: dns.ErrSig},
		{name: "answer out of time", r: answer(update, dns.RcodeSuccess, true, 0), err: dns.ErrTime,
			wantErr: "the answer failed TSIG verification", wantCode: exitcode.Denied, wantIs: dns.ErrTime},
		{name: "unsigned answer", r: answer(update, dns.RcodeSuccess, false, 0),
			wantErr: "the answer is not signed: check that the server knows key eipclaim.", wantCode: exitcode.Denied},
		{name: "network error", err: fmt.Errorf("dial tcp 10.0.0.2:53: %w", errors.ErrUnsupported),
			wantErr: "op: dial tcp 10.0.0.2:53", wantCode: exitcode.Failed, wantIs: errors.ErrUnsupported},
		{name: "no answer, no error", wantErr: "op: no answer", wantCode: exitcode.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := u.answerError("op", tc.r, tc.err)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code: got %d, want %d", got, tc.wantCode)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.wantIs)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := &updater{name: "db.example.internal.", rrtype: dns.TypeA, want: rr("db.example.internal. 60 IN A 10.0.1.5")}
	cname := &updater{name: "db.example.internal.", rrtype: dns.TypeCNAME, value: "ec2-1-2-3-4.compute-1.amazonaws.com.",
		want: rr("db.example.internal. 60 IN CNAME ec2-1-2-3-4.compute-1.amazonaws.com.")}
	tests := []struct {
		name   string
		u      *updater
		answer []string
		want   bool
	}{
		{"A, same", a, []string{"DB.Example.Internal. 60 IN A 10.0.1.5"}, true},
		{"A, other TTL", a, []string{"db.example.internal. 300 IN A 10.0.1.5"}, false},
		{"A, other address", a, []string{"db.example.internal. 60 IN A 10.0.1.6"}, false},
		{"A, two addresses", a, []string{"db.example.internal. 60 IN A 10.0.1.5", "db.example.internal. 60 IN A 10.0.1.6"}, false},
		{"A, none", a, nil, false},
		{"A, signed", a, []string{"db.example.internal. 60 IN A 10.0.1.5", "db.example.internal. 60 IN RRSIG A 13 3 60 20300101000000 20200101000000 1 example.internal. AAAA"}, true},
		{"A, behind a CNAME", a, []string{"db.example.internal. 60 IN CNAME x.example.internal.", "x.example.internal. 60 IN A 10.0.1.5"}, false},
		{"CNAME, same", cname, []string{"db.example.internal. 60 IN CNAME EC2-1-2-3-4.compute-1.amazonaws.com."}, true},
		{"CNAME, other", cname, []string{"db.example.internal. 60 IN CNAME ec2-1-2-3-5.compute-1.amazonaws.com."}, false},
		{"CNAME, other TTL", cname, []string{"db.example.internal. 61 IN CNAME ec2-1-2-3-4.compute-1.amazonaws.com."}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rrs []dns.RR
			for _, s := range tc.answer {
				rrs = append(rrs, rr(s))
			}
			if got := tc.u.matches(rrs); got != tc.want {
				t.Errorf("matches(%v): got %t, want %t", tc.answer, got, tc.want)
			}
		})
	}
}
