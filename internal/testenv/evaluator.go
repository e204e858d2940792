package testenv

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// The IAM evaluator: tools/iamgate/evaluate.js under node, with
// @cloud-copilot/iam-simulate from .tools/iamgate/node_modules (installed by
// scripts/tools.sh; IAMGATE_NODE_MODULES overrides). One process per test
// binary, started at the first evaluation, stopped by [Main] (and killed
// with the test binary).

var nodeTool = tool{
	name:     "node",
	env:      "NODE_BIN",
	fallback: []string{"/usr/bin", "/usr/local/bin"},
	install:  "apt-get install nodejs npm, then bash scripts/tools.sh",
}

// Decision is what the evaluator said about one (action, resource, context).
type Decision struct {
	Decision     string   `json:"decision"` // Allowed, ImplicitlyDenied, ExplicitlyDenied
	ResourceType string   `json:"resourceType"`
	Ignored      []string `json:"ignored"` // context keys the action does not take
	Error        string   `json:"error"`   // the evaluator could not evaluate it
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool {
	return d.Error == "" && d.Decision == "Allowed" && len(d.Ignored) == 0
}

type evalRequest struct {
	ID       int64           `json:"id"`
	Policy   json.RawMessage `json:"policy"`
	Action   string          `json:"action"`
	Resource string          `json:"resource"`
	Context  map[string]any  `json:"context"`
}

type evaluator struct {
	proc  *process
	stdin io.WriteCloser
	wmu   sync.Mutex // serializes the lines written to stdin
	mu    sync.Mutex // guards next, wait and dead
	next  int64
	wait  map[int64]chan Decision
	dead  error
	cache sync.Map // string -> Decision
}

var evaluators struct {
	sync.Mutex
	e *evaluator
}

// sharedEvaluator returns the test binary's evaluator, starting it if
// needed.
func sharedEvaluator() (*evaluator, error) {
	evaluators.Lock()
	defer evaluators.Unlock()
	if e := evaluators.e; e != nil {
		e.mu.Lock()
		dead := e.dead
		e.mu.Unlock()
		if dead == nil {
			return e, nil
		}
	}
	e, err := startEvaluator()
	if err != nil {
		return nil, err
	}
	evaluators.e = e
	return e, nil
}

func nodeModules() (string, error) {
	if d := os.Getenv("IAMGATE_NODE_MODULES"); d != "" {
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(root, ".tools", "iamgate", "node_modules")
	if _, err := os.Stat(filepath.Join(d, "@cloud-copilot", "iam-simulate")); err != nil {
		return "", fmt.Errorf("the IAM evaluator is not installed in %s (run bash scripts/tools.sh, or set IAMGATE_NODE_MODULES)", d)
	}
	return d, nil
}

func startEvaluator() (*evaluator, error) {
	node, err := nodeTool.find()
	if err != nil {
		return nil, err
	}
	mods, err := nodeModules()
	if err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	out := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(node, filepath.Join(root, "tools", "iamgate", "evaluate.js"))
	cmd.Env = append(baseEnv("NODE_"), "NODE_PATH="+mods)
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	setProcAttr(cmd)
	if err := startCmd(cmd); err != nil {
		return nil, fmt.Errorf("start the IAM evaluator: %w", err)
	}
	p := &process{name: "iam-evaluator", cmd: cmd, out: out, done: make(chan struct{})}
	live.Lock()
	if live.procs == nil {
		live.procs = map[*process]bool{}
	}
	live.procs[p] = true
	live.Unlock()
	e := &evaluator{proc: p, stdin: stdin, wait: map[int64]chan Decision{}}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var d struct {
				ID int64 `json:"id"`
				Decision
			}
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				continue
			}
			e.mu.Lock()
			c := e.wait[d.ID]
			delete(e.wait, d.ID)
			e.mu.Unlock()
			if c != nil {
				c <- d.Decision
			}
		}
		p.err = cmd.Wait()
		e.mu.Lock()
		e.dead = fmt.Errorf("the IAM evaluator exited (%v): %s", p.err, out.lastLines(10))
		for id, c := range e.wait {
			c <- Decision{Error: e.dead.Error()}
			delete(e.wait, id)
		}
		e.mu.Unlock()
		close(p.done)
	}()
	return e, nil
}

// evaluate asks the evaluator, or its cache.
func (e *evaluator) evaluate(policy json.RawMessage, action, resource string, ctx map[string]any) Decision {
	cb, _ := json.Marshal(ctx) // map keys sorted: a stable key
	sum := sha256.Sum256(policy)
	key := fmt.Sprintf("%x|%s|%s|%s", sum[:8], action, resource, cb)
	if d, ok := e.cache.Load(key); ok {
		return d.(Decision)
	}
	c := make(chan Decision, 1)
	e.mu.Lock()
	if e.dead != nil {
		e.mu.Unlock()
		return Decision{Error: e.dead.Error()}
	}
	e.next++
	id := e.next
	e.wait[id] = c
	e.mu.Unlock()
	line, err := json.Marshal(evalRequest{ID: id, Policy: policy, Action: action, Resource: resource, Context: ctx})
	if err == nil {
		e.wmu.Lock()
		_, err = e.stdin.Write(append(line, '\n'))
		e.wmu.Unlock()
	}
	if err != nil {
		e.mu.Lock()
		delete(e.wait, id)
		e.mu.Unlock()
		return Decision{Error: fmt.Sprintf("send to the IAM evaluator: %v", err)}
	}
	select {
	case d := <-c:
		if d.Error == "" {
			e.cache.Store(key, d)
		}
		return d
	case <-time.After(30 * time.Second):
		return Decision{Error: errors.New("the IAM evaluator did not answer in 30s").Error()}
	}
}
