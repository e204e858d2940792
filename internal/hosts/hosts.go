// Package hosts publishes where the roles live through a hosts file
// (/etc/hosts, or the Windows one): it renders a managed block of
// "IP name alias" lines between two marker lines and writes it atomically,
// keeping every other line of the file as it was.
package hosts

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/localfile"
)

// Entry is one line of the managed block: an address and the names that
// resolve to it, first the DNS names, then the role name as an alias:
//
//	10.0.1.5  master-db.example.internal  master-db
type Entry struct {
	IP    netip.Addr
	Names []string // host names (dnsname.CheckHostName)
	// Role is the role the entry is for, "" for none. It is written after
	// Names, must be a role name (config.CheckRoleName, the rule validation
	// applies, so that a roles table that validates can be written), and
	// errors about the entry name it rather than the entry's index.
	Role string
}

// label names entry i in messages: by its role when it has one.
func (e Entry) label(i int) string {
	switch {
	case e.Role == "":
		return fmt.Sprintf("entry %d", i)
	case config.ValidRoleName(e.Role):
		return "role " + e.Role
	}
	return fmt.Sprintf("role %q", e.Role)
}

// The lines that delimit the managed block, and the notice written under the
// first one. The notice carries no timestamp: the block must render the same
// bytes for the same entries, or every timer tick would rewrite the file.
const (
	beginMarker = "# BEGIN eipclaim"
	endMarker   = "# END eipclaim"
	notice      = "# Managed by eipclaim (eipclaim hosts): edits inside this block are overwritten on every run."
)

// tempPattern names the temporary file Write creates beside the hosts file.
const tempPattern = ".hosts-eipclaim-*"

// Render returns existing with its managed block ("# BEGIN eipclaim" ...
// "# END eipclaim") replaced by one built from entries, or with the block
// appended at the end if there is none (after a blank line, and after a line
// ending if the last line had none). A marker is a line that reads exactly
// like one, apart from surrounding white space.
//
// Every byte outside the block is kept as it was: localhost entries,
// comments, blank lines, line endings. The block uses the line ending of the
// file's first line (CRLF on a CRLF file), LF for a file without any. Its
// lines are sorted by first name and aligned in columns; a name given twice
// for the same address is written once.
//
// Render returns an error, and no output, when entries is empty; when an
// entry has an IP that is not a host's (config.CheckHostAddress: invalid,
// zoned, unspecified, multicast, broadcast), or no names; when a name is
// not a valid host name (dnsname.CheckHostName: RFC 952/1123 labels of
// letters, digits and '-', at most 63 characters each, at most 253 in all,
// no trailing dot, not all digits in the last label) or a role is not a
// valid role name (config.CheckRoleName); when the same name is given for
// two addresses (names are compared regardless of case);
// and when existing has a BEGIN without an END, an END without a BEGIN, more
// than one block, or a NUL byte. Problems in entries are all reported at
// once; a problem in existing names its line and says to fix it by hand.
func Render(existing []byte, entries []Entry) ([]byte, error) {
	rows, err := buildRows(entries)
	if err != nil {
		return nil, err
	}
	start, end, found, err := findBlock(existing)
	if err != nil {
		return nil, err
	}
	eol := lineEnding(existing)

	var out bytes.Buffer
	out.Grow(len(existing) + blockSize(rows, eol))
	if found {
		out.Write(existing[:start])
		writeBlock(&out, rows, eol)
		out.Write(existing[end:])
		return out.Bytes(), nil
	}
	out.Write(existing)
	if len(existing) > 0 {
		last := existing[bytes.LastIndexByte(existing[:len(existing)-1], '\n')+1:]
		if existing[len(existing)-1] != '\n' {
			if eol == "\r\n" && existing[len(existing)-1] == '\r' {
				out.WriteByte('\n') // complete the CRLF the file was cut in
			} else {
				out.WriteString(eol)
			}
		}
		if len(bytes.TrimSpace(last)) > 0 {
			out.WriteString(eol) // a blank line between the user's lines and ours
		}
	}
	writeBlock(&out, rows, eol)
	return out.Bytes(), nil
}

// Usable returns the entries Render can write, in their order, and one
// error for each entry it leaves out, naming it: an entry with a problem
// of its own (see Render), and every entry that gives a name another
// entry gives for another address (which address is right is unknown).
// It is for a source that gathers entries written by many (the role
// table): one bad entry must not stop the others from being written.
func Usable(entries []Entry) (usable []Entry, skipped []error) {
	bad := make([]bool, len(entries))
	for i, e := range entries {
		if _, err := buildRows([]Entry{e}); err != nil {
			bad[i] = true
			skipped = append(skipped, err)
		}
	}
	type owner struct {
		ip netip.Addr
		i  int
	}
	owners := map[string][]owner{}
	for i, e := range entries {
		if bad[i] {
			continue
		}
		for _, n := range append(slices.Clip(e.Names), e.Role) {
			if n != "" {
				key := strings.ToLower(n)
				owners[key] = append(owners[key], owner{e.IP, i})
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(owners)) {
		all := owners[key]
		for _, o := range all {
			if bad[o.i] {
				continue
			}
			for _, p := range all {
				if p.ip != o.ip {
					bad[o.i] = true
					skipped = append(skipped, fmt.Errorf("%s (%s): name %q is also given for %s (%s): one name, one address",
						entries[o.i].label(o.i), o.ip, key, p.ip, entries[p.i].label(p.i)))
					break
				}
			}
		}
	}
	for i, e := range entries {
		if !bad[i] {
			usable = append(usable, e)
		}
	}
	return usable, skipped
}

// addrText writes a in messages: quoted when it has a zone, which may hold
// any character.
func addrText(a netip.Addr) string {
	if a.Zone() != "" {
		return strconv.Quote(a.String())
	}
	return a.String()
}

// findBlock locates the managed block in b: the offset of the first byte of
// its BEGIN line and the offset just past its END line (line ending
// included). found is false, with no error, when b has no marker at all.
func findBlock(b []byte) (start, end int, found bool, err error) {
	const fix = "fix the file by hand: eipclaim will not guess which lines are its own"
	beginLine, endLine := 0, 0 // 1-based line numbers, 0 when not seen
	for off, n := 0, 1; off < len(b); n++ {
		next := len(b)
		if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		line := b[off:next]
		if bytes.IndexByte(line, 0) >= 0 {
			return 0, 0, false, fmt.Errorf("line %d: NUL byte: not a text hosts file (UTF-16?); save it as UTF-8 (or ANSI) text", n)
		}
		switch string(bytes.TrimSpace(line)) {
		case beginMarker:
			switch {
			case endLine > 0:
				return 0, 0, false, fmt.Errorf("line %d: second %q, but the file already has a block at lines %d-%d; %s (keep one block)", n, beginMarker, beginLine, endLine, fix)
			case beginLine > 0:
				return 0, 0, false, fmt.Errorf("line %d: %q inside the block opened at line %d, which has no %q before it; %s", n, beginMarker, beginLine, endMarker, fix)
			}
			beginLine, start = n, off
		case endMarker:
			switch {
			case beginLine == 0:
				return 0, 0, false, fmt.Errorf("line %d: %q without a %q before it; %s (remove the stray line or add the missing one)", n, endMarker, beginMarker, fix)
			case endLine > 0:
				return 0, 0, false, fmt.Errorf("line %d: second %q, but the block at lines %d-%d is already closed; %s (keep one block)", n, endMarker, beginLine, endLine, fix)
			}
			endLine, end = n, next
		}
		off = next
	}
	if beginLine > 0 && endLine == 0 {
		return 0, 0, false, fmt.Errorf("line %d: %q without a %q after it; %s (add the missing line or remove this one)", beginLine, beginMarker, endMarker, fix)
	}
	return start, end, beginLine > 0, nil
}

// lineEnding returns the line ending of b's first line: "\r\n" or "\n". A
// file without any line feed gets "\n", unless it ends in a lone "\r": that
// is a CRLF file cut short.
func lineEnding(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		if i > 0 && b[i-1] == '\r' {
			return "\r\n"
		}
		return "\n"
	}
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// row is one validated line of the block: the address, then the names.
type row []string

// buildRows validates entries and returns the block's lines, sorted by first
// name, with each name once.
func buildRows(entries []Entry) ([]row, error) {
	if len(entries) == 0 {
		return nil, errors.New("no entries: refusing to write an empty block (was the roles table read completely?)")
	}
	type owner struct {
		ip    netip.Addr
		label string
	}
	var (
		errs []error
		rows = make([]row, 0, len(entries))
		seen = make(map[string]owner, 2*len(entries)) // lower-case name -> where it was first given
	)
	for i, e := range entries {
		who := e.label(i)
		switch {
		case !e.IP.IsValid() && e.Role == "":
			errs = append(errs, fmt.Errorf("%s %q: invalid IP address", who, e.Names))
			continue
		case !e.IP.IsValid():
			errs = append(errs, fmt.Errorf("%s: invalid IP address", who))
			continue
		case config.CheckHostAddress(e.IP) != nil:
			errs = append(errs, fmt.Errorf("%s: IP %s %w", who, addrText(e.IP), config.CheckHostAddress(e.IP)))
			continue
		case len(e.Names) == 0 && e.Role == "":
			errs = append(errs, fmt.Errorf("%s (%s): no names", who, e.IP))
			continue
		}
		r := make(row, 1, 2+len(e.Names))
		r[0] = e.IP.String()
		names := e.Names
		if e.Role != "" {
			if err := config.CheckRoleName(e.Role); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): not a valid role name: %w", who, e.IP, err))
			} else {
				names = append(names[:len(names):len(names)], e.Role)
			}
		}
		for _, name := range names {
			if err := dnsname.CheckHostName(name); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): name %q: %w", who, e.IP, name, err))
				continue
			}
			key := strings.ToLower(name)
			if o, ok := seen[key]; ok {
				if o.ip != e.IP {
					errs = append(errs, fmt.Errorf("%s (%s): name %q is also given for %s (%s): one name, one address", who, e.IP, name, o.ip, o.label))
				}
				continue // the same name for the same address: written once
			}
			seen[key] = owner{e.IP, who}
			r = append(r, name)
		}
		if len(r) > 1 {
			rows = append(rows, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Names are unique across rows, so the first name orders them totally.
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Compare(strings.ToLower(a[1]), strings.ToLower(b[1]))
	})
	return rows, nil
}

// gap is the space between the block's columns.
const gap = 2

// columnWidths returns the width of each column of rows.
func columnWidths(rows []row) []int {
	var w []int
	for _, r := range rows {
		for c, cell := range r {
			if c == len(w) {
				w = append(w, 0)
			}
			w[c] = max(w[c], len(cell))
		}
	}
	return w
}

// blockSize returns an upper bound of the size of the block writeBlock writes.
func blockSize(rows []row, eol string) int {
	w := columnWidths(rows)
	line := 0
	for _, n := range w {
		line += n + gap
	}
	return len(beginMarker) + len(notice) + len(endMarker) + len(rows)*(line+len(eol)) + 3*len(eol)
}

// writeBlock writes the managed block: markers, notice and one aligned line
// per row, each ended with eol.
func writeBlock(out *bytes.Buffer, rows []row, eol string) {
	w := columnWidths(rows)
	out.WriteString(beginMarker)
	out.WriteString(eol)
	out.WriteString(notice)
	out.WriteString(eol)
	for _, r := range rows {
		for c, cell := range r {
			out.WriteString(cell)
			if c < len(r)-1 {
				for range w[c] - len(cell) + gap {
					out.WriteByte(' ')
				}
			}
		}
		out.WriteString(eol)
	}
	out.WriteString(endMarker)
	out.WriteString(eol)
}

// Write renders entries into the hosts file at path (see Render) and, when
// that changes the file, replaces it atomically: readers see the old file or
// the new one, never a partial one. It returns changed=false, and touches
// nothing, when the file already has the right content, so that running it
// on every timer tick causes no churn.
//
// The new content goes to a temporary file in the same directory
// (".hosts-eipclaim-*"), which gets the original's permission bits (0644 for
// a file that does not exist yet) and, on Unix, its owner and group; it is
// fsynced, then renamed over the file, then the directory is fsynced (on
// Unix; on Windows there is no owner to copy and no directory fsync, and the
// new file gets the ACLs its directory passes on). A symbolic
// link at path is followed: the file it points to is replaced and the link
// kept. Just before the rename, the file is read again: if someone changed
// it since Write read it, Write gives up rather than lose their edit, and
// the next run starts over.
//
// On Unix, a non-root caller cannot give a file to another user: when the
// original belongs to someone else, chown fails with EPERM and Write goes on,
// so the new file belongs to the caller, with the original's mode. The
// caller could rewrite the file anyway, since it can write to the directory.
// For root, any chown failure is an error.
//
// A path that holds something other than a regular file (a named pipe, a
// device, a directory) is refused before it is opened, with a
// *NotRegularError. A file that is a mount point (bind-mounted, as container
// runtimes mount /etc/hosts) cannot be renamed over: the error is
// ErrMountPoint, and the file is left as it was, never rewritten in place.
//
// On any error before the rename, the temporary file is removed and the
// original is untouched. If only the final directory fsync fails, the file
// has been replaced: changed is true and err says so.
func Write(path string, entries []Entry) (changed bool, err error) {
	return write(path, entries, nil)
}

// write is Write with a hook run just before the rename, for tests.
func write(path string, entries []Entry, beforeRename func()) (changed bool, err error) {
	target, err := resolve(path)
	if err != nil {
		return false, err
	}
	// Refuse a named pipe, a device or a directory before opening it: a
	// named pipe would block the open until some writer came.
	if err := CheckRegular(target); err != nil {
		return false, err
	}
	existing, info, err := readFile(target)
	if err != nil {
		return false, err
	}
	out, err := Render(existing, entries)
	if err != nil {
		return false, fmt.Errorf("%s: %w", target, err)
	}
	if info != nil && bytes.Equal(out, existing) {
		return false, nil
	}
	if err := replace(target, out, existing, info, beforeRename); err != nil {
		return errors.Is(err, errSyncDir), err
	}
	return true, nil
}

// resolve follows the symbolic links at path, so that Write replaces the
// file a link points to and keeps the link. A path that does not exist is
// returned as is: Write creates the file.
func resolve(path string) (string, error) {
	target, err := filepath.EvalSymlinks(path)
	if err == nil {
		return target, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	if _, lerr := os.Lstat(path); lerr == nil {
		return "", fmt.Errorf("%s is a symbolic link to a file that does not exist: %w", path, err)
	}
	return path, nil
}

// readFile returns the content and file info of the regular file at path,
// or nil and nil if it does not exist. It opens path without blocking (on
// Unix), so that a named pipe put there since CheckRegular is refused too.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, info, err := localfile.Open(path)
	var nr *NotRegularError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, nil
	case errors.As(err, &nr):
		return nil, nil, err
	case err != nil:
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, info, nil
}

// errSyncDir marks a failure after the rename: the file was replaced.
var errSyncDir = errors.New("replaced, but the directory could not be synced to disk")

// replace atomically replaces path with data. original and info are what
// path held when it was read (info is nil if it did not exist).
func replace(path string, data, original []byte, info fs.FileInfo, beforeRename func()) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	tmp, renamed := f.Name(), false
	defer func() {
		if !renamed {
			f.Close() // a second Close after a successful one only returns ErrClosed
			os.Remove(tmp)
		}
	}()

	mode := fs.FileMode(0o644)
	if info != nil {
		mode = info.Mode().Perm()
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s to %#o: %w", tmp, mode, err)
	}
	if err := chown(f, info); err != nil {
		return err
	}
	// Sync after chmod and chown, so that the mode and owner are on disk too.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if beforeRename != nil {
		beforeRename()
	}
	if err := checkUnchanged(path, original, info != nil); err != nil {
		return err
	}
	if err := rename(tmp, path); err != nil {
		if isMountPoint(err) {
			return fmt.Errorf("%s %w, so it was left as it was; run eipclaim hosts where the file is not a mount point "+
				"(on the host, not in the container), give a container its entries through its runtime "+
				"(docker run --add-host), or use --out on a regular file: %w", path, ErrMountPoint, err)
		}
		return fmt.Errorf("replace %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%s: %w: %w", path, errSyncDir, err)
	}
	return nil
}

// checkUnchanged returns an error if path no longer holds original (or, if
// existed is false, if it has appeared since).
func checkUnchanged(path string, original []byte, existed bool) error {
	now, info, err := readFile(path)
	switch {
	case err != nil:
		return fmt.Errorf("read %s again: %w", path, err)
	case info == nil && !existed:
		return nil
	case info != nil && existed && bytes.Equal(now, original):
		return nil
	}
	return fmt.Errorf("%s changed while eipclaim was writing it: left as it is now, the next run will start over", path)
}
