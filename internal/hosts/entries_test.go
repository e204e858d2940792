package hosts

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestEntries(t *testing.T) {
	db := Placed{Role: "db", Names: []string{"db.example.internal"}, PrivateIP: "10.0.1.5", PublicIP: "203.0.113.7"}
	free := Placed{Role: "cache"}
	private := Placed{Role: "ext", PrivateIP: "192.0.2.20"}
	tests := []struct {
		name        string
		placed      []Placed
		public      bool
		want        []Entry
		wantMissing []string
		wantErr     string
	}{
		{name: "none", placed: nil},
		{name: "private", placed: []Placed{db, free, private},
			want:        []Entry{{IP: netip.MustParseAddr("10.0.1.5"), Names: db.Names, Role: "db"}, {IP: netip.MustParseAddr("192.0.2.20"), Role: "ext"}},
			wantMissing: []string{"cache"}},
		{name: "public", placed: []Placed{db, free, private}, public: true,
			want:        []Entry{{IP: netip.MustParseAddr("203.0.113.7"), Names: db.Names, Role: "db"}},
			wantMissing: []string{"cache", "ext"}},
		{name: "order kept", placed: []Placed{private, db},
			want: []Entry{{IP: netip.MustParseAddr("192.0.2.20"), Role: "ext"}, {IP: netip.MustParseAddr("10.0.1.5"), Names: db.Names, Role: "db"}}},
		{name: "not an address", placed: []Placed{db, {Role: "bad", PrivateIP: "10.0.1"}}, wantErr: `role bad: EC2 gave the address "10.0.1"`},
		{name: "bad public only matters with public", placed: []Placed{{Role: "odd", PrivateIP: "10.0.0.9", PublicIP: "x"}}, public: true, wantErr: `role odd: EC2 gave the address "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, missing, err := Entries(tc.placed, tc.public, "EC2")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Entries: got %v, want an error saying %q", err, tc.wantErr)
				}
				if got != nil || missing != nil {
					t.Errorf("Entries with an error: got %v, %v; want nothing", got, missing)
				}
				return
			}
			if err != nil {
				t.Fatalf("Entries: %v", err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b Entry) bool {
				return a.IP == b.IP && a.Role == b.Role && slices.Equal(a.Names, b.Names)
			}) {
				t.Errorf("entries: got %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(missing, tc.wantMissing) {
				t.Errorf("missing: got %v, want %v", missing, tc.wantMissing)
			}
		})
	}
}
