// Package config is eipclaim's configuration: the schema of the document,
// its strict decoding (unknown keys are errors) and its validation, which
// reports every problem at once with the key path and the line it is on.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/eipclaim/eipclaim/internal/dnsname"
)

// Takeover is what a claim does when another instance holds the EIP.
type Takeover string

// The takeover policies.
const (
	TakeoverNever        Takeover = "never"
	TakeoverIfHolderDown Takeover = "if-holder-down"
	TakeoverAlways       Takeover = "always"
)

// Fence is what a takeover does first to a holder whose instance is
// still running but counts as down (decide.Fence decides when).
type Fence string

// The fence settings.
const (
	FenceOff  Fence = "off"  // the default: take over without touching the holder
	FenceStop Fence = "stop" // stop the holder's instance (StopInstances with Force) first
)

// DefaultFenceTimeout bounds a fence when fence_timeout is unset: a forced
// stop shows as stopping in EC2's answer within seconds; 60s leaves room
// for the retries of a throttled or failed StopInstances and a few reads of
// the state, and is short enough that a standby that cannot fence says so
// (and refuses the move) within a minute.
const DefaultFenceTimeout = 60 * time.Second

// Config is one configuration document, or several merged (see Merge).
type Config struct {
	Role   string           `yaml:"role"`   // the role this instance claims
	Source string           `yaml:"source"` // where the roles table lives: s3://, https://, or a file
	Roles  map[string]*Role `yaml:"roles"`
	// Repository is the role table's S3 object (s3://bucket/key), written
	// after every claim (internal/table).
	Repository string `yaml:"repository"`

	// lines maps a key path ("roles.db.allocation_id") to its line.
	lines map[string]int
}

// Role is one entry of the roles table.
type Role struct {
	// Name is the role's name, its key in the roles table: a role knows
	// its name (set by Decode).
	Name         string `yaml:"-" json:"-"`
	AllocationID string `yaml:"allocation_id"`
	PublicIP     string `yaml:"public_ip"`
	Pool         *Pool  `yaml:"pool"`
	PrivateIP    string `yaml:"private_ip"`
	// PrivateAddress is a secondary private IPv4 address that the holder's
	// interface carries (AssignPrivateIpAddresses), moved between the
	// holders' interfaces within one subnet: instead of an EIP, or beside
	// one.
	PrivateAddress string `yaml:"private_address"`
	// Overlay is an address outside the VPC's CIDR routed as a /32 to the
	// holder's interface in each of its route tables: instead of an EIP,
	// or beside one; not with private_address (one private kind per role).
	Overlay *Overlay `yaml:"overlay"`
	// LocalInterface, when set, puts the role's private address on a
	// local interface of the holder (Linux, netlink) and takes it off a
	// deposed holder: LocalInterfaceAuto (the interface whose MAC is the
	// ENI's), or an interface's name. Unset: the hooks do it
	// (EIPCLAIM_PRIVATE_ADDRESS).
	LocalInterface string      `yaml:"local_interface"`
	Interface      Interface   `yaml:"interface"` // eni-… or a device index
	Takeover       Takeover    `yaml:"takeover"`
	HealthCheck    HealthCheck `yaml:"health_check"` // tcp:PORT
	DNS            *DNS        `yaml:"dns"`
	Watch          *Watch      `yaml:"watch"` // eipclaim watch: see watch.go
	Hooks          *Hooks      `yaml:"hooks"`

	// Fence, when stop, stops a running holder that counts as down before
	// its EIP is taken (decide.Fence); off (the default) when unset.
	Fence Fence `yaml:"fence"`
	// FenceTimeout bounds a fence: the stop and the wait for EC2 to say
	// the holder is stopping; DefaultFenceTimeout when unset.
	FenceTimeout Duration `yaml:"fence_timeout"`
}

// Overlay is a role's overlay address: Address (IPv4, outside the VPC's
// CIDR) routed as a /32 to the holder's interface in every one of
// RouteTables. Its compare-and-swap is the role table's (repository:).
type Overlay struct {
	Address     string   `yaml:"address"`
	RouteTables []string `yaml:"route_tables"`
}

// PrivateKind returns the role's private-kind address, the one that moves
// with the role inside the VPC: its secondary private IP (private_address)
// or its overlay address (overlay.address), "" when it has neither.
func (r *Role) PrivateKind() string {
	if r.Overlay != nil {
		return r.Overlay.Address
	}
	return r.PrivateAddress
}

// Pool selects any free EIP that carries all of Tags.
type Pool struct {
	Tags map[string]string `yaml:"tags"`
}

// DNS says where the role's name is published.
type DNS struct {
	Route53 *Route53 `yaml:"route53"`
	RFC2136 *RFC2136 `yaml:"rfc2136"`
	DynDNS  *DynDNS  `yaml:"dyndns"`
}

// Route53 publishes Name as a CNAME to the EIP's public DNS name.
type Route53 struct {
	ZoneID string `yaml:"zone_id"` // the hosted zone, or:
	Zone   string `yaml:"zone"`    // the hosted zone's name
	// PrivateZone picks the private (true) or public (false) zone when Zone
	// names both; required in that case.
	PrivateZone *bool  `yaml:"private_zone"`
	Name        string `yaml:"name"`
	TTL         int64  `yaml:"ttl"` // 0 means DefaultTTL
	// Record is the record's type: CNAME (to the EIP's public DNS name)
	// or A (the role's private address: Placement.Private); see
	// Role.Route53Record for the default.
	Record string `yaml:"record"`
}

// RFC2136 publishes Name by a TSIG-signed dynamic update to Server.
type RFC2136 struct {
	Server   string `yaml:"server"` // host:port; port 53 if omitted
	Zone     string `yaml:"zone"`
	Name     string `yaml:"name"`
	TTL      int64  `yaml:"ttl"`    // 0 means DefaultTTL
	Record   string `yaml:"record"` // A (default: the private IP) or CNAME (the public DNS name)
	TSIGName string `yaml:"tsig_name"`
	// TSIGAlgorithm defaults to the key statement's algorithm when the
	// secret file is a BIND key file, else hmac-sha256.
	TSIGAlgorithm string `yaml:"tsig_algorithm"`
	// TSIGSecretFile holds the base64 secret alone, or one BIND key
	// statement as tsig-keygen prints it.
	TSIGSecretFile string `yaml:"tsig_secret_file"`
}

// DefaultTTL is the TTL of published records when none is configured.
const DefaultTTL = 60

// HostNames returns the host names of the role, the one list
// every writer of them uses (a claim's role table entry, eipclaim register,
// eipclaim hosts): its DNS names (route53, rfc2136, dyndns, in that order)
// as host names (dnsname.HostName: without a final dot), each once whatever its
// case, without the role's own name (hosts files write it after them).
func (r *Role) HostNames() []string {
	var names []string
	for _, d := range r.dnsNames() {
		n := dnsname.HostName(d.name)
		if n == "" || r.Name != "" && strings.EqualFold(n, r.Name) || slices.ContainsFunc(names, func(m string) bool { return strings.EqualFold(m, n) }) {
			continue
		}
		names = append(names, n)
	}
	return names
}

// keyedName is a DNS name a role publishes, with its key under
// roles.ROLE (dns.route53.name...).
type keyedName struct{ key, name string }

// dnsNames lists the DNS names the role publishes, as configured, each
// with its key: the one list HostNames and the validation of names that
// two roles cannot share read.
func (r *Role) dnsNames() []keyedName {
	if r == nil || r.DNS == nil {
		return nil
	}
	var out []keyedName
	if d := r.DNS.Route53; d != nil && d.Name != "" {
		out = append(out, keyedName{"dns.route53.name", d.Name})
	}
	if d := r.DNS.RFC2136; d != nil && d.Name != "" {
		out = append(out, keyedName{"dns.rfc2136.name", d.Name})
	}
	if d := r.DNS.DynDNS; d != nil && d.Hostname != "" {
		out = append(out, keyedName{"dns.dyndns.hostname", d.Hostname})
	}
	return out
}

// HasEIP reports whether the role claims an Elastic IP (allocation_id,
// public_ip or pool); a role with only private_address has none.
func (r *Role) HasEIP() bool {
	return r.AllocationID != "" || r.PublicIP != "" || r.Pool != nil
}

// Route53Record returns the type of the role's Route 53 record, "A" or
// "CNAME": dns.route53.record when set; else a CNAME to the EIP's public
// DNS name when the role has an EIP, an A record of its private address
// when it has none (only private_address). An A record publishes the
// role's private address: its private_address, or the holder's private
// IP that carries the EIP.
func (r *Role) Route53Record() string {
	if r.DNS != nil && r.DNS.Route53 != nil && r.DNS.Route53.Record != "" {
		return strings.ToUpper(r.DNS.Route53.Record)
	}
	if r.HasEIP() {
		return "CNAME"
	}
	return "A"
}

// HasPrivateAddress reports whether the role moves a private address
// (private_address), the one a local interface can carry
// (local_interface).
func (r *Role) HasPrivateAddress() bool {
	return r.PrivateKind() != ""
}

// LocalInterfaceAuto is local_interface's value that finds the interface
// by the MAC of the ENI that carries the address.
const LocalInterfaceAuto = "auto"

// EffectiveTakeover returns the role's policy, if-holder-down when unset.
func (r *Role) EffectiveTakeover() Takeover {
	if r.Takeover == "" {
		return TakeoverIfHolderDown
	}
	return r.Takeover
}

// EffectiveFence returns the role's fence setting, off when unset.
func (r *Role) EffectiveFence() Fence {
	if r.Fence == "" {
		return FenceOff
	}
	return r.Fence
}

// EffectiveFenceTimeout returns the role's fence_timeout, or
// DefaultFenceTimeout when unset.
func (r *Role) EffectiveFenceTimeout() time.Duration {
	return r.FenceTimeout.Or(DefaultFenceTimeout)
}

// TopKeys returns the top-level keys of an eipclaim document, in the
// order of Config's fields: the one list of them (internal/source asks it
// which user-data documents are eipclaim's).
func TopKeys() []string { return slices.Clone(topKeys) }

// topKeys is read once from Config's yaml tags.
var topKeys = func() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}()

// wantMapping says what a document is, for the message about one that is
// not: "a mapping with role, source, roles or repository".
func wantMapping() string {
	return "a mapping with " + strings.Join(topKeys[:len(topKeys)-1], ", ") + " or " + topKeys[len(topKeys)-1]
}

// Parse decodes and validates one whole YAML (or JSON) document. origin
// names where it came from, for messages ("user-data", a path, a URL).
// A second document in data ("---") is an error: eipclaim reads one.
func Parse(data []byte, origin string) (*Config, error) {
	docs, err := Documents(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML: %s", origin, cleanYAMLError(err))
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: the document is empty: want %s", origin, wantMapping())
	}
	c, err := Decode(docs[0].Content[0], origin)
	if len(docs) == 1 {
		return c, err
	}
	extra := SecondDocument(docs[1])
	var ce *Error
	if errors.As(err, &ce) {
		ce.Problems = append(ce.Problems, extra)
		return nil, ce
	}
	if err != nil {
		return nil, err
	}
	return nil, &Error{Origin: origin, Problems: []error{extra}}
}

// Documents returns the documents of the YAML stream data, each a
// yaml.DocumentNode with one child. Empty documents (nothing, or comments
// only, as after a final "---") are left out: they hold nothing that could
// be ignored. A syntax error anywhere in the stream is an error, returned
// with the documents before it.
func Documents(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		doc := new(yaml.Node)
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		if n := doc.Content[0]; n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Style == 0 {
			continue // an empty document, not an explicit null
		}
		docs = append(docs, doc)
	}
}

// SecondDocument is the problem of a YAML stream whose second document is
// doc (as Documents returns it): eipclaim reads one document, so it would
// ignore doc. The error names doc's first line.
func SecondDocument(doc *yaml.Node) error {
	return fmt.Errorf("--- (line %d): a second YAML document: eipclaim reads one document and would ignore everything from here; "+
		"put all of eipclaim's configuration in one document (remove the --- line)", doc.Line)
}

// Decode decodes and validates the configuration held by node, a YAML
// mapping (for instance the value of the eipclaim: key of a #cloud-config
// document). Line numbers in messages are node's.
func Decode(node *yaml.Node, origin string) (*Config, error) {
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s (line %d): want %s, got %s", origin, node.Line, wantMapping(), kindName(node))
	}
	c := &Config{lines: map[string]int{}}
	var problems []error
	checkKeys(node, reflect.TypeOf(*c), "", c.lines, &problems)
	if len(problems) == 0 {
		if err := node.Decode(c); err != nil {
			problems = append(problems, errors.New(cleanYAMLError(err)))
		}
	}
	if len(problems) == 0 {
		problems = c.validate()
	}
	if len(problems) > 0 {
		return nil, &Error{Origin: origin, Problems: problems}
	}
	for n, r := range c.Roles {
		r.Name = n
	}
	return c, nil
}

// Error lists every problem found in one document.
type Error struct {
	Origin   string
	Problems []error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration in %s:", e.Origin)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap gives the problems to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Problems }

// checkKeys reports keys of node that t has no field for, recursing through
// structs, pointers and string-keyed maps, and records every key's line.
func checkKeys(node *yaml.Node, t reflect.Type, path string, lines map[string]int, problems *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	kind := t.Kind()
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		kind = reflect.String // a typed scalar (Interface, HealthCheck, Duration)
	}
	switch kind {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			if node.Tag != "!!null" {
				*problems = append(*problems, fmt.Errorf("%s (line %d): want a mapping, got %s", path, node.Line, kindName(node)))
			}
			return
		}
		fields := map[string]reflect.Type{}
		var known []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			known = append(known, name)
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			p := join(path, k.Value)
			lines[p] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, fmt.Errorf("%s (line %d): unknown key; known keys here: %s", p, k.Line, strings.Join(known, ", ")))
				continue
			}
			checkKeys(v, ft, p, lines, problems)
		}
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			if node.Tag != "!!null" {
				*problems = append(*problems, fmt.Errorf("%s (line %d): want a mapping, got %s", path, node.Line, kindName(node)))
			}
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				*problems = append(*problems, fmt.Errorf("%s (line %d): duplicate key", p, k.Line))
			}
			seen[k.Value] = true
			lines[p] = k.Line
			checkKeys(v, t.Elem(), p, lines, problems)
		}
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			if node.Tag != "!!null" {
				*problems = append(*problems, fmt.Errorf("%s (line %d): want a list, got %s", path, node.Line, kindName(node)))
			}
			return
		}
		for _, item := range node.Content {
			checkKeys(item, t.Elem(), path, lines, problems)
		}
	default:
		if node.Kind == yaml.MappingNode || node.Kind == yaml.SequenceNode {
			*problems = append(*problems, fmt.Errorf("%s (line %d): want a single value, got %s", path, node.Line, kindName(node)))
			return
		}
		// The YAML library truncates a float decoded into an integer
		// (60.5 becomes 60): refuse it instead.
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!float" {
				*problems = append(*problems, problem{path: path, value: node.Value, line: node.Line, want: "want a whole number, such as 60"})
			}
		}
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// cleanYAMLError drops the library's "yaml: " prefixes and its Go type
// names, which mean nothing to the person editing the file.
func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := slices.Clone(te.Errors)
		for i, m := range msgs {
			if j := strings.Index(m, " into "); j >= 0 {
				m = m[:j] + ": want " + goTypeWord(m[j+len(" into "):])
			}
			msgs[i] = strings.Replace(m, "cannot unmarshal", "cannot use", 1)
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case t == "bool" || t == "*bool":
		return "true or false"
	case t == "string" || strings.HasSuffix(t, ".Takeover") || strings.HasSuffix(t, ".Fence"):
		return "a string"
	case strings.HasPrefix(t, "map"):
		return "a mapping"
	}
	return "a different type"
}

// Line returns the line of the key at path, or 0 when it was not in the
// document.
func (c *Config) Line(path string) int { return c.lines[path] }

// Lookup returns the named role, or an error that lists the roles there are.
func (c *Config) Lookup(role string) (*Role, error) {
	if role == "" {
		return nil, errors.New("no role given: set role: in the configuration, EIPCLAIM_ROLE, or --role")
	}
	r, ok := c.Roles[role]
	if !ok || r == nil {
		names := make([]string, 0, len(c.Roles))
		for n := range c.Roles {
			names = append(names, n)
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("role %q: the configuration has no roles table: add roles: or point source: at the document that has it", role)
		}
		return nil, fmt.Errorf("role %q is not in the roles table (roles: %s)", role, strings.Join(names, ", "))
	}
	return r, nil
}

// CheckMerged checks what no single document can: that the roles of a
// configuration merged from several (Merge) do not share a published name
// or an EIP, and that a configuration with an overlay role has
// repository: (which may come from another document than the role).
// origin names the documents, for the message. source.Load calls it for
// every configuration it loads, of one document or several.
func (c *Config) CheckMerged(origin string) error {
	v := &validator{c: c}
	names := slices.Sorted(maps.Keys(c.Roles))
	v.uniqueNames(names)
	v.uniqueAddresses(names)
	v.overlayNeedsRepository(names)
	if len(v.problems) > 0 {
		return &Error{Origin: origin, Problems: v.problems}
	}
	return nil
}

// Merge returns base overridden by over: over's role and source when set,
// and over's roles replacing base's roles of the same name (whatever its
// case).
func Merge(base, over *Config) *Config {
	m := &Config{Role: base.Role, Source: base.Source, Repository: base.Repository, Roles: map[string]*Role{}, lines: map[string]int{}}
	// Each key keeps the line it had in its own document.
	for k, l := range base.lines {
		m.lines[k] = l
	}
	for k, l := range over.lines {
		m.lines[k] = l
	}
	if over.Repository != "" {
		m.Repository = over.Repository
	}
	if over.Role != "" {
		m.Role = over.Role
	}
	if over.Source != "" {
		m.Source = over.Source
	}
	for n, r := range base.Roles {
		m.Roles[n] = r
	}
	for n, r := range over.Roles {
		// Role names are compared regardless of case (CheckRoleName):
		// over's "db" replaces base's "DB".
		for bn := range base.Roles {
			if strings.EqualFold(bn, n) {
				delete(m.Roles, bn)
			}
		}
		m.Roles[n] = r
	}
	return m
}
