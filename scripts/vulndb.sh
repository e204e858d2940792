#!/usr/bin/env bash
# vulndb.sh builds a local copy of the Go vulnerability database in
# .tools/vulndb, for machines that reach the Go module proxy but not
# vuln.go.dev:
#
#   bash scripts/vulndb.sh
#   GOVULNDB=file://$PWD/.tools/vulndb bash scripts/test.sh
#
# The module golang.org/x/vulndb carries every report as OSV JSON in
# data/osv/ (~25 MB zip through the proxy). govulncheck -db file:///DIR reads
# the v1 layout: index/db.json, index/modules.json, index/vulns.json and
# ID/<id>.json. golang.org/x/vulndb/cmd/indexdb writes exactly that, but
# building it pulls ~860 MB of modules (go-git, Google Cloud, OpenTelemetry),
# so this script writes the same files with a small standalone program
# (stdlib + golang.org/x/mod/semver for the "fixed" field, as indexdb does).
#
# Environment: VULNDB_VERSION, the golang.org/x/vulndb version (default
# latest). Idempotent: nothing is done when .tools/vulndb already holds that
# version. Caveat: the OSV files in the module carry zero "modified" times
# (vuln.go.dev fills them from the git history), so index/db.json says the
# version's commit time instead; findings are the same.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT="$ROOT/.tools/vulndb"
WANT=${VULNDB_VERSION:-latest}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOWORK=off

began=$SECONDS
# Outside any module, so that nothing touches the project's go.mod.
json=$(go mod download -json "golang.org/x/vulndb@$WANT")
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$json" | head -n1; }
version=$(field Version)
dir=$(field Dir)
info=$(field Info)
committed=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)
if [[ -z "$version" || ! -d "$dir/data/osv" ]]; then
	echo "vulndb: go mod download golang.org/x/vulndb@$WANT gave no data/osv:" >&2
	echo "$json" >&2
	exit 1
fi
if [[ -f "$OUT/VERSION" && "$(cat "$OUT/VERSION")" == "$version" ]]; then
	echo "vulndb: .tools/vulndb is golang.org/x/vulndb@$version already"
	exit 0
fi

cat >go.mod <<'EOF'
module vulndbgen

go 1.22
EOF
cat >main.go <<'EOF'
// Command vulndbgen writes a v1 Go vulnerability database (the layout
// govulncheck -db file:///DIR reads) from a directory of OSV JSON files, as
// golang.org/x/vulndb/cmd/indexdb does.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/mod/semver"
)

type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Affected []struct {
		Module struct {
			Path string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string `json:"type"`
			Events []struct {
				Introduced string `json:"introduced,omitempty"`
				Fixed      string `json:"fixed,omitempty"`
			} `json:"events"`
		} `json:"ranges,omitempty"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

func before(v, w string) bool { return semver.Compare("v"+v, "v"+w) < 0 }

// latestFixed is osvutils.LatestFixed of golang.org/x/vulndb.
func latestFixed(e *entry, i int) string {
	var latest string
	for _, r := range e.Affected[i].Ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed != "" && before(latest, ev.Fixed) {
				latest = ev.Fixed
			}
		}
		for _, ev := range r.Events {
			if ev.Introduced != "" && ev.Introduced != "0" && before(latest, ev.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

func main() {
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "vulndbgen:", err)
		os.Exit(1)
	}
}

func run(src, out, committed string) error {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no OSV files in %s (%v)", src, err)
	}
	modified, _ := time.Parse(time.RFC3339, committed)
	modules := map[string]*module{}
	var vulns []vuln
	for _, dir := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if e.ID == "" || e.ID+".json" != filepath.Base(f) {
			return fmt.Errorf("%s: id %q does not match the file name", f, e.ID)
		}
		if e.Modified.After(modified) {
			modified = e.Modified
		}
		vulns = append(vulns, vuln{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for i, a := range e.Affected {
			m := modules[a.Module.Path]
			if m == nil {
				m = &module{Path: a.Module.Path, Vulns: []moduleVuln{}}
				modules[a.Module.Path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: latestFixed(&e, i)})
		}
		// The entry as published: compact, unchanged.
		var compact json.RawMessage
		if err := json.Unmarshal(raw, &compact); err != nil {
			return err
		}
		b, err := json.Marshal(compact)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "ID", e.ID+".json"), b, 0o644); err != nil {
			return err
		}
	}
	var mods []*module
	for _, m := range modules {
		sort.SliceStable(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	for name, v := range map[string]any{
		"db.json":      map[string]time.Time{"modified": modified},
		"modules.json": mods,
		"vulns.json":   vulns,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "index", name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("vulndb: %d entries, %d modules\n", len(vulns), len(mods))
	return nil
}
EOF
go get golang.org/x/mod@v0.42.0 >/dev/null 2>&1 || go get golang.org/x/mod@latest
go build -o vulndbgen .

rm -rf "$OUT.new"
./vulndbgen "$dir/data/osv" "$OUT.new" "$committed"
echo "$version" >"$OUT.new/VERSION"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
echo "vulndb: golang.org/x/vulndb@$version -> .tools/vulndb ($(du -sh "$OUT" | cut -f1)) in $((SECONDS - began))s"
echo "vulndb: use it with GOVULNDB=file://$OUT"
