package proof_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// proof reports whether the long runs were asked for (make proof).
func proof() bool { return os.Getenv("EIPCLAIM_PROOF") == "1" }

// allocate creates n EIPs tagged with tags, and returns their allocation ids.
func allocate(w *testenv.TestWorld, n int, tags map[string]string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = w.NewEIP(tags).AllocationID
	}
	return ids
}

// claimer is one eipclaim process on its own instance, with its own IMDS
// emulator, each of its endpoints behind a proxy of its own so that the
// proxies' counts are this claimer's alone.
type claimer struct {
	inst     testenv.Instance
	userData string
	alloc    string // the EIP it should end up holding, "" for a pool
	// Set by start:
	imds, ec2 *faultproxy.Proxy
	// Set by run:
	code   int
	took   time.Duration
	stdout string
	stderr string
	logs   []logLine
}

// logLine is one line of --log-format json.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Op        string `json:"op"`
	Attempt   int    `json:"attempt"`
	ErrorCode string `json:"error_code"`
	NextDelay string `json:"next_delay"`
	Error     string `json:"error"`
}

// retries are the lines of the claim loop's retried attempts.
func (c *claimer) retries() []logLine {
	var r []logLine
	for _, l := range c.logs {
		if l.Msg == "attempt failed, will retry" {
			r = append(r, l)
		}
	}
	return r
}

func (c *claimer) String() string {
	return fmt.Sprintf("claimer %s (exit %d in %s)\nstdout: %s\nstderr:\n%s", c.inst.ID, c.code, c.took.Round(time.Millisecond), c.stdout, c.stderr)
}

// fleet runs claimers against one moto.
type fleet struct {
	t       testing.TB
	bin     string
	moto    *testenv.Moto
	timeout time.Duration
	// imdsOpts and ec2Opts make each claimer's proxies; seed is the
	// claimer's number in the fleet, from 1.
	imdsOpts, ec2Opts func(seed uint64) faultproxy.Options
	// env is added to each claimer's environment, args to its command line.
	env, args []string
	// command is the subcommand run: claim when "".
	command string
	// seeds counts the claimers run, across calls to run.
	seeds uint64
	// claiming is the time from the claimers' start to the last one's
	// exit, summed over the batches (the emulators' start not included).
	claiming time.Duration
}

// run runs the claimers in batches of batch: the batch's IMDS emulators
// start first, then its claimers all at once (each with fresh proxies, so
// that an outage window counts from its own boot), and the emulators stop
// when the batch is done.
func (f *fleet) run(claimers []*claimer, batch int) {
	f.t.Helper()
	for len(claimers) > 0 {
		n := min(batch, len(claimers))
		f.runBatch(claimers[:n])
		claimers = claimers[n:]
	}
}

func (f *fleet) runBatch(claimers []*claimer) {
	f.t.Helper()
	var emu testenv.Emulators
	defer emu.Close()
	// Each emulator answers as its claimer's instance: testenv checks it
	// (before 41d0171 two emulators started at once could share a port, and
	// two claimers one identity).
	mds := make([]*testenv.IMDS, len(claimers))
	for i, c := range claimers {
		md, err := emu.IMDS(c.inst.IMDSOptions(c.userData))
		if err != nil {
			f.t.Fatal(err)
		}
		mds[i] = md
	}
	errs := make([]error, len(claimers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range claimers {
		f.seeds++
		seed := f.seeds
		wg.Go(func() {
			<-start
			errs[i] = f.runOne(seed, c, mds[i])
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	f.claiming += time.Since(began)
	if err := errors.Join(errs...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) runOne(seed uint64, c *claimer, md *testenv.IMDS) error {
	var imdsOpts, ec2Opts faultproxy.Options
	if f.imdsOpts != nil {
		imdsOpts = f.imdsOpts(seed)
	}
	if f.ec2Opts != nil {
		ec2Opts = f.ec2Opts(seed)
	}
	var err error
	// The proxies start now: IMDS's DownFor counts from this claimer's boot.
	if c.imds, err = faultproxy.New(md.Endpoint, imdsOpts); err != nil {
		return err
	}
	defer c.imds.Close()
	if c.ec2, err = faultproxy.New(f.moto.Endpoint, ec2Opts); err != nil {
		return err
	}
	defer c.ec2.Close()
	moto := &testenv.Moto{Endpoint: c.ec2.URL}
	env := append(os.Environ(), moto.Env()...)
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+c.imds.URL, "AWS_EC2_METADATA_DISABLED=false", "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	env = append(env, f.env...)
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout+30*time.Second)
	defer cancel()
	command := f.command
	if command == "" {
		command = "claim"
	}
	cmd := exec.CommandContext(ctx, f.bin, append([]string{command, "--log-format", "json", "--timeout", f.timeout.String()}, f.args...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err = cmd.Run()
	c.took = time.Since(began)
	c.stdout, c.stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		c.code = ee.ExitCode()
	case err != nil:
		return fmt.Errorf("%s: %w", c.inst.ID, err)
	}
	sc := bufio.NewScanner(strings.NewReader(c.stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			c.logs = append(c.logs, l)
		}
	}
	return nil
}
