package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestRoleTable: a claim writes its role's entry in the role table,
// registers of services outside the cloud run at the same time and lose
// nothing, and a client with the EC2 and IMDS endpoints unreachable builds
// its hosts file from the table alone (s3://, a file), keeping every
// guarantee of hosts: unchanged means no write, a corrupt or cut-short
// table leaves the file as it was.
func TestRoleTable(t *testing.T) {
	w := newWorld(t, "")
	alloc, eip := w.allocate()
	s3api := s3.NewFromConfig(w.moto.Config(), func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if _, err := s3api.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	doc := "repository: s3://fleet-config/roles.json\nroles:\n  db:\n    allocation_id: " + alloc +
		"\n    dns:\n      route53: {zone_id: Z123, name: db.example.internal}\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// Route 53's zone does not exist: the DNS part fails (exit 5), the
	// table's entry is written all the same.
	const externals = 8
	var wg sync.WaitGroup
	var claimErr string
	var claimCode int
	wg.Go(func() {
		_, claimErr, claimCode = eipclaim(t, "claim", "--role", "db", "--config", conf, "--timeout", "90s")
	})
	// The registers are clients off EC2, with their own credentials (the
	// IAM gate judges them with docs/iam-client-policy.json): the real
	// binary, since the in-process claim holds the process's environment.
	bin := testenv.Eipclaim(t)
	regErrs := make([]string, externals)
	for i := range externals {
		wg.Go(func() {
			cmd := exec.Command(bin, "register", "--role", fmt.Sprintf("ext%d", i), "--address", fmt.Sprintf("192.0.2.%d", i+1),
				"--public-address", fmt.Sprintf("198.51.100.%d", i+1), "--config", conf, "--timeout", "60s")
			cmd.Env = append(os.Environ(), w.moto.EnvAs(testenv.CallerClient)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				regErrs[i] = fmt.Sprintf("register ext%d: %v: %s", i, err, out)
			}
		})
	}
	wg.Wait()
	if claimCode != exitcode.DNSFailed && claimCode != 0 {
		t.Fatalf("claim: exit %d\n%s", claimCode, claimErr)
	}
	for _, e := range regErrs {
		if e != "" {
			t.Error(e)
		}
	}

	// status shows the role's entry in the table.
	out, errs, _ := eipclaim(t, "status", "--role", "db", "--config", conf)
	if !strings.Contains(out, "table s3://fleet-config/roles.json: private "+w.privateIP()+", public "+eip+", holder "+w.instance) {
		t.Errorf("status does not show db's table entry:\n%s\n%s", out, errs)
	}

	// From here on, this is a client with no EC2 and no IMDS.
	w.as(testenv.CallerClient)
	t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	hostsPath := filepath.Join(dir, "hosts")
	original := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if err := os.WriteFile(hostsPath, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath, "--timeout", "30s")
	if code != 0 {
		t.Fatalf("hosts --from s3: exit %d\n%s%s", code, out, errs)
	}
	b, _ := os.ReadFile(hostsPath)
	got := string(b)
	if !strings.HasPrefix(got, original) {
		t.Errorf("localhost lines not kept:\n%s", got)
	}
	if !regexp.MustCompile(`\n` + regexp.QuoteMeta(w.privateIP()) + ` +db\.example\.internal +db\n`).MatchString(got) {
		t.Errorf("no line for db's private IP %s with its DNS name:\n%s", w.privateIP(), got)
	}
	for i := range externals {
		if !regexp.MustCompile(fmt.Sprintf(`\n192\.0\.2\.%d +ext%d\n`, i+1, i)).MatchString(got) {
			t.Errorf("registered ext%d lost:\n%s", i, got)
		}
	}

	// Unchanged: no write.
	st, _ := os.Stat(hostsPath)
	out, errs, code = eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath)
	if code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("second hosts --from: exit %d, %q %s, want unchanged", code, out, errs)
	}
	if st2, _ := os.Stat(hostsPath); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("the unchanged hosts file was rewritten")
	}

	// --public: the EIP, and the registered public addresses.
	if _, errs, code := eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath, "--public"); code != 0 {
		t.Fatalf("hosts --from --public: exit %d\n%s", code, errs)
	}
	b, _ = os.ReadFile(hostsPath)
	if !regexp.MustCompile(`\n`+regexp.QuoteMeta(eip)+` +db\.example\.internal +db\n`).MatchString(string(b)) ||
		!regexp.MustCompile(`\n198\.51\.100\.1 +ext0\n`).MatchString(string(b)) {
		t.Errorf("--public block lacks the EIP %s or ext0's public address:\n%s", eip, b)
	}

	// A file copy of the table works the same; a cut-short copy is refused
	// and the hosts file stays as it was.
	obj, err := s3api.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("roles.json")})
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := readBody(obj)
	copyPath := filepath.Join(dir, "roles.json")
	if err := os.WriteFile(copyPath, whole[:len(whole)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(hostsPath)
	_, errs, code = eipclaim(t, "hosts", "--from", copyPath, "--out", hostsPath)
	if code != exitcode.Usage || !strings.Contains(errs, "cut short") || !strings.Contains(errs, "left as it was") {
		t.Errorf("hosts --from a cut-short file: exit %d\n%s\nwant exit 2 saying it is cut short and the file was left", code, errs)
	}
	if after, _ := os.ReadFile(hostsPath); string(after) != string(before) {
		t.Error("the hosts file changed on a cut-short table")
	}
	// A corrupt object in S3: the same.
	if _, err := s3api.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("bad.json"), Body: strings.NewReader(`{"version": 9, "roles": {}}`)}); err != nil {
		t.Fatal(err)
	}
	// (A client whose policy names that table.)
	w.moto.SetPolicyValues(testenv.PolicyValues{TableObject: "fleet-config/bad.json"})
	_, errs, code = eipclaim(t, "hosts", "--from", "s3://fleet-config/bad.json", "--out", hostsPath)
	if code != exitcode.Usage || !strings.Contains(errs, "version 9") {
		t.Errorf("hosts --from a version-9 table: exit %d\n%s", code, errs)
	}
	w.moto.SetPolicyValues(testenv.DefaultPolicyValues)
	if after, _ := os.ReadFile(hostsPath); string(after) != string(before) {
		t.Error("the hosts file changed on a wrong-version table")
	}

	// register --remove takes an entry out; the next hosts run drops it.
	if out, errs, code := eipclaim(t, "register", "--role", "ext0", "--remove", "--config", conf); code != 0 || !strings.Contains(out, "entry removed") {
		t.Fatalf("register --remove: exit %d %q %s", code, out, errs)
	}
	if _, errs, code := eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath); code != 0 {
		t.Fatalf("hosts after remove: exit %d\n%s", code, errs)
	}
	if b, _ := os.ReadFile(hostsPath); strings.Contains(string(b), "ext0") || !strings.Contains(string(b), "ext1") {
		t.Errorf("after register --remove ext0:\n%s", b)
	}
}

func readBody(out *s3.GetObjectOutput) ([]byte, error) {
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// TestRegisterUsage: register's mistakes are usage errors (exit 2) made
// before anything is read.
func TestRegisterUsage(t *testing.T) {
	t.Setenv("EIPCLAIM_CONFIG", "")
	t.Setenv("EIPCLAIM_ROLE", "")
	t.Setenv("AWS_REGION", "us-east-1")
	conf := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(conf, []byte("roles: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"register", "--address", "192.0.2.1", "--config", conf}, "needs --role"},
		{[]string{"register", "--role", "ext", "--address", "192.0.2.1"}, "needs --config or EIPCLAIM_CONFIG"},
		{[]string{"register", "--role", "ext", "--config", conf}, "needs --address"},
		{[]string{"register", "--role", "ext", "--address", "192.0.2.300", "--config", conf}, `--address "192.0.2.300" is not an IP address`},
		{[]string{"register", "--role", "ext", "--remove", "--address", "192.0.2.1", "--config", conf}, "--remove takes no --address"},
		{[]string{"register", "--role", "ext", "--address", "192.0.2.1", "--config", conf, "--timeout", "5s"}, "no repository"},
		{[]string{"hosts", "--from", "ftp://x/y", "--out", filepath.Join(t.TempDir(), "h")}, "want s3://BUCKET/KEY, https://"},
		{[]string{"hosts", "--from", "/nonexistent/roles.json", "--config", conf}, "--from and --config"},
	} {
		_, errs, code := eipclaim(t, c.args...)
		if code != exitcode.Usage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d\n%s\nwant exit 2 and %q", c.args, code, errs, c.want)
		}
	}
}
