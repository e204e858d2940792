package hosts

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from Render's output")

// testEntries are the entries of the golden files, deliberately out of order.
var testEntries = []Entry{
	{IP: netip.MustParseAddr("10.0.2.7"), Names: []string{"mail.example.internal", "mail-relay"}},
	{IP: netip.MustParseAddr("10.0.1.5"), Names: []string{"master-db.example.internal", "master-db"}},
	{IP: netip.MustParseAddr("2001:db8::10"), Names: []string{"cache.example.internal", "cache"}},
}

func entry(ip string, names ...string) Entry {
	return Entry{IP: netip.MustParseAddr(ip), Names: names}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRenderGolden renders each testdata/*.hosts with testEntries and
// compares with testdata/*.golden; -update rewrites the golden files.
func TestRenderGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.hosts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.hosts")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".hosts")
		t.Run(name, func(t *testing.T) {
			existing := readTestdata(t, name+".hosts")
			got, err := Render(existing, testEntries)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readTestdata(t, name+".golden")
			if !bytes.Equal(got, want) {
				t.Errorf("Render(%s) =\n%q\nwant (%s)\n%q", in, got, golden, want)
			}
			again, err := Render(got, testEntries)
			if err != nil {
				t.Fatalf("Render(own output): %v", err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("Render(own output) =\n%q\nwant it unchanged\n%q", again, got)
			}
			checkOutsideKept(t, existing, got)
		})
	}
}

// TestRender checks behaviours the golden files do not show at a glance.
func TestRender(t *testing.T) {
	block := func(eol string, lines ...string) string {
		all := append(append([]string{beginMarker, notice}, lines...), endMarker)
		return strings.Join(all, eol) + eol
	}
	tests := []struct {
		name     string
		existing string
		entries  []Entry
		want     string
	}{
		{
			name:     "empty file gets the block only",
			existing: "",
			entries:  []Entry{entry("10.0.1.5", "master-db.example.internal", "master-db")},
			want:     block("\n", "10.0.1.5  master-db.example.internal  master-db"),
		},
		{
			name:     "sorted by first name and aligned",
			existing: "",
			entries: []Entry{
				entry("10.0.2.7", "mail.example.internal", "mail"),
				entry("2001:db8::10", "cache.example.internal"),
				entry("10.0.1.5", "Master-db.example.internal", "master-db"),
			},
			want: block("\n",
				"2001:db8::10  cache.example.internal",
				"10.0.2.7      mail.example.internal       mail",
				"10.0.1.5      Master-db.example.internal  master-db",
			),
		},
		{
			name:     "same name for the same address is written once",
			existing: "",
			entries: []Entry{
				entry("10.0.1.5", "mail", "mail"),
				entry("10.0.1.5", "MAIL", "smtp"),
				entry("10.0.1.5", "mail"),
			},
			want: block("\n", "10.0.1.5  mail", "10.0.1.5  smtp"),
		},
		{
			name:     "blank line kept, none added, when the file ends with one",
			existing: "127.0.0.1 localhost\n\n",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     "127.0.0.1 localhost\n\n" + block("\n", "10.0.1.5  db"),
		},
		{
			name:     "CRLF file cut after its CR",
			existing: "127.0.0.1 localhost\r",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     "127.0.0.1 localhost\r\n\r\n" + block("\r\n", "10.0.1.5  db"),
		},
		{
			name:     "markers with surrounding white space are markers",
			existing: "a\n  # BEGIN eipclaim \t\nold\n\t# END eipclaim\nb\n",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     "a\n" + block("\n", "10.0.1.5  db") + "b\n",
		},
		{
			name:     "lookalike markers are ordinary lines",
			existing: "# BEGIN eipclaim-old\n# begin eipclaim\n#END eipclaim\n",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     "# BEGIN eipclaim-old\n# begin eipclaim\n#END eipclaim\n\n" + block("\n", "10.0.1.5  db"),
		},
		{
			name:     "empty block is filled",
			existing: "# BEGIN eipclaim\n# END eipclaim\n",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     block("\n", "10.0.1.5  db"),
		},
		{
			name:     "block in the middle, unterminated last line kept",
			existing: "x\n# BEGIN eipclaim\n# END eipclaim\ny",
			entries:  []Entry{entry("10.0.1.5", "db")},
			want:     "x\n" + block("\n", "10.0.1.5  db") + "y",
		},
		{
			name:     "longest name and label accepted",
			existing: "",
			entries:  []Entry{entry("10.0.1.5", longName(253))},
			want:     block("\n", "10.0.1.5  "+longName(253)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render([]byte(tc.existing), tc.entries)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Render(%q) =\n%q\nwant\n%q", tc.existing, got, tc.want)
			}
		})
	}
}

// longName returns a valid host name of n characters made of 63-character labels.
func longName(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Repeat("a", min(63, n-b.Len())))
	}
	return b.String()
}

func TestRenderOrderDoesNotMatter(t *testing.T) {
	reversed := []Entry{testEntries[2], testEntries[1], testEntries[0]}
	a, errA := Render(nil, testEntries)
	b, errB := Render(nil, reversed)
	if errA != nil || errB != nil {
		t.Fatalf("Render: %v, %v", errA, errB)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("Render of reversed entries =\n%s\nwant\n%s", b, a)
	}
}

func TestRenderErrors(t *testing.T) {
	db := []Entry{entry("10.0.1.5", "db")}
	tests := []struct {
		name     string
		existing string
		entries  []Entry
		want     []string // substrings of the error text
	}{
		{name: "nil entries", entries: nil, want: []string{"no entries", "empty block"}},
		{name: "empty entries", entries: []Entry{}, want: []string{"no entries"}},
		{name: "zero IP", entries: []Entry{{Names: []string{"db"}}}, want: []string{"entry 0", "invalid IP"}},
		{name: "IP with zone", entries: []Entry{entry("fe80::1%eth0", "db")}, want: []string{"entry 0", "fe80::1%eth0", "zone"}},
		{name: "unspecified IPv4", entries: []Entry{entry("0.0.0.0", "db")}, want: []string{"0.0.0.0", "unspecified"}},
		{name: "unspecified IPv6", entries: []Entry{entry("::", "db")}, want: []string{"unspecified"}},
		{name: "nil names", entries: []Entry{entry("10.0.1.5")}, want: []string{"entry 0 (10.0.1.5)", "no names"}},
		{name: "empty name", entries: []Entry{entry("10.0.1.5", "")}, want: []string{"empty name"}},
		{name: "space", entries: []Entry{entry("10.0.1.5", "master db")}, want: []string{`"master db"`, "white space"}},
		{name: "tab", entries: []Entry{entry("10.0.1.5", "db\tx")}, want: []string{"white space"}},
		{name: "newline", entries: []Entry{entry("10.0.1.5", "db\n10.6.6.6 evil")}, want: []string{"white space"}},
		{name: "hash", entries: []Entry{entry("10.0.1.5", "db#1")}, want: []string{`"db#1"`, "'#'", "comment"}},
		{name: "underscore", entries: []Entry{entry("10.0.1.5", "master_db")}, want: []string{`"master_db"`, "'_'"}},
		{name: "non-ASCII", entries: []Entry{entry("10.0.1.5", "dé")}, want: []string{`'é'`, "not allowed"}},
		{name: "NUL in name", entries: []Entry{entry("10.0.1.5", "d\x00b")}, want: []string{"not allowed"}},
		{name: "longer than 253", entries: []Entry{entry("10.0.1.5", longName(254))}, want: []string{"254 characters", "253"}},
		{name: "label longer than 63", entries: []Entry{entry("10.0.1.5", strings.Repeat("a", 64)+".example")}, want: []string{"64 characters", "63"}},
		{name: "empty label", entries: []Entry{entry("10.0.1.5", "db..example")}, want: []string{"empty label"}},
		{name: "leading dot", entries: []Entry{entry("10.0.1.5", ".db")}, want: []string{"empty label"}},
		{name: "trailing dot", entries: []Entry{entry("10.0.1.5", "db.example.internal.")}, want: []string{"trailing dot"}},
		{name: "label starts with hyphen", entries: []Entry{entry("10.0.1.5", "-db.example")}, want: []string{`"-db"`, "'-'"}},
		{name: "label ends with hyphen", entries: []Entry{entry("10.0.1.5", "db-.example")}, want: []string{`"db-"`, "'-'"}},
		{name: "looks like an IPv4 address", entries: []Entry{entry("10.0.1.5", "10.0.1.6")}, want: []string{"all digits", "IP address"}},
		{name: "all-digit name", entries: []Entry{entry("10.0.1.5", "123")}, want: []string{"all digits"}},
		{
			name:    "same name, two addresses",
			entries: []Entry{entry("10.0.1.5", "db.example", "db"), entry("10.0.1.6", "replica", "DB")},
			want:    []string{`"DB"`, "10.0.1.5 (entry 0)", "entry 1 (10.0.1.6)"},
		},
		{
			name:    "every bad entry reported",
			entries: []Entry{entry("10.0.1.5", "a b"), {Names: []string{"x"}}, entry("10.0.1.7")},
			want:    []string{"entry 0", "white space", "entry 1", "invalid IP", "entry 2", "no names"},
		},
		{
			name:     "BEGIN without END",
			existing: "127.0.0.1 localhost\n# BEGIN eipclaim\n10.0.0.1 db\n",
			entries:  db,
			want:     []string{"line 2", beginMarker, "without", endMarker, "fix the file by hand"},
		},
		{
			name:     "END without BEGIN",
			existing: "127.0.0.1 localhost\n\n# END eipclaim\n",
			entries:  db,
			want:     []string{"line 3", endMarker, "without", "fix the file by hand"},
		},
		{
			name:     "END before BEGIN",
			existing: "# END eipclaim\n# BEGIN eipclaim\n",
			entries:  db,
			want:     []string{"line 1", endMarker, "without", "fix the file by hand"},
		},
		{
			name:     "two blocks",
			existing: "# BEGIN eipclaim\n# END eipclaim\nx\n# BEGIN eipclaim\n# END eipclaim\n",
			entries:  db,
			want:     []string{"line 4", "second", "lines 1-2", "keep one block", "fix the file by hand"},
		},
		{
			name:     "two BEGIN markers",
			existing: "# BEGIN eipclaim\nx\n# BEGIN eipclaim\n# END eipclaim\n",
			entries:  db,
			want:     []string{"line 3", "opened at line 1", "fix the file by hand"},
		},
		{
			name:     "two END markers",
			existing: "# BEGIN eipclaim\n# END eipclaim\n# END eipclaim\n",
			entries:  db,
			want:     []string{"line 3", "second", endMarker, "fix the file by hand"},
		},
		{
			name:     "CRLF file, BEGIN without END",
			existing: "127.0.0.1 localhost\r\n\r\n# BEGIN eipclaim\r\n",
			entries:  db,
			want:     []string{"line 3", "without"},
		},
		{
			name:     "UTF-16 file",
			existing: "\xff\xfe#\x00 \x00c\x00\n\x00",
			entries:  db,
			want:     []string{"line 1", "NUL", "UTF-16"},
		},
		{
			name:     "entries are checked before the file",
			existing: "# END eipclaim\n",
			entries:  nil,
			want:     []string{"no entries"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render([]byte(tc.existing), tc.entries)
			if err == nil {
				t.Fatalf("Render = %q, nil; want an error containing %q", got, tc.want)
			}
			if got != nil {
				t.Errorf("Render returned %q with its error; want no output", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// blockLines returns the offsets delimiting the well-formed managed block of
// b (begin line start, end line end), independently of findBlock. ok is
// false when b's markers are not well formed (or b has a NUL byte); found is
// false when b has no marker.
func blockLines(b []byte) (start, end int, found, ok bool) {
	if bytes.IndexByte(b, 0) >= 0 {
		return 0, 0, false, false
	}
	var begins, ends []int // indexes into lines
	lines := bytes.SplitAfter(b, []byte("\n"))
	offsets := make([]int, len(lines)+1)
	for i, l := range lines {
		offsets[i+1] = offsets[i] + len(l)
		switch string(bytes.TrimSpace(l)) {
		case beginMarker:
			begins = append(begins, i)
		case endMarker:
			ends = append(ends, i)
		}
	}
	switch {
	case len(begins) == 0 && len(ends) == 0:
		return 0, 0, false, true
	case len(begins) == 1 && len(ends) == 1 && begins[0] < ends[0]:
		return offsets[begins[0]], offsets[ends[0]+1], true, true
	}
	return 0, 0, false, false
}

// checkOutsideKept fails t unless out keeps, byte for byte, everything of
// existing outside the managed block: the part before it and after it, or
// the whole of existing as a prefix when it had no block.
func checkOutsideKept(t testing.TB, existing, out []byte) {
	t.Helper()
	start, end, found, ok := blockLines(existing)
	if !ok {
		t.Fatalf("Render accepted %q, whose markers are not well formed", existing)
	}
	if !found {
		if !bytes.HasPrefix(out, existing) {
			t.Errorf("Render(%q) = %q: does not start with the existing file", existing, out)
		}
		return
	}
	if !bytes.HasPrefix(out, existing[:start]) {
		t.Errorf("Render(%q) = %q: lost the lines before the block, %q", existing, out, existing[:start])
	}
	if !bytes.HasSuffix(out, existing[end:]) {
		t.Errorf("Render(%q) = %q: lost the lines after the block, %q", existing, out, existing[end:])
	}
}

func FuzzRender(f *testing.F) {
	for _, name := range []string{"debian", "existing-block", "windows-crlf", "no-final-newline", "empty", "block-at-eof-crlf"} {
		f.Add(readTestdata(f, name+".hosts"))
	}
	for _, s := range []string{
		"x\r", "\r\n", "\n\n", " # BEGIN eipclaim\n# END eipclaim ", "# BEGIN eipclaim\r\n# END eipclaim\n",
		"# END eipclaim\n", "# BEGIN eipclaim\n", "a\x00b\n", "\xff\xfe\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, existing []byte) {
		out, err := Render(existing, testEntries)
		_, _, _, wellFormed := blockLines(existing)
		if err != nil {
			if out != nil {
				t.Fatalf("Render returned %q with error %v", out, err)
			}
			if wellFormed {
				t.Fatalf("Render(%q): %v; want success, the markers are well formed", existing, err)
			}
			return
		}
		checkOutsideKept(t, existing, out)
		again, err := Render(out, testEntries)
		if err != nil {
			t.Fatalf("Render(own output %q): %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("Render not idempotent on %q:\nfirst  %q\nsecond %q", existing, out, again)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	var existing bytes.Buffer
	for i := range 1000 {
		switch i {
		case 500:
			existing.WriteString(beginMarker + "\n10.9.9.9 old.example.internal old\n" + endMarker + "\n")
		default:
			fmt.Fprintf(&existing, "10.%d.%d.%d\thost-%d.example.internal host-%d\n", i/65536, i/256%256, i%256, i, i)
		}
	}
	entries := make([]Entry, 50)
	for i := range entries {
		entries[i] = entry(fmt.Sprintf("10.0.1.%d", 50-i), fmt.Sprintf("role-%02d.example.internal", 50-i), fmt.Sprintf("role-%02d", 50-i))
	}
	b.ReportAllocs()
	b.SetBytes(int64(existing.Len()))
	for b.Loop() {
		if _, err := Render(existing.Bytes(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// writeHosts creates dir/hosts with content and mode, and returns its path.
func writeHosts(t *testing.T, dir, content string, mode fs.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "hosts")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return path
}

// fileState is what a test checks a Write left alone.
type fileState struct {
	content string
	mode    fs.FileMode
	modTime time.Time
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{string(b), info.Mode(), info.ModTime()}
}

// ageFile sets path's modification time an hour back, so that a rewrite
// shows even on file systems with coarse timestamps.
func ageFile(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// checkNoTemp fails t if Write left a temporary file in dir.
func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestWriteKeepsModeAndContent(t *testing.T) {
	modes := []fs.FileMode{0o644, 0o640, 0o600, 0o444}
	if runtime.GOOS == "windows" {
		modes = []fs.FileMode{0o666, 0o444} // Windows only has the read-only bit
	}
	debian := string(readTestdata(t, "debian.hosts"))
	want := string(readTestdata(t, "debian.golden"))
	for _, mode := range modes {
		t.Run(fmt.Sprintf("%#o", mode), func(t *testing.T) {
			if runtime.GOOS == "windows" && mode == 0o444 {
				t.Skip("Windows refuses to rename over a read-only file")
			}
			dir := t.TempDir()
			path := writeHosts(t, dir, debian, mode)
			changed, err := Write(path, testEntries)
			if err != nil || !changed {
				t.Fatalf("Write = %v, %v; want true, nil", changed, err)
			}
			got := stateOf(t, path)
			if got.content != want {
				t.Errorf("content =\n%s\nwant\n%s", got.content, want)
			}
			if got.mode != mode {
				t.Errorf("mode = %v, want %v", got.mode, mode)
			}
			checkNoTemp(t, dir)
		})
	}
}

func TestWriteUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)
	if changed, err := Write(path, testEntries); err != nil || !changed {
		t.Fatalf("first Write = %v, %v; want true, nil", changed, err)
	}
	ageFile(t, path)
	before := stateOf(t, path)
	reordered := []Entry{testEntries[2], testEntries[0], testEntries[1]}
	changed, err := Write(path, reordered)
	if err != nil || changed {
		t.Fatalf("second Write = %v, %v; want false, nil", changed, err)
	}
	if after := stateOf(t, path); after != before {
		t.Errorf("file after an identical Write = %+v, want %+v", after, before)
	}
	checkNoTemp(t, dir)
}

func TestWriteCreatesMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	changed, err := Write(path, testEntries)
	if err != nil || !changed {
		t.Fatalf("Write = %v, %v; want true, nil", changed, err)
	}
	got := stateOf(t, path)
	if want := string(readTestdata(t, "empty.golden")); got.content != want {
		t.Errorf("content =\n%s\nwant\n%s", got.content, want)
	}
	wantMode := fs.FileMode(0o644)
	if runtime.GOOS == "windows" {
		wantMode = 0o666
	}
	if got.mode != wantMode {
		t.Errorf("mode = %v, want %v", got.mode, wantMode)
	}
	checkNoTemp(t, dir)
}

func TestWriteRenderErrorLeavesOriginal(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		entries  []Entry
		want     string
	}{
		{name: "empty entries", existing: "127.0.0.1 localhost\n", entries: nil, want: "no entries"},
		{name: "invalid name", existing: "127.0.0.1 localhost\n", entries: []Entry{entry("10.0.1.5", "a b")}, want: "white space"},
		{
			name:     "two BEGIN markers",
			existing: "127.0.0.1 localhost\n# BEGIN eipclaim\n# BEGIN eipclaim\n# END eipclaim\n",
			entries:  testEntries,
			want:     "line 3",
		},
		{name: "BEGIN without END", existing: "# BEGIN eipclaim\n10.0.0.1 db\n", entries: testEntries, want: "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeHosts(t, dir, tc.existing, 0o640)
			ageFile(t, path)
			before := stateOf(t, path)
			changed, err := Write(path, tc.entries)
			if err == nil || changed {
				t.Fatalf("Write = %v, %v; want false and an error", changed, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %q and %s", err, tc.want, path)
			}
			if after := stateOf(t, path); after != before {
				t.Errorf("file after a failed Write = %+v, want untouched %+v", after, before)
			}
			checkNoTemp(t, dir)
		})
	}
}

func TestWriteUnwritableDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("directory permission bits do not stop writes on Windows")
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root: root writes in a 0555 directory anyway, so this failure cannot be produced; run the tests as a normal user to cover it")
	}
	dir := t.TempDir()
	path := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)
	before := stateOf(t, path)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	changed, err := Write(path, testEntries)
	if err == nil || changed {
		t.Fatalf("Write = %v, %v; want false and an error", changed, err)
	}
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "temporary file") {
		t.Errorf("error %q: want a permission error creating the temporary file", err)
	}
	if after := stateOf(t, path); after != before {
		t.Errorf("file after a failed Write = %+v, want untouched %+v", after, before)
	}
	checkNoTemp(t, dir)
}

func TestWriteChangedMeanwhile(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(t *testing.T, path string) // run between the read and the rename
		state string                          // what the file must hold afterwards, "" for no file
	}{
		{
			name: "edited",
			edit: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("10.1.1.1 edited\n"), 0o644); err != nil {
					t.Error(err)
				}
			},
			state: "10.1.1.1 edited\n",
		},
		{
			name: "removed",
			edit: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Error(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)
			changed, err := write(path, testEntries, func() { tc.edit(t, path) })
			if err == nil || changed {
				t.Fatalf("Write = %v, %v; want false and an error", changed, err)
			}
			if !strings.Contains(err.Error(), "changed while") {
				t.Errorf("error %q does not say the file changed", err)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.state == "" && !errors.Is(rerr, fs.ErrNotExist):
				t.Errorf("file is %q, %v; want it still removed", got, rerr)
			case tc.state != "" && string(got) != tc.state:
				t.Errorf("file = %q, %v; want the edit kept, %q", got, rerr, tc.state)
			}
			checkNoTemp(t, dir)
		})
	}
}

func TestWriteBadPath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "directory", path: dir, want: "not a regular file"},
		{name: "missing directory", path: filepath.Join(dir, "missing", "hosts"), want: "temporary file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := Write(tc.path, testEntries)
			if err == nil || changed {
				t.Fatalf("Write = %v, %v; want false and an error", changed, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			checkNoTemp(t, dir)
		})
	}
}

func TestWriteFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("cannot create a symbolic link here: %v", err)
	}
	if changed, err := Write(link, testEntries); err != nil || !changed {
		t.Fatalf("Write = %v, %v; want true, nil", changed, err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("after Write, %s is %v, %v; want the symbolic link kept", link, info.Mode(), err)
	}
	got, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("master-db.example.internal")) {
		t.Errorf("link target = %q, want the block written through the link", got)
	}

	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	if changed, err := Write(dangling, testEntries); err == nil || changed || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Write(dangling link) = %v, %v; want false and an error about the link", changed, err)
	}
	checkNoTemp(t, dir)
}

func TestDefaultPath(t *testing.T) {
	got := DefaultPath()
	want := "/etc/hosts"
	if runtime.GOOS == "windows" {
		want = filepath.Join(os.Getenv("SystemRoot"), "System32", "drivers", "etc", "hosts")
	}
	if got != want {
		t.Errorf("DefaultPath() = %q, want %q", got, want)
	}
}
