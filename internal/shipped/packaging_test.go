package shipped

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPackaging checks packaging/ without building a package (that needs
// nfpm, from the network: make -f release.mk deb check-deb): every file
// nfpm.yaml takes exists, every unit of init/ is packaged for deb and rpm,
// and the scripts and the settings file are valid sh.
func TestPackaging(t *testing.T) {
	cfg := readFile(t, "packaging/nfpm.yaml")
	srcRE := regexp.MustCompile(`(?m)^\s*-?\s*src:\s*(\S+)\s*$`)
	dstRE := regexp.MustCompile(`(?m)^\s*-?\s*dst:\s*(\S+)\s*$`)
	for _, m := range srcRE.FindAllSubmatch(cfg, -1) {
		src := string(m[1])
		if strings.HasPrefix(src, "dist/") {
			continue // built by make dist
		}
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(src)))
		if err != nil || len(matches) == 0 {
			t.Errorf("packaging/nfpm.yaml: src %s: no such file", src)
		}
	}
	var dsts []string
	for _, m := range dstRE.FindAllSubmatch(cfg, -1) {
		dsts = append(dsts, string(m[1]))
	}
	for _, u := range units {
		for _, dir := range []string{"/lib/systemd/system/", "/usr/lib/systemd/system/"} {
			if !slices.Contains(dsts, dir+u) {
				t.Errorf("packaging/nfpm.yaml does not install %s%s", dir, u)
			}
		}
	}
	for _, want := range []string{"/usr/bin/eipclaim", "/etc/default/eipclaim"} {
		if !slices.Contains(dsts, want) {
			t.Errorf("packaging/nfpm.yaml does not install %s", want)
		}
	}
	if !bytes.Contains(cfg, []byte("type: config|noreplace")) {
		t.Errorf("packaging/nfpm.yaml: /etc/default/eipclaim must be config|noreplace, kept across upgrades")
	}

	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, f := range []string{"packaging/scripts/postinstall.sh", "packaging/scripts/preremove.sh", "packaging/scripts/postremove.sh", "packaging/default/eipclaim"} {
		if out, err := exec.Command(sh, "-n", filepath.Join(root, f)).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", f, err, out)
		}
	}

	// The settings file is read by systemd's EnvironmentFile= and by sh:
	// comments, blank lines and NAME=value only.
	assignRE := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=("[^"$` + "`" + `\\]*"|[^"'\s$` + "`" + `\\]*)$`)
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "packaging/default/eipclaim")))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		line = strings.TrimPrefix(line, "#")
		if strings.HasPrefix(line, " ") || line == "" {
			continue // prose
		}
		if !assignRE.MatchString(line) {
			t.Errorf("packaging/default/eipclaim line %d: %q: want NAME=value or NAME=\"value\", readable by systemd and sh alike", n, line)
		}
	}
}
