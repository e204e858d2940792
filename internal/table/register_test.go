package table

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

const registerConfig = `repository: s3://fleet-config/roles.json
roles:
  legacy:
    public_ip: 198.51.100.7
    dns:
      route53: {zone_id: Z0123456789ABC, name: legacy.example.internal, ttl: 60}
  db:
    public_ip: 198.51.100.8
`

func TestNewRegistration(t *testing.T) {
	cfg, err := config.Parse([]byte(registerConfig), "t")
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("203.0.113.20")
	tests := []struct {
		name       string
		role       string
		public     netip.Addr
		host       string
		wantPublic netip.Addr
		wantNames  []string
		wantHolder string
		wantErr    string
	}{
		{name: "configured role, its names", role: "legacy", public: pub, host: "gw1", wantPublic: pub, wantNames: []string{"legacy.example.internal"}, wantHolder: "register@gw1"},
		{name: "public defaults to private", role: "db", host: "gw1", wantPublic: priv, wantHolder: "register@gw1"},
		{name: "role not configured, no names", role: "ext", host: "gw1", wantPublic: priv, wantHolder: "register@gw1"},
		{name: "no host name", role: "ext", wantPublic: priv, wantHolder: "register"},
		{name: "another case than the configuration's", role: "LEGACY", host: "gw1", wantErr: "role LEGACY: the configuration's role is legacy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRegistration(cfg, tc.role, priv, tc.public, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitcode.Of(err) != exitcode.Usage {
					t.Fatalf("got %v (exit %d), want exit 2 saying %q", err, exitcode.Of(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Role != tc.role || r.Private != priv || r.Public != tc.wantPublic || r.Holder != tc.wantHolder || !slices.Equal(r.Names, tc.wantNames) {
				t.Errorf("got %+v, want role %s, private %s, public %s, holder %s, names %v", r, tc.role, priv, tc.wantPublic, tc.wantHolder, tc.wantNames)
			}
		})
	}
}

func TestRegistrationEntry(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	then := now.Add(-time.Hour)
	r := Registration{Role: "ext", Private: netip.MustParseAddr("192.0.2.20"), Public: netip.MustParseAddr("203.0.113.20"), Names: []string{"ext.example.internal"}, Holder: "register@gw1"}
	stored := Entry{Name: "ext", PrivateIP: "192.0.2.20", PublicIP: "203.0.113.20", Names: []string{"ext.example.internal"}, Holder: "register@gw1", Epoch: 4, UpdatedAt: then}
	with := func(f func(*Entry)) Entry { e := stored; e.Names = slices.Clone(stored.Names); f(&e); return e }
	tests := []struct {
		name      string
		old       Entry
		wantSame  bool
		wantEpoch int64
		wantErr   bool
	}{
		{name: "no entry: epoch 1", old: Entry{}, wantEpoch: 1},
		{name: "the same: left as it is", old: stored, wantSame: true, wantEpoch: 4},
		{name: "another private address", old: with(func(e *Entry) { e.PrivateIP = "192.0.2.21" }), wantEpoch: 5},
		{name: "another public address", old: with(func(e *Entry) { e.PublicIP = "" }), wantEpoch: 5},
		{name: "another holder (a claim's)", old: with(func(e *Entry) { e.Holder = "i-0123456789abcdef0" }), wantEpoch: 5},
		{name: "a public DNS name (a claim's)", old: with(func(e *Entry) { e.PublicDNSName = "ec2-203-0-113-20.compute.amazonaws.com" }), wantEpoch: 5},
		{name: "other names", old: with(func(e *Entry) { e.Names = nil }), wantEpoch: 5},
		{name: "epoch at its greatest: an error, the entry still built", old: with(func(e *Entry) { e.Holder = "x"; e.Epoch = epoch.Max }), wantEpoch: epoch.Max, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, same, err := r.Entry(tc.old, now)
			if same != tc.wantSame || (err != nil) != tc.wantErr || e.Epoch != tc.wantEpoch {
				t.Fatalf("got same %v, epoch %d, error %v; want same %v, epoch %d, error %v", same, e.Epoch, err, tc.wantSame, tc.wantEpoch, tc.wantErr)
			}
			if same {
				if !e.UpdatedAt.Equal(then) {
					t.Errorf("unchanged entry: updated_at %s, want the stored %s", e.UpdatedAt, then)
				}
				return
			}
			want := Entry{Name: "ext", PrivateIP: "192.0.2.20", PublicIP: "203.0.113.20", Names: r.Names, Holder: "register@gw1", Epoch: tc.wantEpoch, UpdatedAt: now}
			if !sameBut(e, want) || !e.UpdatedAt.Equal(now) {
				t.Errorf("entry: got %+v, want %+v", e, want)
			}
			// The entry is one the table takes.
			d := New()
			if _, err := d.Set(e); err != nil {
				t.Errorf("Set(%+v): %v", e, err)
			}
		})
	}
}
