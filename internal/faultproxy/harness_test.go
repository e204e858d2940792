package faultproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// newCloudConfig is a cloud seen with cfg (other credentials).
func newCloudConfig(t testing.TB, cfg aws.Config) *cloud {
	return &cloud{t: t, ec2: ec2.NewFromConfig(cfg)}
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
	// claimer's number in the fleet, from 1.
	imdsOpts, ec2Opts func(seed uint64) faultproxy.Options
	// env is added to each claimer's environment.
	env []string
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
	// Each emulator is asked who it is, and started again if it is
	// somebody else: before testenv serialized its starts (41d0171), two
	// emulators started at once could be handed the same port, and the
	// loser's readiness probe was answered by the winner, giving two
	// claimers one identity.
	mds := make([]*testenv.IMDS, len(claimers))
	errs := make([]error, len(claimers))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range claimers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for try := 1; ; try++ {
				md, err := emu.IMDS(testenv.IMDSOptions{InstanceID: c.inst.id, Region: testenv.MotoRegion, UserData: []byte(c.userData)})
				if err != nil {
					errs[i] = err
					return
				}
				id, err := instanceID(md.Endpoint)
				if err == nil && id == c.inst.id {
					mds[i] = md
					return
				}
				if try == 3 {
					errs[i] = fmt.Errorf("the IMDS emulator started for %s at %s says instance-id %q (%v)", c.inst.id, md.Endpoint, id, err)
					return
				}
				f.t.Logf("PROOF harness: the IMDS emulator started for %s at %s says instance-id %q (%v): another emulator has its port; starting it again", c.inst.id, md.Endpoint, id, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.t.Fatal(err)
	}
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
		return fmt.Errorf("%s: %w", c.inst.id, err)
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

// instanceID asks an IMDS emulator who it says the instance is (IMDSv2).
func instanceID(endpoint string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, endpoint+"/latest/api/token", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	token, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, endpoint+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token", string(token))
	if resp, err = client.Do(req); err != nil {
		return "", err
	}
	defer resp.Body.Close()
	id, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(id)), err
}
