package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToolFind(t *testing.T) {
	dir := t.TempDir()
	missing := tool{name: "testenv-no-such-tool", env: "TESTENV_NO_SUCH_TOOL", fallback: []string{dir}, install: "apt-get install no-such-tool"}

	t.Run("not anywhere", func(t *testing.T) {
		t.Setenv("TESTENV_NO_SUCH_TOOL", "")
		_, err := missing.find()
		if err == nil {
			t.Fatal("find() found a tool that does not exist")
		}
		for _, want := range []string{"testenv-no-such-tool not found", "$TESTENV_NO_SUCH_TOOL", ".tools", "PATH", dir, "install it with: apt-get install no-such-tool"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	t.Run("override names a missing file", func(t *testing.T) {
		t.Setenv("TESTENV_NO_SUCH_TOOL", filepath.Join(dir, "nope"))
		if _, err := missing.find(); err == nil || !strings.Contains(err.Error(), "TESTENV_NO_SUCH_TOOL=") {
			t.Errorf("find() error = %v, want one naming the variable", err)
		}
	})
	t.Run("override wins", func(t *testing.T) {
		exe := filepath.Join(dir, "mine")
		if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TESTENV_NO_SUCH_TOOL", exe)
		if got, err := missing.find(); err != nil || got != exe {
			t.Errorf("find() = %q, %v; want %q", got, err, exe)
		}
	})
	t.Run("fallback directory", func(t *testing.T) {
		t.Setenv("TESTENV_NO_SUCH_TOOL", "")
		exe := filepath.Join(dir, "testenv-no-such-tool")
		if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(exe)
		if got, err := missing.find(); err != nil || got != exe {
			t.Errorf("find() = %q, %v; want %q", got, err, exe)
		}
	})
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module github.com/eipclaim/eipclaim\n") {
		t.Errorf("moduleRoot() = %s: go.mod is not eipclaim's (%v)", root, err)
	}
}

// TestPortCollision starts each emulator on a port that is already taken
// and wants the harness to notice and move to another port.
func TestPortCollision(t *testing.T) {
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "aemm.json")
	if err := os.WriteFile(conf, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(tmp, "zone.db")
	if err := os.WriteFile(zoneFile, []byte(zoneText("example.internal.")), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &BIND{Zone: "example.internal.", KeyName: "k.", KeyAlgorithm: "hmac-sha256", Secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}
	launches := []launch{
		motoLaunch(tmp),
		imdsLaunch(conf, IMDSOptions{}, tmp),
		bindLaunch(b, tmp, zoneFile),
	}
	for _, l := range launches {
		t.Run(l.name, func(t *testing.T) {
			tcp, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer tcp.Close()
			busy := tcp.Addr().(*net.TCPAddr).Port
			udp, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", busy))
			if err != nil {
				t.Fatal(err)
			}
			defer udp.Close()

			calls := pickFirst(t, busy)
			p, port, err := l.run()
			if err != nil {
				t.Fatalf("run() on a busy port: %v", err)
			}
			defer p.stop()
			if port == busy || *calls < 2 {
				t.Errorf("run() used port %d after %d picks; want a port other than the busy %d", port, *calls, busy)
			}
			if err := l.ready(port); err != nil {
				t.Errorf("not ready on its new port %d: %v", port, err)
			}
		})
	}
}

// TestIMDSPortServedByAnother gives an IMDS emulator a port on which another
// emulator already answers, as when two test processes pick one port at the
// same moment: the readiness probe is answered, but as another instance,
// and the harness must move to another port rather than hand out an
// emulator that says it is somebody else.
func TestIMDSPortServedByAnother(t *testing.T) {
	start := func(o IMDSOptions) (*process, int, error) {
		dir := t.TempDir()
		conf, err := writeAEMMConfig(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return imdsLaunch(conf, o, dir).run()
	}
	other, busy, err := start(IMDSOptions{InstanceID: "i-0aaaaaaaaaaaaaaaa"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.stop()

	calls := pickFirst(t, busy)
	mine := IMDSOptions{InstanceID: "i-0bbbbbbbbbbbbbbbb"}
	p, port, err := start(mine)
	if err != nil {
		t.Fatalf("run() on a port another emulator serves: %v", err)
	}
	defer p.stop()
	if port == busy || *calls < 2 {
		t.Errorf("run() used port %d after %d picks; want a port other than %d, where another emulator answers", port, *calls, busy)
	}
	if id, err := instanceID(fmt.Sprintf("http://127.0.0.1:%d", port)); err != nil || id != mine.InstanceID {
		t.Errorf("the emulator on port %d answers as %q (%v), want %q", port, id, err, mine.InstanceID)
	}
}

// pickFirst makes the next emulator start pick port first, then free ports,
// until t ends; it returns the number of picks made.
func pickFirst(t *testing.T, port int) *int {
	calls := new(int)
	pickPort = func() (int, error) {
		*calls++
		if *calls == 1 {
			return port, nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })
	return calls
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 16}
	fmt.Fprint(b, "one\ntwo\nthree\nfour\nfive\n")
	if got := b.String(); len(got) != 16 || !strings.HasSuffix(got, "four\nfive\n") {
		t.Errorf("String() = %q, want the last 16 bytes", got)
	}
	if got, want := b.lastLines(2), "four\nfive"; got != want {
		t.Errorf("lastLines(2) = %q, want %q", got, want)
	}
}

func TestLooksLikeCollision(t *testing.T) {
	tests := []struct {
		out  string
		want bool
	}{
		{"panic: listen tcp 127.0.0.1:1338: bind: address already in use", true},          // AEMM
		{"OSError: [Errno 98] Address already in use", true},                              // moto (werkzeug)
		{"25-Nov-2026 02:03:00.681 unable to listen on any configured interfaces", true},  // named
		{"25-Nov-2026 02:03:00.681 could not listen on UDP socket: address in use", true}, // named
		{"25-Nov-2026 02:07:59.765 running", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := looksLikeCollision(tc.out); got != tc.want {
			t.Errorf("looksLikeCollision(%q) = %t, want %t", tc.out, got, tc.want)
		}
	}
}
