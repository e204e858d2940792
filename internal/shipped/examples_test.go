package shipped

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/source"
)

// TestExamples decodes every file under examples/ the way eipclaim reads
// it: user-data with source.Decode, a document fetched from S3, https or a
// file with config.Parse. Every file must be listed here, so that none rots.
func TestExamples(t *testing.T) {
	cases := []struct {
		file     string
		document bool // a configuration document (config.Parse), not user-data
		role     string
		source   string
		roles    []string
	}{
		{file: "user-data.yaml", role: "master-db", roles: []string{"master-db"}},
		{file: "cloud-config.yaml", role: "master-db", roles: []string{"master-db"}},
		{file: "multipart.txt", role: "master-db", source: "s3://fleet-config/eipclaim.yaml"},
		{file: "user-data-pointer.yaml", role: "master-db", source: "s3://fleet-config/eipclaim.yaml"},
		{file: "fleet.yaml", document: true, roles: []string{"mail-relay", "master-db", "vpn", "web"}},
		{file: "dns.yaml", role: "master-db", roles: []string{"master-db"}},
	}
	listed := map[string]bool{}
	for _, c := range cases {
		listed[c.file] = true
		t.Run(c.file, func(t *testing.T) {
			data := readFile(t, "examples/"+c.file)
			var (
				cfg *config.Config
				err error
			)
			if c.document {
				cfg, err = config.Parse(data, c.file)
			} else {
				cfg, err = source.Decode(data)
			}
			if err != nil {
				t.Fatalf("%v", err)
			}
			if cfg.Role != c.role {
				t.Errorf("role %q, want %q", cfg.Role, c.role)
			}
			if cfg.Source != c.source {
				t.Errorf("source %q, want %q", cfg.Source, c.source)
			}
			if got := slices.Sorted(maps.Keys(cfg.Roles)); !slices.Equal(got, c.roles) {
				t.Errorf("roles %q, want %q", got, c.roles)
			}
			if cfg.Role != "" && len(cfg.Roles) > 0 {
				if _, err := cfg.Lookup(cfg.Role); err != nil {
					t.Errorf("%v", err)
				}
			}
		})
	}

	// The pointer's source is the fleet table: together they name a role.
	t.Run("pointer and fleet", func(t *testing.T) {
		pointer, err := source.Decode(readFile(t, "examples/user-data-pointer.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		fleet, err := config.Parse(readFile(t, "examples/fleet.yaml"), "fleet.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Merge(fleet, pointer).Lookup(pointer.Role); err != nil {
			t.Errorf("user-data-pointer.yaml's role is not in fleet.yaml: %v", err)
		}
	})

	// The DNS example sets both publishers.
	t.Run("dns publishers", func(t *testing.T) {
		cfg, err := source.Decode(readFile(t, "examples/dns.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		r := cfg.Roles["master-db"]
		if r == nil || r.DNS == nil || r.DNS.Route53 == nil || r.DNS.RFC2136 == nil {
			t.Errorf("dns.yaml: want master-db with both dns.route53 and dns.rfc2136")
		}
	})

	entries, err := os.ReadDir(filepath.Join(root, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("examples/%s is not tested: add it to TestExamples", e.Name())
		}
	}
}
