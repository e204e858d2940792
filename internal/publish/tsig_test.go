package publish

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// secret is a test TSIG secret; no error message may quote it.
const secret = "8tU3p9Yq1xV0kq0uJ2n0r1m2Qm5x3QmS1l8k1m4pP2Q="

func TestParseTSIGKey(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     tsigKey
		wantErr  string
		wantName string
	}{
		{name: "bare", in: secret, want: tsigKey{secret: secret}},
		{name: "bare with newline", in: secret + "\n", want: tsigKey{secret: secret}},
		{name: "bare with spaces and CRLF", in: "  \t" + secret + "\r\n\r\n", want: tsigKey{secret: secret}},
		{name: "bare wrapped", in: secret[:20] + "\n" + secret[20:] + "\n", want: tsigKey{secret: secret}},
		{name: "bare unpadded", in: strings.TrimRight(secret, "="), want: tsigKey{secret: secret}},
		{name: "tsig-keygen", in: "key \"eipclaim\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n",
			want: tsigKey{name: "eipclaim.", algorithm: "hmac-sha256", secret: secret}},
		{name: "one line, unquoted name, no final semicolon", in: `key EIPClaim.Example. { secret "` + secret + `"; algorithm HMAC-SHA512; }`,
			want: tsigKey{name: "eipclaim.example.", algorithm: "hmac-sha512", secret: secret}},
		{name: "comments", in: "# generated\n// by hand\n/* block\n comment */ key \"k\" { # here\n secret \"" + secret + "\"; // there\n};",
			want: tsigKey{name: "k.", secret: secret}},
		{name: "empty", in: "", wantErr: "the file is empty"},
		{name: "white space", in: " \n\t\n", wantErr: "the file is empty"},
		{name: "not base64", in: "this is not a secret!", wantErr: "not a base64 secret, nor a BIND key statement"},
		{name: "bad base64 in statement", in: `key "k" { secret "not base64!"; };`, wantErr: "the secret clause is not a base64 secret"},
		{name: "no secret", in: `key "k" { algorithm hmac-sha256; };`, wantErr: "the key statement has no secret"},
		{name: "two keys", in: `key "a" { secret "` + secret + `"; }; key "b" { secret "` + secret + `"; };`, wantErr: "the file holds more than the key statement"},
		{name: "two secrets", in: `key "a" { secret "` + secret + `"; secret "` + secret + `"; };`, wantErr: "two secret clauses"},
		{name: "unknown clause", in: `key "a" { secret "` + secret + `"; owner "x"; };`, wantErr: "unknown clause"},
		{name: "not closed", in: `key "a" { secret "` + secret + `";`, wantErr: "not closed"},
		{name: "unterminated string", in: `key "a" { secret "` + secret + `; };`, wantErr: "a quoted string is not closed"},
		{name: "unterminated comment", in: `key "a" { /* secret "` + secret + `"; };`, wantErr: "a /* comment is not closed"},
		{name: "no name", in: `key { secret "` + secret + `"; };`, wantErr: "the key statement has no name"},
		{name: "bad name", in: `key "a b..c" { secret "` + secret + `"; };`, wantErr: "the key name is not a DNS name"},
		{name: "missing semicolon", in: `key "a" { secret "` + secret + `" };`, wantErr: "the secret clause is malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTSIGKey([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secret[:12]) {
					t.Errorf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestReadTSIGKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		path     string
		want     string
		wantErr  string
		wantCode int
	}{
		{name: "bare", path: write("bare.key", secret+"\n"), want: secret},
		{name: "missing", path: filepath.Join(dir, "missing.key"), wantErr: "tsig_secret_file " + filepath.Join(dir, "missing.key") + ": no such file", wantCode: exitcode.Usage},
		{name: "directory", path: dir, wantErr: "tsig_secret_file " + dir, wantCode: exitcode.Usage},
		{name: "empty", path: write("empty.key", ""), wantErr: "tsig_secret_file " + filepath.Join(dir, "empty.key") + ": the file is empty", wantCode: exitcode.Usage},
		{name: "not base64", path: write("bad.key", "password123!"), wantErr: "bad.key: not a base64 secret", wantCode: exitcode.Usage},
		{name: "too large", path: write("large.key", strings.Repeat("A", maxKeyFile+1)), wantErr: "larger than 65536 bytes", wantCode: exitcode.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readTSIGKey(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				if c := exitcode.Of(err); c != tc.wantCode {
					t.Errorf("exit code: got %d, want %d", c, tc.wantCode)
				}
				if strings.Contains(err.Error(), "password123") {
					t.Errorf("the error quotes the file: %v", err)
				}
				return
			}
			if err != nil || got.secret != tc.want {
				t.Fatalf("got %+v, %v; want secret %s", got, err, tc.want)
			}
		})
	}
}

// TestKeyFilePermission checks the error for an unreadable file. Tests may
// run as root, whom chmod does not stop, so it classifies the error itself.
func TestKeyFilePermission(t *testing.T) {
	err := keyFileError("/etc/eipclaim/tsig.key", &fs.PathError{Op: "open", Path: "/etc/eipclaim/tsig.key", Err: fs.ErrPermission})
	if exitcode.Of(err) != exitcode.Denied || !strings.Contains(err.Error(), "tsig_secret_file /etc/eipclaim/tsig.key: permission denied") {
		t.Fatalf("got %v (exit %d), want exit 3 naming the file", err, exitcode.Of(err))
	}
}

func TestTSIGAlgorithm(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hmac-sha256", dns.HmacSHA256},
		{"HMAC-SHA256.", dns.HmacSHA256},
		{"hmac-sha1", dns.HmacSHA1},
		{"hmac-sha224", dns.HmacSHA224},
		{"hmac-sha384", dns.HmacSHA384},
		{"hmac-sha512", dns.HmacSHA512},
		{"hmac-md5", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := tsigAlgorithm(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("tsigAlgorithm(%q): got %q, %t; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func FuzzParseTSIGKey(f *testing.F) {
	f.Add([]byte(secret))
	f.Add([]byte("key \"eipclaim\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n"))
	f.Add([]byte(`/* c */ key k { secret "` + secret + `"; }; # x`))
	f.Add([]byte(`key "a" { secret "x`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseTSIGKey(data)
		if err != nil {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(k.secret)
		if err != nil || len(raw) == 0 {
			t.Fatalf("parseTSIGKey(%q): secret %q is not non-empty base64", data, k.secret)
		}
		if k.name != "" {
			if _, ok := dns.IsDomainName(k.name); !ok || k.name != dns.CanonicalName(k.name) {
				t.Fatalf("parseTSIGKey(%q): key name %q is not a canonical name", data, k.name)
			}
		}
	})
}
