package fetch

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Get "https://b.s3.amazonaws.com/k.yaml?X-Amz-Signature=abc&X-Amz-Credential=AKIA": EOF`, `Get "https://b.s3.amazonaws.com/k.yaml": EOF`},
		{"GET https://user:pw@host/p#frag giving up", "GET https://host/p giving up"},
		{"no url here", "no url here"},
	}
	for _, tc := range tests {
		if got := RedactText(tc.in); got != tc.want {
			t.Errorf("RedactText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"https://h/p?sig=1":        "https://h/p",
		"https://u:p@h/p?sig=1#x":  "https://h/p",
		"/etc/eipclaim.yaml":       "/etc/eipclaim.yaml",
		"s3://b/k":                 "s3://b/k",
		"https://h/%zz?sig=secret": "https://h/%zz",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
