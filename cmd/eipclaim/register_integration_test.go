package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestRegisterWritesWhatClientsRead: what register writes, every client
// can read (a DNS name with its final dot is written as the host name, as
// a claim writes it); what clients would refuse, register refuses with
// exit 2 and the table as it was; and one bad entry put in the table by
// hand is left out of every client's hosts file with a warning, the others
// written.
func TestRegisterWritesWhatClientsRead(t *testing.T) {
	w := newWorld(t, "")
	s3api := s3.NewFromConfig(w.moto.Config(), func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if _, err := s3api.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	// register and hosts --from run off EC2: the IAM gate judges them by
	// docs/iam-client-policy.json (the table object fleet-config/roles.json).
	w.as(testenv.CallerClient)
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	doc := "repository: s3://fleet-config/roles.json\nroles:\n  legacy:\n    public_ip: 203.0.113.10\n" +
		"    dns:\n      route53: {zone_id: Z123, name: legacy-db.example.internal.}\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, reg := range [][]string{{"legacy", "192.0.2.10"}, {"other", "192.0.2.11"}} {
		if out, errs, code := eipclaim(t, "register", "--role", reg[0], "--address", reg[1], "--config", conf); code != 0 {
			t.Fatalf("register %s: exit %d\n%s%s", reg[0], code, out, errs)
		}
	}
	table := func() string {
		t.Helper()
		obj, err := s3api.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("roles.json")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := readBody(obj)
		return string(b)
	}
	hostsPath := filepath.Join(dir, "hosts")
	out, errs, code := eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath)
	if code != 0 {
		t.Fatalf("hosts --from after register: exit %d\n%s%s\ntable:\n%s", code, out, errs, table())
	}
	b, _ := os.ReadFile(hostsPath)
	if !regexp.MustCompile(`\n192\.0\.2\.10 +legacy-db\.example\.internal +legacy\n`).Match(b) || !regexp.MustCompile(`\n192\.0\.2\.11 +other\n`).Match(b) {
		t.Errorf("hosts file:\n%s", b)
	}

	// What readers refuse, register refuses: exit 2, the table unchanged.
	before := table()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "LEGACY", "--address", "192.0.2.20"}, "the configuration's role is legacy"},
		{[]string{"--role", "OTHER", "--address", "192.0.2.20"}, "the table has role other"},
		{[]string{"--role", "zoned", "--address", "fe80::1%eth0"}, "zone"},
		{[]string{"--role", "zoned", "--address", "fe80::1%eth0\n10.9.9.9 evil"}, "zone"},
		{[]string{"--role", "any", "--address", "0.0.0.0"}, "unspecified"},
		{[]string{"--role", "any", "--address", "::"}, "unspecified"},
		{[]string{"--role", "multi", "--address", "224.0.0.1"}, "multicast"},
		{[]string{"--role", "multi", "--address", "192.0.2.30", "--public-address", "ff02::1"}, "multicast"},
		{[]string{"--role", "bcast", "--address", "255.255.255.255"}, "broadcast"},
	} {
		_, errs, code := eipclaim(t, append(append([]string{"register"}, c.args...), "--config", conf)...)
		if code != exitcode.Usage || !strings.Contains(errs, c.want) || strings.Contains(errs, "\n10.9.9.9") {
			t.Errorf("register %q: exit %d\n%s\nwant exit 2 saying %q", c.args, code, errs, c.want)
		}
	}
	if after := table(); after != before {
		t.Errorf("a refused register changed the table:\n%s\nwas:\n%s", after, before)
	}

	// A bad entry written by hand: clients leave it out and warn, the
	// others are written; a register of another role keeps it as it is.
	bad := strings.Replace(before, `"roles": {`, `"roles": {
    "broken": {"name": "broken", "private_ip": "fe80::1%eth0", "epoch": 1, "updated_at": "2025-01-02T03:04:05Z"},`, 1)
	if _, err := s3api.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("roles.json"), Body: strings.NewReader(bad)}); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := eipclaim(t, "register", "--role", "third", "--address", "192.0.2.12", "--config", conf); code != 0 {
		t.Fatalf("register beside a bad entry: exit %d\n%s", code, errs)
	}
	if got := table(); !strings.Contains(got, `"broken"`) || !strings.Contains(got, `"third"`) {
		t.Errorf("after a register beside a bad entry:\n%s", got)
	}
	out, errs, code = eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hostsPath)
	if code != 0 || !strings.Contains(errs, "broken") || !strings.Contains(errs, "zone") {
		t.Fatalf("hosts --from with a bad entry: exit %d\n%s%s\nwant exit 0 and a warning naming role broken", code, out, errs)
	}
	b, _ = os.ReadFile(hostsPath)
	if strings.Contains(string(b), "broken") || !regexp.MustCompile(`\n192\.0\.2\.12 +third\n`).Match(b) || !regexp.MustCompile(`\n192\.0\.2\.11 +other\n`).Match(b) {
		t.Errorf("hosts file with a bad entry in the table:\n%s", b)
	}
}
