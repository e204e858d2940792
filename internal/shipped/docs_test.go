package shipped

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/source"
	"github.com/eipclaim/eipclaim/internal/table"
)

// docBlock is one fenced block of the documentation, with what its info
// string says it is (docs/development.md, "Examples in the documentation
// are tested").
type docBlock struct {
	file   string // slash-separated, from the repository's root
	line   int    // of the opening fence
	lang   string
	kind   string            // example=KIND; "" when not marked
	attrs  map[string]string // other NAME=VALUE words of the info string
	reason string            // after example=no
	body   string            // without the fences, the fence's indent removed
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docKinds are the kinds a block may be, each checked by TestDocExamples
// or, for usage and run, by TestDocCommands.
var docKinds = []string{"user-data", "document", "role-table", "iam-policy", "json", "json-members", "json-elements", "env", "script", "usage", "run", "no"}

var fenceRE = regexp.MustCompile("^([ \t]*)(```+|~~~+)(.*)$")

// parseDocBlocks returns the fenced blocks of a Markdown file, reporting
// a block left open to errorf.
func parseDocBlocks(file string, data []byte, errorf func(format string, args ...any)) []docBlock {
	var (
		blocks []docBlock
		cur    *docBlock
		indent string
		fence  string
		body   []string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := fenceRE.FindStringSubmatch(line)
		if cur != nil {
			if m != nil && strings.TrimSpace(m[3]) == "" && m[2][0] == fence[0] && len(m[2]) >= len(fence) {
				cur.body = strings.Join(body, "\n") + "\n"
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			body = append(body, strings.TrimPrefix(line, indent))
			continue
		}
		if m == nil {
			continue
		}
		indent, fence, body = m[1], m[2], nil
		cur = &docBlock{file: file, line: n, attrs: map[string]string{}}
		words := strings.Fields(m[3])
		if len(words) > 0 {
			cur.lang = words[0]
		}
		for i, w := range words[min(1, len(words)):] {
			name, value, ok := strings.Cut(w, "=")
			if !ok {
				continue
			}
			if name == "example" {
				cur.kind = value
				if value == "no" {
					cur.reason = strings.TrimSpace(strings.TrimLeft(strings.Join(words[1+i+1:], " "), "—-: "))
					break
				}
				continue
			}
			cur.attrs[name] = value
		}
	}
	if cur != nil {
		errorf("%s:%d: the fenced block is never closed", file, cur.line)
	}
	return blocks
}

// docFiles returns README.md and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	matches, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		files = append(files, "docs/"+filepath.Base(m))
	}
	return files
}

// docBlocks returns every fenced block of the documentation.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	var blocks []docBlock
	for _, f := range docFiles(t) {
		blocks = append(blocks, parseDocBlocks(f, readFile(t, f), t.Errorf)...)
	}
	if len(blocks) == 0 {
		t.Fatal("the documentation has no fenced block: is root right?")
	}
	return blocks
}

// looksLikeEipclaim reports the first line of body that is an eipclaim
// command or a configuration key, which a block marked example=no must
// not hold: such a block can be tested, so it must be.
func looksLikeEipclaim(body string) string {
	for line := range strings.Lines(body) {
		l := strings.TrimSpace(line)
		l = strings.TrimPrefix(l, "$ ")
		for _, p := range []string{"eipclaim ", "role:", "roles:", "eipclaim:"} {
			if strings.HasPrefix(l, p) || l == strings.TrimSpace(p) {
				return l
			}
		}
	}
	return ""
}

// TestDocExamples checks every example of README.md and docs/ by its
// kind (docs/development.md): configurations are decoded as eipclaim
// decodes them, JSON is parsed, settings are read as systemd and sh read
// them, scripts are parsed by sh. The commands are TestDocCommands'.
// Every block must say what it is.
func TestDocExamples(t *testing.T) {
	counts := map[string]int{}
	for _, b := range docBlocks(t) {
		counts[b.kind]++
		t.Run(strings.NewReplacer("/", "_", ":", "_").Replace(b.String()), func(t *testing.T) {
			if err := checkDocBlock(b); err != nil {
				t.Errorf("%s: %v", b, err)
			}
		})
	}
	t.Logf("documentation examples by kind: %v", counts)
}

// checkDocBlock checks one block by its kind; usage and run blocks are
// only recognized here.
func checkDocBlock(b docBlock) error {
	switch b.kind {
	case "":
		return fmt.Errorf("the fenced block does not say what it is: add example=KIND to its info string (```%s example=KIND), KIND one of %s; see docs/development.md", b.lang, strings.Join(docKinds, ", "))
	case "no":
		if b.reason == "" {
			return fmt.Errorf("example=no needs a reason after it: why can it not run here?")
		}
		if l := looksLikeEipclaim(b.body); l != "" {
			return fmt.Errorf("marked example=no, but %q is an eipclaim command or configuration: mark it with the kind that tests it", l)
		}
		return nil
	case "user-data":
		cfg, err := source.Decode([]byte(b.body))
		if err != nil {
			return fmt.Errorf("as user-data: %v", err)
		}
		if cfg.Role != "" && len(cfg.Roles) > 0 && cfg.Source == "" {
			if _, err := cfg.Lookup(cfg.Role); err != nil {
				return err
			}
		}
		return nil
	case "document":
		_, err := config.Parse([]byte(b.body), b.String())
		return err
	case "role-table":
		doc, err := table.Parse([]byte(b.body), b.String())
		if err != nil {
			return err
		}
		if len(doc.Skipped()) > 0 || len(doc.Roles) == 0 {
			return fmt.Errorf("the role table's entries are not all valid: %d read, skipped %v", len(doc.Roles), doc.Skipped())
		}
		return nil
	case "iam-policy":
		return checkPolicyJSON([]byte(b.body))
	case "json":
		return checkJSON(b.body)
	case "json-members":
		return checkJSON("{" + b.body + "}")
	case "json-elements":
		return checkJSON("[" + b.body + "]")
	case "env":
		return checkEnv(b.body, settingNames())
	case "script":
		out, err := exec.Command("sh", "-n", "-c", b.body).CombinedOutput()
		if err != nil {
			return fmt.Errorf("sh -n: %v\n%s", err, out)
		}
		return nil
	case "usage", "run":
		if l := firstNot(b.body, "eipclaim"); l != "" {
			return fmt.Errorf("an example=%s block holds only eipclaim commands (and # comments); %q is not one", b.kind, l)
		}
		return nil
	}
	return fmt.Errorf("example=%s is not a kind; want one of %s (docs/development.md)", b.kind, strings.Join(docKinds, ", "))
}

// firstNot returns the first line of body that neither is blank, a #
// comment, nor starts with the word cmd.
func firstNot(body, cmd string) string {
	for line := range strings.Lines(body) {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "#") || l == cmd || strings.HasPrefix(l, cmd+" ") {
			continue
		}
		return l
	}
	return ""
}

func checkJSON(s string) error {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return nil
}

var actionRE = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z*]+$`)

// checkPolicyJSON decodes an IAM policy document strictly.
func checkPolicyJSON(data []byte) error {
	var p policy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("as an IAM policy: %v", err)
	}
	if p.Version != "2012-10-17" {
		return fmt.Errorf("Version %q, want 2012-10-17", p.Version)
	}
	if len(p.Statement) == 0 {
		return fmt.Errorf("no Statement")
	}
	for i, s := range p.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return fmt.Errorf("statement %d: Effect %q", i, s.Effect)
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			return fmt.Errorf("statement %d: want Action and Resource", i)
		}
		for _, a := range s.Action {
			if !actionRE.MatchString(a) {
				return fmt.Errorf("statement %d: %q is not an action", i, a)
			}
		}
	}
	return nil
}

// settingNames returns the names packaging/default/eipclaim documents
// (each as a commented #NAME=value line).
func settingNames() map[string]bool {
	data, err := os.ReadFile(filepath.Join(root, "packaging", "default", "eipclaim"))
	if err != nil {
		panic(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(string(data), -1) {
		names[m[1]] = true
	}
	return names
}

var settingRE = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(.*)$`)

// checkEnv checks a part of /etc/default/eipclaim: each line a comment or
// NAME=value that systemd's EnvironmentFile= and sh read alike (systemd
// takes a # after a value into the value, sh runs a word after an
// unquoted space as a command), NAME one the settings file documents, and
// sh, sourcing it, gets the values systemd would.
func checkEnv(body string, known map[string]bool) error {
	want := map[string]string{}
	var names []string
	for line := range strings.Lines(body) {
		l := strings.TrimRight(line, "\n")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := settingRE.FindStringSubmatch(l)
		if m == nil {
			return fmt.Errorf("%q is not NAME=value", l)
		}
		name, value := m[1], m[2]
		if !known[name] {
			return fmt.Errorf("%s is not a setting packaging/default/eipclaim documents", name)
		}
		switch {
		case strings.HasPrefix(value, `"`):
			if len(value) < 2 || !strings.HasSuffix(value, `"`) || strings.ContainsAny(value[1:len(value)-1], "\"\\$`") {
				return fmt.Errorf("%s: a quoted value is one \"...\" with nothing after it, and no \", \\, $ or ` in it (systemd and sh read those differently)", name)
			}
			value = value[1 : len(value)-1]
		case strings.ContainsAny(value, " \t#'\\$`;&|<>()"):
			return fmt.Errorf("%s=%s: quote a value with spaces, and put a comment on a line of its own (systemd reads a # after a value as part of it)", name, value)
		}
		want[name] = value
		names = append(names, name)
	}
	if len(names) == 0 {
		return fmt.Errorf("no setting")
	}
	slices.Sort(names)
	names = slices.Compact(names)
	script := "set -e\n" + body + "\n"
	for _, n := range names {
		script += fmt.Sprintf("printf '%%s\\0' \"$%s\"\n", n)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		return fmt.Errorf("sh cannot read it: %v %s", err, stderr.String())
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i, n := range names {
		if i >= len(got) || got[i] != want[n] {
			return fmt.Errorf("sh reads %s as %q, systemd as %q", n, got[min(i, len(got)-1)], want[n])
		}
	}
	return nil
}

// TestDocExampleChecks: each check finds what it is for, and passes a
// good block.
func TestDocExampleChecks(t *testing.T) {
	known := map[string]bool{"EIPCLAIM_ROLE": true, "EIPCLAIM_HOSTS_ARGS": true}
	envs := []struct{ body, want string }{
		{"# a comment\nEIPCLAIM_ROLE=master-db\nEIPCLAIM_HOSTS_ARGS=\"--from s3://b/k --public\"\n", ""},
		{"EIPCLAIM_HOSTS_ARGS=--from s3://b/k\n", "quote a value with spaces"},
		{"EIPCLAIM_ROLE=master-db   # the role\n", "comment on a line of its own"},
		{"EIPCLAIM_ARGS=--json\n", "not a setting"},
		{"EIPCLAIM_ROLE=\"db\" # x\n", "nothing after it"},
		{"export EIPCLAIM_ROLE=db\n", "not NAME=value"},
	}
	for _, c := range envs {
		err := checkEnv(c.body, known)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("env %q: %v", c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("env %q: error %v, want one saying %q", c.body, err, c.want)
		}
	}

	md := "# t\n\n```yaml\nrole: x\n```\n\n```sh example=no — needs root\nsudo apt-get install x\n```\n\n" +
		"```sh example=no — needs root\neipclaim check\n```\n\n  ```sh example=run\n  eipclaim status\n  ```\n\n" +
		"```sh example=no\nls\n```\n\n```json example=json-members id=x\n\"a\": 1\n```\n\n```sh example=run\nsystemctl start x\n```\n\n```yaml example=user-data\nrole: db\nrolez: {}\n```\n"
	var parseErrs []string
	blocks := parseDocBlocks("t.md", []byte(md), func(f string, a ...any) { parseErrs = append(parseErrs, fmt.Sprintf(f, a...)) })
	if len(parseErrs) > 0 || len(blocks) != 8 {
		t.Fatalf("parsed %d blocks (errors %v), want 8", len(blocks), parseErrs)
	}
	wants := []string{"does not say what it is", "", "is an eipclaim command", "", "needs a reason", "", `"systemctl start x" is not one`, "rolez"}
	for i, b := range blocks {
		err := checkDocBlock(b)
		switch w := wants[i]; {
		case w == "" && err != nil:
			t.Errorf("block %d (%s): %v", i, b, err)
		case w != "" && (err == nil || !strings.Contains(err.Error(), w)):
			t.Errorf("block %d (%s): error %v, want one saying %q", i, b, err, w)
		}
	}
	if b := blocks[3]; b.body != "eipclaim status\n" || b.kind != "run" {
		t.Errorf("an indented block: kind %q body %q, want run and the indent removed", b.kind, b.body)
	}
	if b := blocks[5]; b.attrs["id"] != "x" {
		t.Errorf("attrs %v, want id=x", b.attrs)
	}
	if b := blocks[1]; b.reason != "needs root" {
		t.Errorf("reason %q, want needs root", b.reason)
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)
var commentRE = regexp.MustCompile(`(?s)<!--.*?-->`)

// TestDocLinks: every relative link of README.md and docs/ names a file
// of the repository (HTML comments aside).
func TestDocLinks(t *testing.T) {
	for _, f := range docFiles(t) {
		text := commentRE.ReplaceAllString(string(readFile(t, f)), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(root, filepath.Dir(filepath.FromSlash(f)), filepath.FromSlash(target))
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: the link %s names no file of the repository", f, m[1])
			}
		}
	}
}
