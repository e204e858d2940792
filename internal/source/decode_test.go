package source

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// secret is in several testdata files; no output may ever show it.
const secret = "hunter2-SECRET-4f9a"

// decodeCases lists every file of testdata/decode (TestDecodeFilesListed
// checks that none is forgotten). want is "config", "noconfig" (an error
// wrapping ErrNoConfig) or "error"; contains must all be in the config's
// role or the error's message.
var decodeCases = []struct {
	file     string
	want     string
	contains []string
}{
	{"plain.yaml", "config", []string{"master-db"}},
	{"plain.json", "config", []string{"web"}},
	{"pointer.yaml", "config", []string{"db"}},
	{"plain.yaml.gz", "config", []string{"master-db"}},
	{"cloud-config.yaml", "config", []string{"master-db"}},
	{"cloud-config-no-key.yaml", "noconfig", []string{"user-data is a #cloud-config without an eipclaim: key", "add an eipclaim: key to the #cloud-config, or pass --config SRC", "--config"}},
	{"cloud-config-bad-eipclaim.yaml", "error", []string{"invalid configuration in user-data:", "roles.master-db.alocation_id (line 9): unknown key"}},
	{"cloud-config-not-yaml.yaml", "error", []string{"user-data: the #cloud-config is not valid YAML (syntax error: line 4: found unexpected end of stream)"}},
	{"script.sh", "noconfig", []string{"user-data is a shell script: no eipclaim configuration", "--config"}},
	{"script.sh.gz", "noconfig", []string{"user-data is a shell script, gzip-compressed"}},
	{"plain-typo.yaml", "noconfig", []string{"user-data is a YAML mapping with role but also keys that are not eipclaim's (rolez (line 2)"}},
	{"yaml-other.yaml", "noconfig", []string{"user-data is a YAML mapping without eipclaim's keys"}},
	{"eipclaim-no-header.yaml", "noconfig", []string{"without a #cloud-config first line"}},
	{"jinja.txt", "noconfig", []string{"jinja template"}},
	{"not-yaml.txt", "noconfig", []string{"neither a script, a #cloud-config nor YAML (syntax error: mapping values are not allowed in this context)"}},
	{"empty", "noconfig", []string{"user-data is empty"}},
	{"blank", "noconfig", []string{"user-data is empty"}},
	{"multipart-make-mime.txt", "config", []string{"master-db"}},
	{"multipart-make-mime.txt.gz", "config", []string{"master-db"}},
	{"multipart-7bit.txt", "config", []string{"master-db"}},
	{"multipart-plain-part.txt", "config", []string{"master-db"}},
	{"multipart-eipclaim-type.txt", "config", []string{"master-db"}},
	{"multipart-gzip-part.txt", "config", []string{"master-db"}},
	{"multipart-nested.txt", "config", []string{"master-db"}},
	{"multipart-none.txt", "noconfig", []string{"user-data is multipart with 3 parts (text/cloud-config, text/x-shellscript, text/x-include-url): no eipclaim configuration", "add an eipclaim: key to the #cloud-config (user-data part 1), or pass --config SRC"}},
	{"multipart-two.txt", "error", []string{"user-data part 1 (text/cloud-config) and user-data part 3 (text/plain) both hold eipclaim configuration"}},
}

func TestDecodeFiles(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "decode", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			c, origin, err := decode(raw)
			got := render(c, origin, err)
			if strings.Contains(got, secret) || strings.Contains(got, "hunter2") {
				t.Errorf("the output shows the secret:\n%s", got)
			}
			var kind, text string
			switch {
			case err == nil && c != nil:
				kind, text = "config", c.Role
			case errors.Is(err, ErrNoConfig):
				kind, text = "noconfig", err.Error()
			case err != nil:
				kind, text = "error", err.Error()
			default:
				t.Fatal("decode returned neither a config nor an error")
			}
			if kind != tc.want {
				t.Fatalf("got %s, want %s:\n%s", kind, tc.want, got)
			}
			if err != nil && exitcode.Of(err) != exitcode.Usage {
				t.Errorf("exit code = %d, want %d", exitcode.Of(err), exitcode.Usage)
			}
			for _, w := range tc.contains {
				if !strings.Contains(text, w) {
					t.Errorf("got %q, want it to contain %q", text, w)
				}
			}
			golden(t, filepath.Join("testdata", "golden", tc.file+".golden"), got)
		})
	}
}

func TestDecodeFilesListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "decode", "*"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"gen.py": true}
	for _, tc := range decodeCases {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in decodeCases", f)
		}
	}
}

// render shows Decode's result for a golden file.
func render(c *config.Config, origin string, err error) string {
	if err != nil {
		return fmt.Sprintf("error (exit %d, ErrNoConfig %v):\n%s\n", exitcode.Of(err), errors.Is(err, ErrNoConfig), err)
	}
	out, merr := yaml.Marshal(c)
	if merr != nil {
		return "marshal: " + merr.Error()
	}
	return "# from " + origin + "\n" + string(out)
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestDecodeOrigin(t *testing.T) {
	tests := []struct{ file, want string }{
		{"plain.yaml", "user-data"},
		{"cloud-config.yaml", "user-data"},
		{"multipart-make-mime.txt", "user-data part 1 (text/cloud-config)"},
		{"multipart-7bit.txt", "user-data part 2 (text/cloud-config)"},
		{"multipart-gzip-part.txt", "user-data part 2 (application/x-gzip)"},
		{"multipart-nested.txt", "user-data part 2.1 (text/cloud-config)"},
		{"multipart-eipclaim-type.txt", "user-data part 2 (text/x-eipclaim-config)"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "decode", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("origin = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecodeLines checks that line numbers are those of the document (or
// of the part) that holds the configuration.
func TestDecodeLines(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "decode", "cloud-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Line("roles.master-db.allocation_id"), 13; got != want {
		t.Errorf("line of roles.master-db.allocation_id = %d, want %d", got, want)
	}
	bad := multipartOf(t,
		part{"text/x-shellscript", "", "#!/bin/sh\nexport DB_PASSWORD=" + secret + "\n"},
		part{"text/cloud-config", "base64", "#cloud-config\npackages: [a]\neipclaim:\n  roles:\n    db:\n      public_ip: 203.0.113.300\n"},
	)
	_, err = Decode(bad)
	if err == nil {
		t.Fatal("Decode succeeded, want an error")
	}
	want := `invalid configuration in user-data part 2 (text/cloud-config):
  roles.db.public_ip "203.0.113.300" (line 6): want an IPv4 address such as 203.0.113.10`
	if err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Errorf("errors.As(%v, *config.Error) = %v, want the config error", err, ce)
	}
}

// part is one part of a multipart built by multipartOf.
type part struct{ contentType, encoding, body string }

// multipartOf builds multipart user-data as cloud-init does.
func multipartOf(t *testing.T, parts ...part) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "--BOUNDARY\nContent-Type: %s; charset=\"utf-8\"\nMIME-Version: 1.0\n", p.contentType)
		body := p.body
		if p.encoding != "" {
			fmt.Fprintf(&b, "Content-Transfer-Encoding: %s\n", p.encoding)
		}
		if p.encoding == "base64" {
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		fmt.Fprintf(&b, "\n%s\n", body)
	}
	b.WriteString("--BOUNDARY--\n")
	return b.Bytes()
}

var bombOnce struct {
	sync.Once
	data []byte
}

// gzipBomb returns 100 MiB of zeros, gzipped (about 100 KiB), made once.
func gzipBomb(t testing.TB) []byte {
	bombOnce.Do(func() { bombOnce.data = gzipBytes(t, make([]byte, 100<<20)) })
	return bombOnce.data
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeMultipartCases(t *testing.T) {
	cc := "#cloud-config\neipclaim:\n  role: db\n  roles: {db: {public_ip: 203.0.113.7}}\n"
	plain := "role: db\nroles: {db: {public_ip: 203.0.113.7}}\n"
	tests := []struct {
		name    string
		raw     []byte
		want    string // "" for success, else in the error
		wantErr error
	}{
		{"quoted-printable part", multipartOf(t, part{"text/cloud-config", "quoted-printable", strings.ReplaceAll(cc, "role: db", "role: =64b")}), "", nil},
		{"text/plain part sniffed as cloud-config", multipartOf(t, part{"text/plain", "", cc}), "", nil},
		{"application/json part", multipartOf(t, part{"application/json", "", `{"role":"db","roles":{"db":{"public_ip":"203.0.113.7"}}}`}), "", nil},
		{"part without content type", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\n\n" + plain + "--B--\n"), "", nil},
		{"base64 gzip part", multipartOf(t, part{"application/x-gzip", "base64", string(gzipBytes(t, []byte(cc)))}), "", nil},
		{"text/plain with other keys ignored", multipartOf(t, part{"text/plain", "", "source: somewhere\nother: x\n"}, part{"text/cloud-config", "", cc}), "", nil},
		{"single-part MIME message", []byte("Content-Type: text/cloud-config\nMIME-Version: 1.0\n\n" + cc), "", nil},
		{"explicit type with unknown key", multipartOf(t, part{ContentType, "", "role: db\nrolez: {}\n"}), "user-data part 1 (text/x-eipclaim-config):\n  rolez (line 2): unknown key", nil},
		{"eipclaim twice in a cloud-config", multipartOf(t, part{"text/cloud-config", "", cc + "eipclaim: {role: x}\n"}), "eipclaim: appears twice", nil},
		{"alias to an anchor outside", multipartOf(t, part{"text/cloud-config", "", "#cloud-config\npw: &pw " + secret + "\neipclaim:\n  role: *pw\n"}), "(line 4): an alias to an anchor outside", nil},
		{"no parts", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B--\n"), "user-data is multipart with no parts", ErrNoConfig},
		{"no boundary", []byte("Content-Type: multipart/mixed\nMIME-Version: 1.0\n\n--B--\n"), "without a boundary", nil},
		{"malformed part headers", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\n" + secret + "\n\nx\n--B--\n"), "malformed MIME multipart after part 0", nil},
		{"unknown transfer encoding", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\nContent-Transfer-Encoding: x-uue\n\n" + secret + "\n--B--\n"), "unknown Content-Transfer-Encoding", nil},
		{"invalid base64 body", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\nContent-Transfer-Encoding: base64\n\n" + secret + "!!\n--B--\n"), "the body is not valid base64", nil},
		{"not gzip after the magic", append([]byte{0x1f, 0x8b}, secret...), "user-data: not valid gzip", nil},

		// Every YAML document after the first would be ignored.
		{"plain YAML, second document", []byte(plain + "---\nrole: web\n"), "invalid configuration in user-data:\n  --- (line 3): a second YAML document", nil},
		{"plain YAML, second document ours", []byte("other: x\n---\n" + plain), "--- (line 2): a second YAML document", nil},
		{"plain YAML, syntax error after ours", []byte(plain + "---\npassword: [" + secret + "\n"), "user-data: not valid YAML after the eipclaim configuration at line 1", nil},
		{"plain YAML, two documents of others", []byte("a: 1\n---\nb: " + secret + "\n"), "user-data is YAML with 2 documents, none with eipclaim's keys", ErrNoConfig},
		{"cloud-config, second document", []byte(cc + "---\npackages: [b]\n"), "invalid configuration in user-data:\n  --- (line 5): a second YAML document", nil},
		{"cloud-config, eipclaim in the second document", []byte("#cloud-config\npackages: [a]\n---\neipclaim: {role: db}\n"), "--- (line 3)", nil},
		{"cloud-config, two documents without eipclaim", []byte("#cloud-config\npackages: [a]\n---\nruncmd: [" + secret + "]\n"), "of 2 YAML documents (cloud-init reads one), none with an eipclaim: key", ErrNoConfig},
		{"cloud-config part, second document", multipartOf(t, part{"text/cloud-config", "base64", cc + "---\neipclaim: {role: web}\n"}), "user-data part 1 (text/cloud-config):\n  --- (line 5)", nil},
		{"gzip plain part, second document", multipartOf(t, part{"application/x-gzip", "base64", string(gzipBytes(t, []byte(plain+"---\nrole: web\n")))}), "user-data part 1 (application/x-gzip):\n  --- (line 3)", nil},
		{"explicit type, second document", multipartOf(t, part{ContentType, "", plain + "...\n---\nrole: web\n"}), "user-data part 1 (text/x-eipclaim-config):\n  --- (line 4)", nil},
		{"plain YAML, empty document after ---", []byte(plain + "---\n# nothing\n"), "", nil},
		{"cloud-config, --- first", []byte("#cloud-config\n---\neipclaim:\n  role: db\n  roles: {db: {public_ip: 203.0.113.7}}\n"), "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(tc.raw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if c.Role != "db" || c.Roles["db"] == nil {
					t.Errorf("got role %q, roles %v; want db", c.Role, c.Roles)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the secret: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tc.wantErr)
			}
			if got := exitcode.Of(err); got != exitcode.Usage {
				t.Errorf("exit code = %d, want %d", got, exitcode.Usage)
			}
		})
	}
}

// TestDecodeGzipBomb checks that 100 MiB of zeros, gzipped, is refused
// without allocating much more than MaxDecompressed, alone and as a part.
func TestDecodeGzipBomb(t *testing.T) {
	bomb := gzipBomb(t)
	t.Logf("bomb: %d bytes", len(bomb))
	// gzip allows several members end to end; the cap is on them all.
	members := bytes.Repeat(gzipBytes(t, make([]byte, 1<<20)), 100)
	half := gzipBytes(t, bytes.Repeat([]byte("#cloud-config\n"), (MaxDecompressed/2+1024)/14))
	tests := []struct {
		name string
		raw  []byte
	}{
		{"whole user-data", bomb},
		{"base64 part", multipartOf(t, part{"text/x-shellscript", "", "#!/bin/sh\n"}, part{"application/x-gzip", "base64", string(bomb)})},
		{"gzip inside gzip", gzipBytes(t, bomb)},
		{"100 members of 1 MiB", members},
		{"two parts over the cap in total", multipartOf(t, part{"application/x-gzip", "base64", string(half)}, part{"application/x-gzip", "base64", string(half)})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			c, err := Decode(tc.raw)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("Decode succeeded (%+v), want an error", c)
			}
			if !strings.Contains(err.Error(), "gzip bomb") {
				t.Errorf("error %q, want it to mention the gzip bomb", err)
			}
			if exitcode.Of(err) != exitcode.Usage {
				t.Errorf("exit code = %d, want %d", exitcode.Of(err), exitcode.Usage)
			}
			// Reading capped output grows a buffer to about 1 MiB a few
			// times; 100 MiB would be far above this.
			const bound = 12 * MaxDecompressed
			if got := after.TotalAlloc - before.TotalAlloc; got > bound+4*uint64(len(tc.raw)) {
				t.Errorf("Decode allocated %d bytes, want at most about %d", got, bound)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "decode", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Decode(raw)
		switch {
		case err == nil && c == nil:
			t.Fatal("Decode returned neither a config nor an error")
		case err != nil && c != nil:
			t.Fatal("Decode returned both a config and an error")
		case err != nil && exitcode.Of(err) != exitcode.Usage:
			t.Fatalf("exit code %d, want %d: %v", exitcode.Of(err), exitcode.Usage, err)
		}
	})
}

// TestDecodeWholeConfiguration: user-data that is the whole configuration,
// with every top-level key config knows (repository: among them), is
// eipclaim's document; the decoder has no list of its own to fall behind.
func TestDecodeWholeConfiguration(t *testing.T) {
	ud := "role: db\nrepository: s3://bucket/roles.json\nsource: s3://bucket/eipclaim.yaml\nroles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n"
	c, err := Decode([]byte(ud))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if c.Repository != "s3://bucket/roles.json" || c.Role != "db" {
		t.Errorf("repository, role = %q, %q", c.Repository, c.Role)
	}
	// A document of one top-level key, whichever, is recognised.
	for _, k := range config.TopKeys() {
		doc := map[string]string{
			"role": "role: db\n", "source": "source: s3://bucket/eipclaim.yaml\n",
			"repository": "repository: s3://bucket/roles.json\n",
			"roles":      "roles:\n  db:\n    allocation_id: eipalloc-0123456789abcdef0\n",
		}[k]
		if doc == "" {
			t.Errorf("top-level key %s: no sample here; add one", k)
			continue
		}
		if _, err := Decode([]byte(doc)); err != nil {
			t.Errorf("user-data of %s: alone: %v", k, err)
		}
	}
}
