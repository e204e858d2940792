// Package table is the role table, the seed's central repository: one JSON
// document, kept in an S3 object, holding every role's current entry (its
// addresses, its holder, its epoch). Holders write their role's entry after
// each claim (internal/publish's table publisher), `eipclaim register`
// writes the entries of services outside the cloud, and `eipclaim hosts
// --from` builds hosts files from it alone.
//
// The document (version 1):
//
//	{
//	  "version": 1,
//	  "roles": {
//	    "master-db": {
//	      "name": "master-db",
//	      "private_ip": "10.0.1.5",
//	      "public_ip": "203.0.113.10",
//	      "public_dns_name": "ec2-203-0-113-10.compute-1.amazonaws.com",
//	      "names": ["master-db.example.internal"],
//	      "holder": "i-0123456789abcdef0",
//	      "epoch": 7,
//	      "updated_at": "2025-01-02T03:04:05Z"
//	    }
//	  }
//	}
//
// Writes are compare-and-swap on the object's ETag (Update), so writers of
// different roles never lose each other's entries, and an entry never
// replaces one with a newer epoch (Set).
package table

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Version is the version of the document this eipclaim reads and writes.
const Version = 1

// MaxSize is the largest table read or written: far more than thousands of
// roles need, and a bound on what a corrupt object can make a client read.
const MaxSize = 1 << 20

// Entry is one role's entry: where its name points now.
type Entry struct {
	Name          string `json:"name"`
	PrivateIP     string `json:"private_ip,omitempty"`
	PublicIP      string `json:"public_ip,omitempty"`
	PublicDNSName string `json:"public_dns_name,omitempty"`
	// Names are the role's DNS names, as configured: hosts files list them
	// before the role name.
	Names []string `json:"names,omitempty"`
	// Holder is the instance that holds the role's EIP, or who registered
	// a service outside the cloud ("register@HOST").
	Holder string `json:"holder,omitempty"`
	// Epoch is the EIP's eipclaim:epoch when the entry was written: an
	// entry never replaces one with a greater epoch.
	Epoch     int64     `json:"epoch"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Document is the whole table.
type Document struct {
	Version int              `json:"version"`
	Roles   map[string]Entry `json:"roles"`
}

// New returns an empty table.
func New() *Document { return &Document{Version: Version, Roles: map[string]Entry{}} }

// sameBut reports whether a and b say the same thing, whatever their times.
func sameBut(a, b Entry) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return a.Name == b.Name && a.PrivateIP == b.PrivateIP && a.PublicIP == b.PublicIP &&
		a.PublicDNSName == b.PublicDNSName && slices.Equal(a.Names, b.Names) &&
		a.Holder == b.Holder && a.Epoch == b.Epoch
}

// StaleError is Set's refusal to replace an entry with a newer epoch.
type StaleError struct {
	Role         string
	Epoch, Newer int64
	Holder       string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("the table's entry for role %s has epoch %d (holder %s), newer than %d: left as it is", e.Role, e.Newer, e.Holder, e.Epoch)
}

// Set puts e in d unless d's entry for the role has a greater epoch (a
// *StaleError then). It reports whether d changed: not when the entry
// already says the same (its time aside). An entry whose epoch is not an
// epoch (epoch.Check) is refused; a stored one is replaced whatever its
// epoch says.
func (d *Document) Set(e Entry) (changed bool, err error) {
	if err := epoch.Check(e.Epoch); err != nil {
		return false, exitcode.With(exitcode.Failed, fmt.Errorf("role %s: epoch: %w: not written", e.Name, err))
	}
	old, ok := d.Roles[e.Name]
	if ok && epoch.Check(old.Epoch) == nil && old.Epoch > e.Epoch {
		return false, &StaleError{Role: e.Name, Epoch: e.Epoch, Newer: old.Epoch, Holder: old.Holder}
	}
	if ok && sameBut(old, e) {
		return false, nil
	}
	d.Roles[e.Name] = e
	return true, nil
}

// Remove takes the role's entry out; it reports whether there was one.
func (d *Document) Remove(role string) bool {
	if _, ok := d.Roles[role]; !ok {
		return false
	}
	delete(d.Roles, role)
	return true
}

// Marshal returns the document as it is stored: indented, roles sorted.
func (d *Document) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	if len(b) > MaxSize {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("the role table would be %d bytes, more than the %d a table may hold: remove entries (eipclaim register --remove)", len(b), MaxSize))
	}
	return b, nil
}

// Parse decodes and checks a stored table. origin names it in messages.
// Anything but a whole, valid version-1 document is refused with exit code
// 2 (exitcode.Usage) and a message saying what is wrong: empty, too large,
// not JSON or cut short, another version, unknown keys, an entry whose name
// is not its key or whose addresses are not addresses.
func Parse(data []byte, origin string) (*Document, error) {
	d, err := decode(data, origin)
	if err != nil {
		return nil, err
	}
	if problems := d.Invalid(); len(problems) > 0 {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("role table %s: %s", origin, strings.Join(problems, "; ")))
	}
	return d, nil
}

// decode is Parse but for the entries' checks: a writer keeps an entry
// that is not valid as it is (one bad entry must not stop the writers of
// every other role), and replaces its own.
func decode(data []byte, origin string) (*Document, error) {
	bad := func(format string, args ...any) error {
		return exitcode.With(exitcode.Usage, fmt.Errorf("role table %s: "+format, append([]any{origin}, args...)...))
	}
	switch {
	case len(data) > MaxSize:
		return nil, bad("larger than %d bytes: not a role table, or a corrupt one; rewrite it (eipclaim register) or point at the right object", MaxSize)
	case len(bytes.TrimSpace(data)) == 0:
		return nil, bad("empty: a role table is a JSON document {\"version\": 1, \"roles\": {...}}; delete the object so that the next write creates it")
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset >= int64(len(data)) || err != nil && strings.Contains(err.Error(), "unexpected end of JSON input") {
			return nil, bad("cut short (%d bytes, the JSON ends early): a truncated copy; rewrite it or fetch it again", len(data))
		}
		if errors.As(err, &se) {
			return nil, bad("not JSON at byte %d (%v): a corrupt table; rewrite it", se.Offset, se)
		}
		return nil, bad("not JSON: a corrupt table; rewrite it")
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, bad("want a JSON object with version and roles: %v", err)
	}
	switch {
	case head.Version == nil:
		return nil, bad("no version: not a role table (want {\"version\": 1, \"roles\": {...}})")
	case *head.Version != Version:
		return nil, bad("version %d: this eipclaim reads version %d; upgrade eipclaim on this machine, or rewrite the table", *head.Version, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	d := New()
	if err := dec.Decode(d); err != nil {
		return nil, bad("%v", err)
	}
	if d.Roles == nil {
		d.Roles = map[string]Entry{}
	}
	return d, nil
}

// Invalid says what is wrong with each entry that is not valid, in the
// order of the roles.
func (d *Document) Invalid() []string {
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(d.Roles)) {
		if err := d.Roles[key].check(key); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// check validates the entry stored under key.
func (e Entry) check(key string) error {
	if err := config.CheckRoleName(key); err != nil {
		return fmt.Errorf("role %q: %v", key, err)
	}
	if e.Name != key {
		return fmt.Errorf("role %s: the entry names %q", key, e.Name)
	}
	if e.PrivateIP == "" && e.PublicIP == "" {
		return fmt.Errorf("role %s: no private_ip nor public_ip", key)
	}
	for _, ip := range []struct{ k, v string }{{"private_ip", e.PrivateIP}, {"public_ip", e.PublicIP}} {
		if ip.v == "" {
			continue
		}
		if _, err := netip.ParseAddr(ip.v); err != nil {
			return fmt.Errorf("role %s: %s %q is not an IP address", key, ip.k, ip.v)
		}
	}
	for _, n := range append([]string{e.PublicDNSName}, e.Names...) {
		if n != "" && !config.IsDomainName(strings.TrimSuffix(n, ".")) {
			return fmt.Errorf("role %s: %q is not a DNS name", key, n)
		}
	}
	if err := epoch.Check(e.Epoch); err != nil {
		return fmt.Errorf("role %s: epoch: %w", key, err)
	}
	return nil
}

// Describe says in one line what an entry holds, for `eipclaim status`.
func (e Entry) Describe() string {
	var parts []string
	if e.PrivateIP != "" {
		parts = append(parts, "private "+e.PrivateIP)
	}
	if e.PublicIP != "" {
		parts = append(parts, "public "+e.PublicIP)
	}
	if e.Holder != "" {
		parts = append(parts, "holder "+e.Holder)
	}
	parts = append(parts, fmt.Sprintf("epoch %d", e.Epoch))
	if !e.UpdatedAt.IsZero() {
		parts = append(parts, "updated "+e.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}
