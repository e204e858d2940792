// Package source loads eipclaim's configuration from where it may come
// from and decides which wins (Load, the one place precedence is decided):
// the instance user-data (a plain YAML or JSON document, the eipclaim: key
// of a #cloud-config, or a part of a cloud-init MIME multipart, any of them
// gzip-compressed), flags and the environment, and the document they point
// at (S3, https or a local file).
//
// User-data often holds secrets: nothing here logs it or puts any of it in
// an error message, beyond key names, MIME types and line numbers; even the
// values of eipclaim's own keys are replaced by "…" in validation messages
// about user-data (the key path and the line say where to look).
package source

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// MaxDecompressed caps the bytes that gzip-compressed user-data (or a
// gzip-compressed document) may decompress to, over all its gzip streams.
// EC2 user-data is at most 16 KiB, so anything larger is a gzip bomb.
const MaxDecompressed = 1 << 20

// ErrNoConfig means the user-data holds no eipclaim configuration.
var ErrNoConfig = errors.New("no eipclaim configuration")

// ContentType is the MIME type that marks a multipart part as an eipclaim
// document whatever its keys.
const ContentType = "text/x-eipclaim-config"

// topKeys are the top-level keys of an eipclaim document: config's list,
// the one home of the schema.
var topKeys = config.TopKeys()

const (
	maxDepth = 4   // nested multipart or gzip levels
	maxParts = 100 // parts in all
)

// Decode returns the eipclaim configuration held by raw, the instance
// user-data. It does no I/O. User-data that holds none returns an error
// wrapping ErrNoConfig that says what was found. Every error carries
// exitcode.Usage.
func Decode(raw []byte) (*config.Config, error) {
	c, _, err := decode(raw)
	return c, err
}

// decode is Decode that also returns where the configuration was found,
// such as "user-data part 1 (text/cloud-config)".
func decode(raw []byte) (*config.Config, string, error) {
	d := &decoder{budget: MaxDecompressed}
	desc, err := d.content(raw, "", "user-data", 0)
	if err != nil {
		return nil, "", exitcode.With(exitcode.Usage, err)
	}
	switch len(d.found) {
	case 0:
		hint := "put eipclaim's document (" + strings.Join(topKeys, ", ") + ") in the user-data, or under an eipclaim: key of its #cloud-config, or pass --config SRC"
		switch {
		case d.cloudConfig == "user-data":
			hint = "add an eipclaim: key to the #cloud-config, or pass --config SRC"
		case d.cloudConfig != "":
			hint = "add an eipclaim: key to the #cloud-config (" + partPrefix(d.cloudConfig) + "), or pass --config SRC"
		}
		return nil, "", exitcode.With(exitcode.Usage, fmt.Errorf("user-data is %s: %w; %s", desc, ErrNoConfig, hint))
	case 1:
		f := d.found[0]
		c, err := f.decode()
		if err != nil {
			return nil, "", exitcode.With(exitcode.Usage, err)
		}
		return c, f.origin, nil
	}
	names := make([]string, len(d.found))
	for i, f := range d.found {
		names[i] = f.origin
	}
	list, verb := strings.Join(names[:len(names)-1], ", ")+" and "+names[len(names)-1], "all"
	if len(names) == 2 {
		verb = "both"
	}
	return nil, "", exitcode.With(exitcode.Usage, fmt.Errorf("%s %s hold eipclaim configuration: keep it in one part", list, verb))
}

// decoder walks the user-data, recording the places that hold eipclaim
// configuration.
type decoder struct {
	budget      int64 // decompressed bytes left
	parts       int   // multipart parts seen
	found       []found
	cloudConfig string // the first #cloud-config seen, for the hint
}

// found is one place holding eipclaim configuration.
type found struct {
	origin string
	node   *yaml.Node // the document's mapping or the eipclaim: value
	data   []byte     // set instead of node for an explicit part
}

func (f found) decode() (*config.Config, error) {
	var (
		c   *config.Config
		err error
	)
	switch {
	case f.node == nil:
		c, err = config.Parse(f.data, f.origin)
	default:
		if line := aliasOutside(f.node); line > 0 {
			return nil, fmt.Errorf("%s (line %d): an alias to an anchor outside the eipclaim configuration: copy the value instead", f.origin, line)
		}
		c, err = config.Decode(f.node, f.origin)
	}
	if err != nil {
		// The values of eipclaim's own keys (ids, addresses, names, paths)
		// are not secret and are shown, so the message says what is wrong;
		// nothing else of the user-data reaches it.
		return nil, err
	}
	return c, nil
}

// content classifies data, whose declared MIME type is mt ("" when none),
// registers what holds configuration, and returns a description of what
// data is, for the message when nothing does. The description never quotes
// content.
func (d *decoder) content(data []byte, mt, origin string, depth int) (string, error) {
	if depth > maxDepth {
		return "", fmt.Errorf("%s: nested more than %d levels deep (multipart or gzip)", origin, maxDepth)
	}
	if isGzip(data) {
		out, err := d.gunzip(data, origin)
		if err != nil {
			return "", err
		}
		desc, err := d.content(out, "", origin, depth+1)
		return desc + ", gzip-compressed", err
	}
	switch mt {
	case "", "text/plain", "text/x-not-multipart", "text/yaml", "text/x-yaml", "application/yaml", "application/x-yaml", "application/json":
		return d.sniff(data, origin, depth)
	case "text/cloud-config":
		return d.cloudConfigDoc(data, origin)
	case ContentType:
		d.found = append(d.found, found{origin: origin, data: data})
		return "an eipclaim document", nil
	case "application/x-gzip", "application/gzip":
		return d.sniff(data, origin, depth) // not gzip after all
	}
	if strings.HasPrefix(mt, "multipart/") {
		return d.sniff(data, origin, depth) // no boundary: see whether it has headers
	}
	return "a " + mt + " part", nil
}

// sniff classifies data by its first line, as cloud-init does for parts
// without a telling Content-Type.
func (d *decoder) sniff(data []byte, origin string, depth int) (string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return "empty", nil
	}
	if isMIME(data) {
		return d.mime(data, origin, depth)
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	first = bytes.TrimSpace(first)
	switch {
	case string(first) == "#cloud-config":
		return d.cloudConfigDoc(data, origin)
	case bytes.HasPrefix(first, []byte("#!")):
		return "a shell script", nil
	}
	for _, m := range []struct{ prefix, desc string }{
		{"#include", "a cloud-init #include list"},
		{"#cloud-boothook", "a cloud-init #cloud-boothook"},
		{"#cloud-config-archive", "a #cloud-config-archive"},
		{"#cloud-config-jsonp", "a #cloud-config-jsonp"},
		{"#upstart-job", "a cloud-init #upstart-job"},
		{"#part-handler", "a cloud-init #part-handler"},
		{"## template: jinja", "a cloud-init jinja template, which eipclaim does not render"},
	} {
		if bytes.HasPrefix(first, []byte(m.prefix)) {
			return m.desc, nil
		}
	}
	docs, err := config.Documents(data)
	if line := eipclaimDocs(docs, false); line > 0 && (err != nil || len(docs) > 1) {
		return "", multiDocError(origin, docs, err, line)
	}
	if err != nil {
		return "neither a script, a #cloud-config nor YAML (" + yamlSyntaxError(err) + ")", nil
	}
	switch len(docs) {
	case 0:
		return "empty", nil
	case 1:
	default:
		return fmt.Sprintf("YAML with %d documents, none with eipclaim's keys (%s)", len(docs), strings.Join(topKeys, ", ")), nil
	}
	top := docs[0].Content[0]
	if top.Kind != yaml.MappingNode {
		return "YAML but not a mapping", nil
	}
	var ours, others []string
	hasEIPClaim := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		switch {
		case slices.Contains(topKeys, k.Value):
			ours = append(ours, k.Value)
		case k.Value == "eipclaim":
			hasEIPClaim = true
		default:
			others = append(others, fmt.Sprintf("%s (line %d)", truncate(k.Value, 40), k.Line))
		}
	}
	switch {
	case len(ours) > 0 && len(others) == 0:
		d.found = append(d.found, found{origin: origin, node: top})
		return "an eipclaim document", nil
	case hasEIPClaim:
		return "a YAML mapping with an eipclaim: key but without a #cloud-config first line (add that line)", nil
	case len(ours) > 0:
		return fmt.Sprintf("a YAML mapping with %s but also keys that are not eipclaim's (%s; eipclaim's are %s)",
			strings.Join(ours, ", "), limitList(others, 5), strings.Join(topKeys, ", ")), nil
	}
	return "a YAML mapping without eipclaim's keys (" + strings.Join(topKeys, ", ") + ")", nil
}

// cloudConfigDoc registers the eipclaim: key of a #cloud-config document.
func (d *decoder) cloudConfigDoc(data []byte, origin string) (string, error) {
	if d.cloudConfig == "" {
		d.cloudConfig = origin
	}
	docs, err := config.Documents(data)
	if err != nil {
		return "", fmt.Errorf("%s: the #cloud-config is not valid YAML (%s): fix it, cloud-init cannot read it either", origin, yamlSyntaxError(err))
	}
	if line := eipclaimDocs(docs, true); line > 0 && len(docs) > 1 {
		return "", multiDocError(origin, docs, nil, line)
	}
	if len(docs) == 0 {
		return "a #cloud-config without an eipclaim: key", nil
	}
	if len(docs) > 1 {
		return fmt.Sprintf("a #cloud-config of %d YAML documents (cloud-init reads one), none with an eipclaim: key", len(docs)), nil
	}
	top := docs[0].Content[0]
	if top.Kind != yaml.MappingNode {
		return "", fmt.Errorf("%s (line %d): the #cloud-config is not a mapping", origin, top.Line)
	}
	var val *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if k := top.Content[i]; k.Value == "eipclaim" {
			if val != nil {
				return "", fmt.Errorf("%s (line %d): eipclaim: appears twice in the #cloud-config: keep one", origin, k.Line)
			}
			val = top.Content[i+1]
		}
	}
	if val == nil {
		return "a #cloud-config without an eipclaim: key", nil
	}
	d.found = append(d.found, found{origin: origin, node: val})
	return "a #cloud-config with an eipclaim: key", nil
}

// eipclaimDocs returns the line of the first of docs that holds eipclaim
// configuration, 0 if none does: a mapping with an eipclaim: key, or (when
// cloudConfig is false, for a plain YAML document) one of eipclaim's
// top-level keys.
func eipclaimDocs(docs []*yaml.Node, cloudConfig bool) int {
	for _, doc := range docs {
		top := doc.Content[0]
		if top.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(top.Content); i += 2 {
			if k := top.Content[i].Value; k == "eipclaim" || !cloudConfig && slices.Contains(topKeys, k) {
				return top.Line
			}
		}
	}
	return 0
}

// multiDocError is the error of a YAML stream of several documents (or of
// one followed by a syntax error, err) one of which, at line, holds
// eipclaim configuration: eipclaim (and cloud-init) read one document, so
// part of it would be ignored.
func multiDocError(origin string, docs []*yaml.Node, err error, line int) error {
	if err != nil {
		return fmt.Errorf("%s: not valid YAML after the eipclaim configuration at line %d (%s): fix it", origin, line, yamlSyntaxError(err))
	}
	return &config.Error{Origin: origin, Problems: []error{config.SecondDocument(docs[1])}}
}

// mime walks a MIME message: multipart as cloud-init builds them, or a
// single part with headers.
func (d *decoder) mime(data []byte, origin string, depth int) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		// The parser's message quotes the offending line: leave it out.
		return "", fmt.Errorf("%s: malformed MIME headers: check how the user-data was built (cloud-init devel make-mime)", origin)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err == nil && strings.HasPrefix(mt, "multipart/") {
		return d.multipart(msg.Body, mt, params["boundary"], origin, depth)
	}
	body, err := d.transferDecode(msg.Body, msg.Header.Get("Content-Transfer-Encoding"), origin)
	if err != nil {
		return "", err
	}
	return d.content(body, mt, origin, depth+1)
}

// multipart walks the parts of a multipart body.
func (d *decoder) multipart(body io.Reader, mt, boundary, origin string, depth int) (string, error) {
	if depth > maxDepth {
		return "", fmt.Errorf("%s: nested more than %d levels deep (multipart or gzip)", origin, maxDepth)
	}
	if boundary == "" {
		return "", fmt.Errorf("%s: %s without a boundary parameter: check how the user-data was built", origin, mt)
	}
	prefix := "user-data part "
	if p := partPrefix(origin); strings.HasPrefix(p, prefix) {
		prefix = p + "."
	}
	r := multipart.NewReader(body, boundary)
	var types []string
	for n := 1; ; n++ {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// As for headers, the reader's message may quote the body.
			return "", fmt.Errorf("%s: malformed MIME multipart after part %d: check how the user-data was built", origin, n-1)
		}
		d.parts++
		if d.parts > maxParts {
			return "", fmt.Errorf("%s: more than %d MIME parts", origin, maxParts)
		}
		pmt, params := "", map[string]string(nil)
		if ct := p.Header.Get("Content-Type"); ct != "" {
			if pmt, params, err = mime.ParseMediaType(ct); err != nil || pmt == "" {
				pmt = "text/plain"
			}
		}
		label := pmt
		if label == "" {
			label = "no Content-Type"
		}
		name := fmt.Sprintf("%s%d (%s)", prefix, n, label)
		types = append(types, label)
		body, err := d.transferDecode(p, p.Header.Get("Content-Transfer-Encoding"), name)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(pmt, "multipart/") {
			_, err = d.multipart(bytes.NewReader(body), pmt, params["boundary"], name, depth+1)
		} else {
			_, err = d.content(body, pmt, name, depth+1)
		}
		if err != nil {
			return "", err
		}
	}
	if len(types) == 0 {
		return "multipart with no parts", nil
	}
	return fmt.Sprintf("multipart with %d parts (%s)", len(types), strings.Join(types, ", ")), nil
}

// partPrefix returns "user-data part 2" of "user-data part 2 (text/plain)".
func partPrefix(origin string) string {
	p, _, _ := strings.Cut(origin, " (")
	return p
}

// transferDecode undoes a part's Content-Transfer-Encoding.
// (mime/multipart's NextRawPart leaves quoted-printable alone too.)
func (d *decoder) transferDecode(r io.Reader, cte, origin string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	default:
		return nil, fmt.Errorf("%s: unknown Content-Transfer-Encoding: want base64, quoted-printable, 7bit or 8bit", origin)
	}
	// Parts are read from user-data already in memory, so their size is
	// bounded by it (and by MaxDecompressed when it was gzip).
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: the body is not valid %s", origin, strings.ToLower(cte))
	}
	return body, nil
}

// newlineStripper drops the line breaks of a base64 body, which
// encoding/base64 only skips for \r and \n already; it also drops spaces and
// tabs some tools indent with.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// isMIME reports whether data starts with a MIME header block naming
// Content-Type or MIME-Version (cloud-init looks for "mime-version:" in the
// first 4 KiB; a YAML document also looks like headers, so one of those two
// names is required).
func isMIME(data []byte) bool {
	head := data[:min(len(data), 4096)]
	for line := range strings.Lines(string(head)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return false
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return false
		}
		if strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "MIME-Version") {
			return true
		}
	}
	return false
}

var quotedRE = regexp.MustCompile("'[^']{2,}'|`[^`]{2,}`|\"[^\"]{2,}\"")

// yamlSyntaxError describes a YAML syntax error. The parser's messages are
// fixed text, a line number and sometimes a quoted anchor name: quotes are
// removed all the same, the document may hold secrets.
func yamlSyntaxError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return "syntax error: " + quotedRE.ReplaceAllString(msg, "'…'")
}

// aliasOutside returns the line of the first alias under n whose anchor is
// not under n (0 when none), so that a validation message cannot quote a
// value from elsewhere in the user-data.
func aliasOutside(n *yaml.Node) int {
	inside := map[*yaml.Node]bool{}
	var mark func(*yaml.Node)
	mark = func(n *yaml.Node) {
		inside[n] = true
		for _, c := range n.Content {
			mark(c)
		}
	}
	mark(n)
	line := 0
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if line > 0 {
			return
		}
		if n.Kind == yaml.AliasNode && !inside[n.Alias] {
			line = n.Line
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return line
}

func limitList(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
	}
	return strings.Join(s, ", ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
