package testenv_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestKilledTestBinaryLeavesNoEmulator runs a test binary that starts an
// IMDS emulator, kills that binary with SIGKILL (so no cleanup runs), and
// wants the emulator dead too.
func TestKilledTestBinaryLeavesNoEmulator(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartIMDSAndHang$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTENV_HELPER=hang")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	type started struct {
		endpoint string
		pid      int
	}
	ready := make(chan started, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var st started
			if _, err := fmt.Sscanf(s.Text(), "STARTED %s %d", &st.endpoint, &st.pid); err == nil {
				ready <- st
			}
		}
	}()
	var st started
	select {
	case st = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the helper test binary did not start an emulator within 30s")
	}
	if !answers(st.endpoint + "/latest/api/token") {
		t.Fatalf("emulator at %s does not answer while its test binary runs", st.endpoint)
	}
	if !alive(st.pid) {
		t.Fatalf("emulator pid %d is not running while its test binary runs", st.pid)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, no Main
		t.Fatal(err)
	}
	cmd.Wait()
	// Only look at the process: a request would make the emulator log to
	// its dead parent's pipe and die of SIGPIPE, proving nothing.
	deadline := time.Now().Add(5 * time.Second)
	for alive(st.pid) {
		if time.Now().After(deadline) {
			syscallKill(st.pid)
			t.Fatalf("emulator pid %d still runs 5s after its test binary was killed", st.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHelperStartIMDSAndHang is the child of
// TestKilledTestBinaryLeavesNoEmulator; run on its own it does nothing.
func TestHelperStartIMDSAndHang(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "hang" {
		return
	}
	e := testenv.StartIMDS(t, testenv.IMDSOptions{InstanceID: "i-0123456789abcdef0"})
	kids := childPIDs(t)
	if len(kids) != 1 {
		t.Fatalf("want one child process, have %v", kids)
	}
	fmt.Printf("STARTED %s %d\n", e.Endpoint, kids[0])
	time.Sleep(time.Minute)
}

func childPIDs(t *testing.T) []int {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func answers(url string) bool {
	req, _ := http.NewRequest(http.MethodPut, url, nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	resp, err := (&http.Client{Timeout: time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
