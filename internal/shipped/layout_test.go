package shipped

import (
	"bufio"
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layoutFile and layoutHeading: the section whose table says where things
// live and what may import what.
const (
	layoutFile    = "docs/development.md"
	layoutHeading = "## Layout: where things live, and what may import what"
)

// layoutRow is one row of the layout table: the packages it is for (one,
// or a group), and the internal packages they may import.
type layoutRow struct {
	line     int
	packages []string        // module-relative paths: cmd/eipclaim, internal/table
	imports  map[string]bool // module-relative paths, internal/ only
	anything bool            // "everything below": any internal package
}

var (
	backquoted    = regexp.MustCompile("`([^`]+)`")
	parenthetical = regexp.MustCompile(`\([^)]*\)`)
)

// readLayout parses the layout table of layoutFile, reporting what is
// not a row of it to errorf.
func readLayout(readme []byte, errorf func(format string, args ...any)) []layoutRow {
	var rows []layoutRow
	in, header := false, 0
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == layoutHeading:
			in = true
			continue
		case !in:
			continue
		case strings.HasPrefix(line, "#"):
			in = false
			continue
		case !strings.HasPrefix(line, "|"):
			if len(rows) > 0 {
				in = false
			}
			continue
		}
		if header < 2 { // the column names, and |---|---|
			header++
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			errorf(layoutFile+":%d: the layout table's row has %d columns, want 3 (package | owns | may import)", n, len(cells))
			continue
		}
		r := layoutRow{line: n, imports: map[string]bool{}}
		for _, m := range backquoted.FindAllStringSubmatch(cells[0], -1) {
			r.packages = append(r.packages, m[1])
		}
		if len(r.packages) == 0 {
			errorf(layoutFile+":%d: the layout table's row names no package in `backquotes`", n)
		}
		switch may := strings.TrimSpace(parenthetical.ReplaceAllString(cells[2], "")); may {
		case "everything below":
			r.anything = true
		case "—", "-", "":
		default:
			for name := range strings.SplitSeq(may, ",") {
				name = strings.Trim(strings.TrimSpace(name), "`")
				if name == "" || strings.ContainsAny(name, " /") {
					errorf(layoutFile+":%d: the layout table's \"may import\" %q: want short package names such as retry, config, separated by commas", n, name)
					continue
				}
				r.imports["internal/"+name] = true
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		errorf("%s has no table under %q", layoutFile, layoutHeading)
	}
	return rows
}

// internalImports returns every Go package of the module (module-relative
// path) with the internal packages its non-test files import, whatever
// their build constraints (the Windows files too).
func internalImports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	var module string
	for line := range strings.Lines(string(readFile(t, "go.mod"))) {
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			module = strings.TrimSpace(rest)
		}
	}
	if module == "" {
		t.Fatal("go.mod names no module")
	}
	pkgs := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, top := range []string{"cmd", "internal", "tools"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			pkg := filepath.ToSlash(rel)
			if pkgs[pkg] == nil {
				pkgs[pkg] = map[string]bool{}
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, spec := range f.Imports {
				p, err := strconv.Unquote(spec.Path.Value)
				if err != nil {
					return err
				}
				if dep, ok := strings.CutPrefix(p, module+"/"); ok && strings.HasPrefix(dep, "internal/") && dep != pkg {
					pkgs[pkg][dep] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pkgs
}

// shortNames returns the "may import" spelling of internal packages.
func shortNames(pkgs map[string]bool) string {
	var names []string
	for _, p := range slices.Sorted(maps.Keys(pkgs)) {
		names = append(names, strings.TrimPrefix(p, "internal/"))
	}
	if len(names) == 0 {
		return "—"
	}
	return strings.Join(names, ", ")
}

// TestLayoutTable: the layout table of docs/development.md is true of the code. Every
// package has a row (a row may group packages); every internal package it
// imports is in its row's "may import"; and a row allows nothing that its
// packages do not import, nor names a package that does not exist.
// cmd/eipclaim may import "everything below". Test files are not counted.
func TestLayoutTable(t *testing.T) {
	rows := readLayout(readFile(t, layoutFile), t.Errorf)
	checkLayout(rows, internalImports(t), t.Errorf)
}

// checkLayout reports to errorf where rows are not true of pkgs (each
// package with the internal packages it imports).
func checkLayout(rows []layoutRow, pkgs map[string]map[string]bool, errorf func(format string, args ...any)) {
	rowOf := map[string]*layoutRow{}
	for i := range rows {
		r := &rows[i]
		for _, p := range r.packages {
			if prev, ok := rowOf[p]; ok {
				errorf(layoutFile+":%d: %s has a row already (line %d): give each package one row", r.line, p, prev.line)
			}
			rowOf[p] = r
			if _, ok := pkgs[p]; !ok {
				errorf(layoutFile+":%d: the layout table has a row for %s, which is not a package of the repository: take it out, or correct its path", r.line, p)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(pkgs)) {
		r := rowOf[p]
		if r == nil {
			errorf(layoutFile+": the layout table (%s) has no row for %s: add the row\n\t| `%s` | (what it owns) | %s |", layoutHeading, p, p, shortNames(pkgs[p]))
			continue
		}
		if r.anything {
			continue
		}
		for _, dep := range slices.Sorted(maps.Keys(pkgs[p])) {
			if !r.imports[dep] {
				errorf(layoutFile+":%d: %s imports %s, which its row's \"may import\" does not list: add %s to it (the imports are: %s), or remove the import",
					r.line, p, dep, strings.TrimPrefix(dep, "internal/"), shortNames(pkgs[p]))
			}
		}
	}
	for i := range rows {
		r := &rows[i]
		used := map[string]bool{}
		for _, p := range r.packages {
			maps.Copy(used, pkgs[p])
		}
		for _, dep := range slices.Sorted(maps.Keys(r.imports)) {
			switch {
			case pkgs[dep] == nil:
				errorf(layoutFile+":%d: the row of %s may import %s, which is not a package of the repository: take it out of the row", r.line, strings.Join(r.packages, ", "), strings.TrimPrefix(dep, "internal/"))
			case !used[dep]:
				errorf(layoutFile+":%d: the row of %s may import %s, which it does not import: take it out of the row (the imports are: %s)", r.line, strings.Join(r.packages, ", "), strings.TrimPrefix(dep, "internal/"), shortNames(used))
			}
		}
	}
}

// TestLayoutTableChecks: checkLayout finds each way the table can be
// untrue, and passes a true one.
func TestLayoutTableChecks(t *testing.T) {
	readme := func(rows ...string) []byte {
		return []byte("intro\n\n" + layoutHeading + "\n\n| package | owns | may import |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n\nafter\n")
	}
	pkgs := map[string]map[string]bool{
		"cmd/eipclaim":     {"internal/table": true, "internal/retry": true},
		"internal/table":   {"internal/retry": true, "internal/config": true},
		"internal/retry":   {},
		"internal/config":  {},
		"internal/testenv": {},
		"internal/proof":   {},
	}
	good := []string{
		"| `cmd/eipclaim` | flags | everything below |",
		"| `internal/table` | the role table | retry, config (its checks) |",
		"| `internal/retry` | retries | — |",
		"| `internal/config` | the schema | — |",
		"| `internal/testenv`, `internal/proof` | tests | — |",
	}
	tests := []struct {
		name  string
		rows  []string
		wants []string // each in the errors; none when empty
	}{
		{name: "true", rows: good},
		{name: "no row", rows: slices.Delete(slices.Clone(good), 2, 3), wants: []string{"no row for internal/retry: add the row\n\t| `internal/retry` | (what it owns) | — |"}},
		{name: "import not allowed", rows: append(slices.Clone(good[:1]), append([]string{"| `internal/table` | t | config |"}, good[2:]...)...),
			wants: []string{"internal/table imports internal/retry, which its row's \"may import\" does not list: add retry"}},
		{name: "allowed, not imported", rows: append(slices.Clone(good[:1]), append([]string{"| `internal/table` | t | retry, config, source (its readers) |"}, good[2:]...)...),
			wants: []string{"may import source, which is not a package of the repository"}},
		{name: "allowed, exists, not imported", rows: append(slices.Clone(good[:2]), append([]string{"| `internal/retry` | r | config |"}, good[3:]...)...),
			wants: []string{"the row of internal/retry may import config, which it does not import"}},
		{name: "row for no package", rows: append(slices.Clone(good), "| `internal/gone` | x | — |"),
			wants: []string{"row for internal/gone, which is not a package"}},
		{name: "two rows", rows: append(slices.Clone(good), "| `internal/retry` | again | — |"), wants: []string{"internal/retry has a row already"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs []string
			errorf := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
			checkLayout(readLayout(readme(tc.rows...), errorf), pkgs, errorf)
			got := strings.Join(errs, "\n")
			if len(tc.wants) == 0 && got != "" {
				t.Errorf("a true table: got errors\n%s", got)
			}
			for _, w := range tc.wants {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q; got\n%s", w, got)
				}
			}
		})
	}
}
