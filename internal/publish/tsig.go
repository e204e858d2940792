package publish

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/localfile"
)

// tsigKey is what a tsig_secret_file holds.
type tsigKey struct {
	// name and algorithm are "" for a file that holds only the secret;
	// from a BIND key statement they are canonical ("eipclaim.",
	// "hmac-sha256") or "" when the statement has none.
	name, algorithm string
	secret          string // base64, canonical (StdEncoding, padded)
}

// maxKeyFile bounds what is read of a tsig_secret_file.
const maxKeyFile = 64 << 10

// readTSIGKey reads a tsig_secret_file. It holds either the base64 secret
// alone (surrounding white space ignored, and line breaks inside it), or a
// BIND key statement, as tsig-keygen and ddns-confgen print it and
// named.conf includes it:
//
//	key "eipclaim." {
//		algorithm hmac-sha256;
//		secret "base64...";
//	};
//
// so that the same file can serve the server and eipclaim. Errors name the
// file and never quote its content.
func readTSIGKey(path string) (tsigKey, error) {
	data, more, err := localfile.Read(path, maxKeyFile)
	if err != nil {
		return tsigKey{}, keyFileError(path, err)
	}
	if more {
		return tsigKey{}, exitcode.With(exitcode.Usage, fmt.Errorf("tsig_secret_file %s: larger than %d bytes: want the base64 secret or a BIND key statement", path, maxKeyFile))
	}
	k, err := parseTSIGKey(data)
	if err != nil {
		return tsigKey{}, exitcode.With(exitcode.Usage, fmt.Errorf("tsig_secret_file %s: %w", path, err))
	}
	return k, nil
}

// keyFileError says what is wrong with the tsig_secret_file (missing, not
// a regular file: exit 2; not readable: exit 3).
func keyFileError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return exitcode.With(exitcode.Denied, fmt.Errorf("tsig_secret_file %s: permission denied: make it readable by the user eipclaim runs as (and by no one else): %w", path, err))
	}
	return localfile.Describe("tsig_secret_file", path, err)
}

// parseTSIGKey parses the content of a tsig_secret_file (see readTSIGKey).
// Its errors never quote data.
func parseTSIGKey(data []byte) (tsigKey, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return tsigKey{}, errors.New("the file is empty: want the base64 TSIG secret")
	}
	// A statement is never valid base64 (it has spaces, quotes, braces),
	// and a secret never starts with the word key followed by a space.
	if secret, err := canonicalSecret(text); err == nil {
		return tsigKey{secret: secret}, nil
	}
	const neither = `not a base64 secret, nor a BIND key statement (key "name" { algorithm ...; secret "..."; };)`
	toks, err := tokenize(text)
	if err != nil {
		return tsigKey{}, fmt.Errorf("%s: %w", neither, err)
	}
	if len(toks) > 0 && toks[0].word == "key" && !toks[0].quoted {
		return parseKeyStatement(toks)
	}
	return tsigKey{}, errors.New(neither)
}

// canonicalSecret decodes a base64 secret and encodes it again in the form
// miekg/dns expects. Line breaks inside s are ignored, as base64 allows.
func canonicalSecret(s string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some tools print the secret without padding.
		var err2 error
		if raw, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return "", errors.New("not a base64 secret")
		}
	}
	if len(raw) == 0 {
		return "", errors.New("the secret is empty")
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// token is one word, quoted string or punctuation mark ({, }, ;) of a
// named.conf fragment.
type token struct {
	word   string
	quoted bool
}

// tokenize splits a named.conf fragment into tokens, dropping comments
// (#, // and /* */).
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || strings.HasPrefix(s[i:], "//"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return toks, nil
			}
			i += j + 1
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil, errors.New("a /* comment is not closed")
			}
			i += 2 + j + 2
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("a quoted string is not closed")
			}
			toks = append(toks, token{word: s[i+1 : i+1+j], quoted: true})
			i += j + 2
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{word: s[i : i+1]})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) && !strings.HasPrefix(s[j:], "//") && !strings.HasPrefix(s[j:], "/*") {
				j++
			}
			toks = append(toks, token{word: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// parseKeyStatement parses `key NAME { algorithm ALG; secret "B64"; };`,
// one statement only.
func parseKeyStatement(toks []token) (tsigKey, error) {
	const want = `want one BIND key statement: key "name" { algorithm hmac-sha256; secret "..."; };`
	bad := func(what string) (tsigKey, error) {
		return tsigKey{}, fmt.Errorf("%s: %s", what, want)
	}
	punct := func(t token, p string) bool { return !t.quoted && t.word == p }
	if len(toks) < 3 || toks[1].word == "" || punct(toks[1], "{") || !punct(toks[2], "{") {
		return bad("the key statement has no name")
	}
	k := tsigKey{name: dns.CanonicalName(toks[1].word)}
	if _, ok := dns.IsDomainName(k.name); !ok {
		return bad("the key name is not a DNS name")
	}
	i := 3
	closed := false
	for i < len(toks) && !closed {
		switch t := toks[i]; {
		case punct(t, "}"):
			closed = true
			i++
		case punct(t, ";"):
			i++
		case !t.quoted && (t.word == "algorithm" || t.word == "secret"):
			if i+2 >= len(toks) || punct(toks[i+1], ";") || punct(toks[i+1], "{") || punct(toks[i+1], "}") || !punct(toks[i+2], ";") {
				return bad("the " + t.word + " clause is malformed")
			}
			v := toks[i+1].word
			if t.word == "algorithm" {
				if k.algorithm != "" {
					return bad("the key statement has two algorithm clauses")
				}
				k.algorithm = strings.TrimSuffix(strings.ToLower(v), ".")
			} else {
				if k.secret != "" {
					return bad("the key statement has two secret clauses")
				}
				s, err := canonicalSecret(v)
				if err != nil {
					return bad("the secret clause is " + err.Error())
				}
				k.secret = s
			}
			i += 3
		default:
			return bad("the key statement has an unknown clause")
		}
	}
	if !closed {
		return bad("the key statement is not closed")
	}
	if i < len(toks) && punct(toks[i], ";") {
		i++
	}
	if i < len(toks) {
		return bad("the file holds more than the key statement")
	}
	if k.secret == "" {
		return bad("the key statement has no secret")
	}
	return k, nil
}

// DefaultTSIGAlgorithm is the TSIG algorithm used when none is configured.
const DefaultTSIGAlgorithm = "hmac-sha256"

// tsigAlgorithm returns miekg/dns's name for a tsig_algorithm value (or a
// BIND key statement's algorithm): one of config.TSIGAlgorithms, the one
// list of them, which miekg/dns names with a final dot (dns.HmacSHA256 is
// "hmac-sha256.").
func tsigAlgorithm(s string) (string, bool) {
	a := strings.TrimSuffix(strings.ToLower(s), ".")
	if !slices.Contains(config.TSIGAlgorithms, a) {
		return "", false
	}
	return dns.Fqdn(a), true
}
