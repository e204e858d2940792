package faultproxy_test

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// proof reports whether the long runs were asked for (make proof).
func proof() bool { return os.Getenv("EIPCLAIM_PROOF") == "1" }

// cloud is one moto server seen through the AWS SDK.
type cloud struct {
	t    testing.TB
	moto *testenv.Moto
	ec2  *ec2.Client
}

func newCloud(t testing.TB, moto *testenv.Moto) *cloud {
	return &cloud{t: t, moto: moto, ec2: ec2.NewFromConfig(moto.Config())}
}

// instance is an instance created in moto, and its primary interface.
type instance struct{ id, eni string }

// runInstances creates n instances in one call.
func (c *cloud) runInstances(n int) []instance {
	c.t.Helper()
	out, err := c.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)), InstanceType: types.InstanceTypeT3Micro,
	})
	if err != nil {
		c.t.Fatalf("RunInstances: %v", err)
	}
	var is []instance
	for _, i := range out.Instances {
		in := instance{id: aws.ToString(i.InstanceId)}
		for _, n := range i.NetworkInterfaces {
			if n.Attachment != nil && aws.ToInt32(n.Attachment.DeviceIndex) == 0 {
				in.eni = aws.ToString(n.NetworkInterfaceId)
			}
		}
		if in.eni == "" {
			c.t.Fatalf("instance %s has no primary interface: %+v", in.id, i.NetworkInterfaces)
		}
		is = append(is, in)
	}
	return is
}

// allocate creates n EIPs tagged with tags, and returns their allocation ids.
func (c *cloud) allocate(n int, tags map[string]string) []string {
	c.t.Helper()
	var ids []string
	for range n {
		in := &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}
		if len(tags) > 0 {
			spec := types.TagSpecification{ResourceType: types.ResourceTypeElasticIp}
			for k, v := range tags {
				spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			in.TagSpecifications = []types.TagSpecification{spec}
		}
		out, err := c.ec2.AllocateAddress(context.Background(), in)
		if err != nil {
			c.t.Fatalf("AllocateAddress: %v", err)
		}
		ids = append(ids, aws.ToString(out.AllocationId))
	}
	return ids
}

// addresses returns every EIP by allocation id.
func (c *cloud) addresses() map[string]types.Address {
	c.t.Helper()
	out, err := c.ec2.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
	if err != nil {
		c.t.Fatalf("DescribeAddresses: %v", err)
	}
	m := map[string]types.Address{}
	for _, a := range out.Addresses {
		m[aws.ToString(a.AllocationId)] = a
	}
	return m
}

// claimer is one eipclaim process on its own instance, with its own IMDS
// emulator, each of its endpoints behind a proxy of its own so that the
// proxies' counts are this claimer's alone.
type claimer struct {
	inst     instance
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
	return fmt.Sprintf("claimer %s (exit %d in %s)\nstdout: %s\nstderr:\n%s", c.inst.id, c.code, c.took.Round(time.Millisecond), c.stdout, c.stderr)
}

// fleet runs claimers against one moto.
type fleet struct {
	t       testing.TB
	bin     string
	moto    *testenv.Moto
	timeout time.Duration
	// imdsOpts and ec2Opts make each claimer's proxies; seed is the
	// claimer's index.
	imdsOpts, ec2Opts func(seed uint64) faultproxy.Options
	// env is added to each claimer's environment.
	env []string
}

// run runs the claimers, at most parallel at once, each with its IMDS
// emulator started just before it (and stopped after it).
func (f *fleet) run(claimers []*claimer, parallel int) {
	f.t.Helper()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	errs := make(chan error, len(claimers))
	for i, c := range claimers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f.runOne(uint64(i+1), c); err != nil {
				errs <- fmt.Errorf("%s: %w", c.inst.id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Error(err)
	}
}

func (f *fleet) runOne(seed uint64, c *claimer) error {
	var emu testenv.Emulators
	defer emu.Close()
	md, err := emu.IMDS(testenv.IMDSOptions{InstanceID: c.inst.id, Region: testenv.MotoRegion, UserData: []byte(c.userData)})
	if err != nil {
		return err
	}
	var io, eo faultproxy.Options
	if f.imdsOpts != nil {
		io = f.imdsOpts(seed)
	}
	if f.ec2Opts != nil {
		eo = f.ec2Opts(seed)
	}
	// The proxies start now: IMDS's DownFor counts from this claimer's boot.
	if c.imds, err = faultproxy.New(md.Endpoint, io); err != nil {
		return err
	}
	defer c.imds.Close()
	if c.ec2, err = faultproxy.New(f.moto.Endpoint, eo); err != nil {
		return err
	}
	defer c.ec2.Close()
	moto := &testenv.Moto{Endpoint: c.ec2.URL}
	env := append(os.Environ(), moto.Env()...)
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+c.imds.URL, "AWS_EC2_METADATA_DISABLED=false", "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	env = append(env, f.env...)
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, "claim", "--log-format", "json", "--timeout", f.timeout.String())
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
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(c.stderr))
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			c.logs = append(c.logs, l)
		}
	}
	return nil
}

// TestExplore prints one claim's requests.
func TestExplore(t *testing.T) {
	moto := testenv.SharedMoto(t)
	cl := newCloud(t, moto)
	inst := cl.runInstances(1)[0]
	alloc := cl.allocate(1, nil)[0]
	plan := func(action string, n int) faultproxy.Kind {
		for _, spec := range strings.Split(os.Getenv("EXPLORE_PLAN"), ";") {
			a, rest, ok := strings.Cut(spec, "=")
			if !ok || a != action {
				continue
			}
			k, cnt, _ := strings.Cut(rest, "*")
			var times int
			fmt.Sscan(cnt, &times)
			if n <= times {
				for kk := faultproxy.None; kk <= faultproxy.Down; kk++ {
					if kk.String() == k {
						return kk
					}
				}
			}
		}
		return faultproxy.None
	}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 20 * time.Second,
		imdsOpts: func(uint64) faultproxy.Options { return faultproxy.Options{Plan: plan} },
		ec2Opts:  func(uint64) faultproxy.Options { return faultproxy.Options{Plan: plan} },
	}
	c := &claimer{inst: inst, alloc: alloc, userData: "role: db\nroles:\n  db:\n    allocation_id: " + alloc + "\n"}
	f.run([]*claimer{c}, 1)
	t.Log(c)
	for _, p := range []*faultproxy.Proxy{c.imds, c.ec2} {
		for _, r := range p.Records() {
			t.Logf("%3d %-45s %-8s %3d attempt=%d %s", r.Seq, r.Action, r.Fault, r.Status, r.Attempt, r.Upstream)
		}
	}
}
