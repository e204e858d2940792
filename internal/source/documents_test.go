package source

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestLoadSecondDocument checks that a document read from a file, from S3
// or through user-data's source: is refused when it holds a second YAML
// document, which eipclaim would otherwise ignore.
func TestLoadSecondDocument(t *testing.T) {
	const twoDocs = "roles:\n  db: {public_ip: 203.0.113.1}\n---\nroles:\n  web: {public_ip: 203.0.113.2}\n"
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.yaml")
	writeFile(t, file, twoDocs)
	gz := filepath.Join(dir, "fleet.yaml.gz")
	writeFile(t, gz, string(gzipBytes(t, []byte(twoDocs))))
	s3 := &fakeS3{objects: map[string]map[string][]byte{"fleet": {"eipclaim.yaml": []byte(twoDocs)}}}
	tests := []struct {
		name   string
		loader *Loader
		req    Request
		want   string
	}{
		{"--config file", &Loader{}, Request{Role: "db", Config: file}, "invalid configuration in " + file + ":\n  --- (line 3): a second YAML document"},
		{"gzip file", &Loader{}, Request{Role: "db", Config: gz}, "invalid configuration in " + gz + ":\n  --- (line 3)"},
		{"S3 object", &Loader{S3: s3}, Request{Role: "db", Config: "s3://fleet/eipclaim.yaml"}, "invalid configuration in s3://fleet/eipclaim.yaml:\n  --- (line 3)"},
		{"user-data source:", &Loader{IMDS: &fakeIMDS{userData: []byte("role: db\nsource: " + file + "\n")}}, Request{UserData: true}, "--- (line 3)"},
		{"user-data itself", &Loader{IMDS: &fakeIMDS{userData: []byte("role: db\nsource: " + file + "\n---\nrole: web\n")}}, Request{UserData: true}, "invalid configuration in user-data:\n  --- (line 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.loader.Load(context.Background(), tc.req)
			if err == nil {
				t.Fatalf("Load succeeded (roles %v), want an error", got.Config.Roles)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("exit code %d, want %d: %v", code, exitcode.Usage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}
