package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHostsFile(t *testing.T) {
	w := newWorld(t, "")
	dbAlloc, dbIP := w.allocate()
	mailAlloc, mailIP := w.allocate() // free: no holder, left out (named by its public_ip)
	w.associate(dbAlloc, w.instance)
	doc := "roles:\n  master-db:\n    allocation_id: " + dbAlloc + "\n    dns:\n      route53: {zone_id: Z123, name: master-db.example.internal}\n" +
		"  mail:\n    public_ip: " + mailIP + "\n"
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	hostsPath := filepath.Join(dir, "hosts")
	original := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n# a comment the operator wrote\n10.9.9.9 legacy.example.internal\n"
	if err := os.WriteFile(hostsPath, []byte(original), 0o640); err != nil {
		t.Fatal(err)
	}
	// A client with --config needs no instance metadata: make IMDS unreachable.
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	out, errs, code := eipclaim(t, "hosts", "--config", conf, "--out", hostsPath, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("hosts: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	b, err := os.ReadFile(hostsPath)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, original) {
		t.Errorf("the lines outside the block were not kept:\n%s", got)
	}
	block := got[strings.Index(got, "# BEGIN eipclaim"):]
	privateIP := w.privateIP()
	if !regexp.MustCompile(`\n` + regexp.QuoteMeta(privateIP) + ` +master-db\.example\.internal +master-db\n`).MatchString(block) {
		t.Errorf("block lacks %s master-db.example.internal master-db:\n%s", privateIP, block)
	}
	if strings.Contains(block, "mail") {
		t.Errorf("a role without a holder got an entry:\n%s", block)
	}
	// The warning names the EIP left out, also for a role given by its
	// public_ip (the allocation id is EC2's answer, not the configuration's).
	if !regexp.MustCompile(`no instance holds the role's EIP; leaving the role out.*role=mail.*allocation_id=` + regexp.QuoteMeta(mailAlloc)).MatchString(errs) {
		t.Errorf("no warning naming mail's EIP %s:\n%s", mailAlloc, errs)
	}
	if fi, _ := os.Stat(hostsPath); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}

	// --public writes the EIP itself.
	if _, errs, code := eipclaim(t, "hosts", "--config", conf, "--out", hostsPath, "--public", "--timeout", "60s"); code != 0 {
		t.Fatalf("hosts --public: exit %d\n%s", code, errs)
	}
	b, _ = os.ReadFile(hostsPath)
	if !regexp.MustCompile(`\n`+regexp.QuoteMeta(dbIP)+` +master-db\.example\.internal +master-db\n`).MatchString(string(b)) || strings.Contains(string(b), "mail") {
		t.Errorf("--public block lacks %s:\n%s", dbIP, b)
	}

	// With the EC2 API unreachable, the file stays byte for byte.
	before, _ := os.ReadFile(hostsPath)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	_, errs, code = eipclaim(t, "hosts", "--config", conf, "--out", hostsPath, "--timeout", "3s")
	if code == 0 {
		t.Fatalf("hosts with EC2 unreachable: exit 0, want a failure\n%s", errs)
	}
	after, _ := os.ReadFile(hostsPath)
	if string(after) != string(before) {
		t.Errorf("the hosts file changed although EC2 was unreachable:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !strings.Contains(errs, "left as it was") {
		t.Errorf("the error does not say the file was left alone:\n%s", errs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// privateIP returns the instance's primary private IP.
func (w *world) privateIP() string {
	w.t.Helper()
	for _, n := range w.describeSelf().NetworkInterfaces {
		if n.Attachment != nil && n.Attachment.DeviceIndex != nil && *n.Attachment.DeviceIndex == 0 {
			return *n.PrivateIpAddress
		}
	}
	w.t.Fatal("no primary interface")
	return ""
}
