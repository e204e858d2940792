package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RIEVersion is the pinned AWS Lambda runtime interface emulator
// (github.com/aws/aws-lambda-runtime-interface-emulator), which
// scripts/tools.sh installs.
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

var rieTool = tool{
	name:     "aws-lambda-rie",
	env:      "AWS_LAMBDA_RIE",
	fallback: []string{"~/go/bin"},
	install:  "bash scripts/tools.sh  (or: GOBIN=$PWD/.tools/bin go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@" + RIEVersion + ")",
}

// RIE is a running Lambda runtime interface emulator with one function.
type RIE struct {
	// Endpoint is http://127.0.0.1:PORT; Invoke posts to its invocation
	// path.
	Endpoint string
	proc     *process
}

// StartRIE runs bootstrap (see [Bootstrap]) as a Lambda function under the
// runtime interface emulator, with env (KEY=VALUE, such as [Moto.Env])
// added to the function's environment; it stops when t ends. The function
// starts at the first invocation, as on Lambda. (Programs:
// [Emulators.RIE].)
func StartRIE(t testing.TB, bootstrap string, env ...string) *RIE {
	t.Helper()
	began := time.Now()
	p, port, err := rieLaunch(bootstrap, env).run()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanupProcess(t, p)
	t.Logf("testenv: aws-lambda-rie ready on 127.0.0.1:%d in %s", port, since(began))
	return &RIE{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), proc: p}
}

// RIE runs bootstrap as a Lambda function under the runtime interface
// emulator, as [StartRIE] does, until e is closed. bootstrap is an
// eipclaim binary named bootstrap (the provided.al2023 runtime's name,
// which makes it run `eipclaim lambda`), e.g. a symbolic link to [Build]'s.
func (e *Emulators) RIE(bootstrap string, env ...string) (*RIE, error) {
	p, port, err := rieLaunch(bootstrap, env).run()
	if err != nil {
		return nil, err
	}
	e.add(p)
	return &RIE{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), proc: p}, nil
}

// rieLaunch is how the emulator starts, with Lambda's environment for the
// function: AWS_LAMBDA_FUNCTION_TIMEOUT as the template's.
func rieLaunch(bootstrap string, env []string) launch {
	return launch{
		name:    "aws-lambda-rie",
		tool:    rieTool,
		timeout: 30 * time.Second,
		prepare: func(port int) ([]string, []string, string, error) {
			apiPort, err := pickPort()
			if err != nil {
				return nil, nil, "", err
			}
			args := []string{
				"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", port),
				"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort),
				bootstrap,
			}
			e := append(baseEnv("AWS_", "EIPCLAIM_", "_LAMBDA", "LAMBDA_"), "AWS_LAMBDA_FUNCTION_TIMEOUT=120")
			return args, append(e, env...), filepath.Dir(bootstrap), nil
		},
		ready: func(port int) error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), probeTimeout)
			if err != nil {
				return err
			}
			return c.Close()
		},
	}
}

// Invocation is what one invocation answered.
type Invocation struct {
	Body []byte
	// FunctionError is the X-Amz-Function-Error header: set when the
	// handler returned an error (Body then holds errorMessage and
	// errorType).
	FunctionError string
	Took          time.Duration
}

// Invoke posts event to the function and returns its answer; an error
// fails the test.
func (r *RIE) Invoke(t testing.TB, event []byte) Invocation {
	t.Helper()
	inv, err := r.Call(event)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return inv
}

// Call posts event to the function and returns its answer (a function
// error is in the Invocation, not an error).
func (r *RIE) Call(event []byte) (Invocation, error) {
	began := time.Now()
	client := http.Client{Timeout: 3 * time.Minute}
	resp, err := client.Post(r.Endpoint+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(event))
	if err != nil {
		return Invocation{}, fmt.Errorf("invoke the function: %w\n--- last output of aws-lambda-rie ---\n%s", err, r.proc.tail())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Invocation{}, fmt.Errorf("read the invocation's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return Invocation{}, fmt.Errorf("invoke the function: %s: %s\n--- last output of aws-lambda-rie ---\n%s", resp.Status, body, r.proc.tail())
	}
	return Invocation{Body: body, FunctionError: resp.Header.Get("X-Amz-Function-Error"), Took: time.Since(began)}, nil
}

// Output returns the last lines the emulator and the function printed.
func (r *RIE) Output() string { return r.proc.tail() }

var bootstrapBuild struct {
	sync.Mutex
	done      bool
	dir, path string
	err       error
}

// Bootstrap builds cmd/eipclaim as a Lambda custom runtime's executable,
// named bootstrap, with -tags lambda.norpc as `make
// lambda` does, the first time it is called in a test process; [Main]
// removes it.
func Bootstrap(t testing.TB) string {
	t.Helper()
	bootstrapBuild.Lock()
	defer bootstrapBuild.Unlock()
	if !bootstrapBuild.done {
		bootstrapBuild.done = true
		began := time.Now()
		bootstrapBuild.path, bootstrapBuild.err = buildBootstrap()
		if bootstrapBuild.err == nil {
			t.Logf("testenv: built %s as bootstrap in %s", EipclaimPackage, since(began))
		}
	}
	if bootstrapBuild.err != nil {
		t.Fatalf("testenv: %v", bootstrapBuild.err)
	}
	return bootstrapBuild.path
}

func buildBootstrap() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "testenv-bootstrap-")
	if err != nil {
		return "", err
	}
	bootstrapBuild.dir = dir
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build bootstrap: %w", err)
	}
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command(goBin, "build", "-tags", ReleaseTags, "-o", out, EipclaimPackage)
	// Built as every other test binary of eipclaim (go vet's and the
	// tests' settings, not the release's static ones), so that on a cold
	// build cache they all share one compile of the SDK. The release's
	// bootstrap (make lambda) is static.
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags lambda.norpc %s: %w\n%s", EipclaimPackage, err, b)
	}
	return out, nil
}

func removeBootstrap() {
	bootstrapBuild.Lock()
	defer bootstrapBuild.Unlock()
	if bootstrapBuild.dir != "" {
		os.RemoveAll(bootstrapBuild.dir)
	}
}
