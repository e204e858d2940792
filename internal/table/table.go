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
	"slices"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
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
	// skipped holds the entries Parse could not take (see Skipped), as
	// stored: a write keeps them as they were, for their writer to repair.
	skipped map[string]skippedEntry
}

// skippedEntry is a stored entry that is not valid: the JSON of each time
// its key was given, and what is wrong.
type skippedEntry struct {
	raw []json.RawMessage
	err error
}

// New returns an empty table.
func New() *Document { return &Document{Version: Version, Roles: map[string]Entry{}} }

// Skipped returns what is wrong with each stored entry Parse left out of
// Roles, one error per role in the order of their names, each naming the
// role: readers warn and go on with the others (one bad entry must not
// stop every client from getting the rest), writers keep them as they are
// (Marshal) until their role's writer replaces them (Set) or eipclaim
// register --remove takes them out (Remove).
func (d *Document) Skipped() []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(d.skipped)) {
		errs = append(errs, d.skipped[k].err)
	}
	return errs
}

// Invalid returns what is wrong with the stored entry of role when Parse
// left it out (see Skipped), nil otherwise.
func (d *Document) Invalid(role string) error {
	if e, ok := d.skipped[role]; ok {
		return e.err
	}
	return nil
}

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
// epoch (epoch.Check) is refused with exit code 1; an entry that readers
// would refuse otherwise (Entry.check, the rule Parse applies), or one that
// gives a name another role of the table gives (its role name whatever the
// case, or one of its host names: a hosts file maps one name to one
// address), is refused with exit code 2, and d is left as it was. A stored
// entry that is not valid is replaced whatever its epoch says.
func (d *Document) Set(e Entry) (changed bool, err error) {
	if err := epoch.Check(e.Epoch); err != nil {
		return false, exitcode.With(exitcode.Failed, fmt.Errorf("role %s: epoch: %w: not written", e.Name, err))
	}
	if err := e.check(e.Name); err != nil {
		return false, exitcode.With(exitcode.Usage, fmt.Errorf("refusing to write the entry: %w", err))
	}
	if err := d.clash(e); err != nil {
		return false, exitcode.With(exitcode.Usage, err)
	}
	old, ok := d.Roles[e.Name]
	if ok && epoch.Check(old.Epoch) == nil && old.Epoch > e.Epoch {
		return false, &StaleError{Role: e.Name, Epoch: e.Epoch, Newer: old.Epoch, Holder: old.Holder}
	}
	if ok && sameBut(old, e) {
		return false, nil
	}
	delete(d.skipped, e.Name)
	d.Roles[e.Name] = e
	return true, nil
}

// clash returns why e cannot sit beside the other entries of d: another
// role (a skipped one too) with e's name in another case, or another role
// that gives one of e's names.
func (d *Document) clash(e Entry) error {
	for _, k := range slices.Sorted(maps.Keys(d.skipped)) {
		if k != e.Name && strings.EqualFold(k, e.Name) {
			return fmt.Errorf("role %s: the table has role %s, the same role name whatever its case (role names are host names): "+
				"write role %s, or take role %s out first (eipclaim register --remove --role %s)", e.Name, k, k, k, k)
		}
	}
	mine := append([]string{e.Name}, e.Names...)
	for _, k := range slices.Sorted(maps.Keys(d.Roles)) {
		if k == e.Name {
			continue
		}
		if strings.EqualFold(k, e.Name) {
			return fmt.Errorf("role %s: the table has role %s, the same role name whatever its case (role names are host names): "+
				"write role %s, or take role %s out first (eipclaim register --remove --role %s)", e.Name, k, k, k, k)
		}
		for _, theirs := range append([]string{k}, d.Roles[k].Names...) {
			for _, n := range mine {
				if strings.EqualFold(n, theirs) {
					return fmt.Errorf("role %s: name %s is role %s's in the table (a hosts file maps one name to one address): "+
						"give role %s another name, or take role %s out first (eipclaim register --remove --role %s)", e.Name, n, k, e.Name, k, k)
				}
			}
		}
	}
	return nil
}

// Remove takes the role's entry out, a skipped one too; it reports whether
// there was one.
func (d *Document) Remove(role string) bool {
	_, ok := d.Roles[role]
	_, bad := d.skipped[role]
	if !ok && !bad {
		return false
	}
	delete(d.Roles, role)
	delete(d.skipped, role)
	return true
}

// Marshal returns the document as it is stored: indented, roles sorted,
// the skipped entries (see Skipped) as they were read.
func (d *Document) Marshal() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"version":%d,"roles":{`, d.Version)
	keys := slices.Sorted(maps.Keys(d.Roles))
	for k := range d.skipped {
		if _, ok := d.Roles[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		raws := d.skipped[k].raw
		if e, ok := d.Roles[k]; ok {
			v, err := json.Marshal(e)
			if err != nil {
				return nil, err
			}
			raws = []json.RawMessage{v}
		}
		key, _ := json.Marshal(k)
		for _, raw := range raws {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(key)
			b.WriteByte(':')
			b.Write(raw)
		}
	}
	b.WriteString("}}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	if out.Len() > MaxSize {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("the role table would be %d bytes, more than the %d a table may hold: remove entries (eipclaim register --remove)", out.Len(), MaxSize))
	}
	return out.Bytes(), nil
}

// Parse decodes and checks a stored table. origin names it in messages.
// A document that is not a whole version-1 table is refused with exit code
// 2 (exitcode.Usage) and a message saying what is wrong: empty, too large,
// not JSON or cut short, another version, unknown keys or a key given
// twice at the top, roles that is not an object.
//
// An entry that is not valid does not make the table unreadable: Parse
// leaves it out of Roles and reports it in Skipped, so that one bad entry
// never stops every client from getting the others. An entry is not valid
// when its role name is not one (config.CheckRoleName), it names another
// role, it has unknown keys or a key given twice, an address that is not a
// host's (config.CheckHostAddress), a name that is not a host name
// (dnsname.CheckHostName), a negative epoch; and when its role is given
// twice in roles, or beside a role of the same name in another case (which
// of them is right is unknown: both are skipped).
func Parse(data []byte, origin string) (*Document, error) {
	return decode(data, origin)
}

// decode is Parse.
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
	top, ok := members(data)
	if !ok {
		return nil, bad("want a JSON object with version and roles")
	}
	var version, roles json.RawMessage
	for i, m := range top {
		if slices.ContainsFunc(top[:i], func(o member) bool { return o.key == m.key }) {
			return nil, bad("key %q given twice: a malformed table (which one is right is unknown); rewrite it", m.key)
		}
		switch m.key {
		case "version":
			version = m.raw
		case "roles":
			roles = m.raw
		default:
			return nil, bad("unknown field %q: a role table has version and roles only", m.key)
		}
	}
	var v *int
	if err := json.Unmarshal(version, &v); version != nil && err != nil {
		return nil, bad("version %s: want %d", version, Version)
	}
	switch {
	case v == nil:
		return nil, bad("no version: not a role table (want {\"version\": 1, \"roles\": {...}})")
	case *v != Version:
		return nil, bad("version %d: this eipclaim reads version %d; upgrade eipclaim on this machine, or rewrite the table", *v, Version)
	}
	d := New()
	if roles == nil || string(roles) == "null" {
		return d, nil
	}
	entries, ok := members(roles)
	if !ok {
		return nil, bad("roles: want an object of role entries, {\"ROLE\": {...}}")
	}
	raws := map[string][]json.RawMessage{}
	for _, m := range entries {
		raws[m.key] = append(raws[m.key], m.raw)
	}
	skip := func(key string, err error) {
		if d.skipped == nil {
			d.skipped = map[string]skippedEntry{}
		}
		d.skipped[key] = skippedEntry{raw: raws[key], err: err}
	}
	for _, key := range slices.Sorted(maps.Keys(raws)) {
		if n := len(raws[key]); n > 1 {
			skip(key, fmt.Errorf("role %q: given %d times in the table (which entry is right is unknown): write the role again, or take it out (eipclaim register --remove)", key, n))
			continue
		}
		e, err := decodeEntry(key, raws[key][0])
		if err != nil {
			skip(key, err)
			continue
		}
		d.Roles[key] = e
	}
	// Role names are host names, the same whatever their case.
	for _, key := range slices.Sorted(maps.Keys(raws)) {
		for other := range raws {
			if other != key && strings.EqualFold(other, key) {
				delete(d.Roles, key)
				skip(key, fmt.Errorf("role %q: the table also has role %q, the same role name whatever its case (which is right is unknown): take one out (eipclaim register --remove)", key, other))
				break
			}
		}
	}
	return d, nil
}

// member is one member of a JSON object, as stored.
type member struct {
	key string
	raw json.RawMessage
}

// members returns the members of the JSON object data (valid JSON), in
// order, a key given twice as often as it is; ok is false when data is not
// an object.
func members(data []byte) (ms []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		key, isKey := t.(string)
		if err != nil || !isKey {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		ms = append(ms, member{key, raw})
	}
	return ms, true
}

// duplicateKey returns a key given twice in an object of raw (valid JSON),
// at any depth, and whether there is one.
func duplicateKey(raw json.RawMessage) (string, bool) {
	switch t := bytes.TrimSpace(raw); {
	case len(t) > 0 && t[0] == '{':
		ms, _ := members(t)
		for i, m := range ms {
			if slices.ContainsFunc(ms[:i], func(o member) bool { return o.key == m.key }) {
				return m.key, true
			}
			if k, ok := duplicateKey(m.raw); ok {
				return k, true
			}
		}
	case len(t) > 0 && t[0] == '[':
		var items []json.RawMessage
		_ = json.Unmarshal(t, &items)
		for _, it := range items {
			if k, ok := duplicateKey(it); ok {
				return k, true
			}
		}
	}
	return "", false
}

// decodeEntry decodes and checks the entry stored under key.
func decodeEntry(key string, raw json.RawMessage) (Entry, error) {
	if k, dup := duplicateKey(raw); dup {
		return Entry{}, fmt.Errorf("role %q: key %q given twice in the entry (which value is right is unknown): write the role again", key, k)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("role %q: %v", key, err)
	}
	if err := e.check(key); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// check validates the entry stored under key: the rule every reader
// applies (Parse) and every writer is held to (Set).
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
		if _, err := config.ParseHostAddress(ip.v); err != nil {
			return fmt.Errorf("role %s: %s %w", key, ip.k, err)
		}
	}
	if n := e.PublicDNSName; n != "" && !dnsname.IsDomainName(n) {
		return fmt.Errorf("role %s: public_dns_name %q is not a DNS name", key, n)
	}
	for _, n := range e.Names {
		if err := dnsname.CheckHostName(n); err != nil {
			return fmt.Errorf("role %s: name %q: %v", key, n, err)
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
