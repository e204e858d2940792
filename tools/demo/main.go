// Command demo shows eipclaim at work without an AWS account: it starts
// moto (EC2, S3, Route 53) and the IMDS emulator on loopback, creates an
// instance, an Elastic IP and a hosted zone in them, and runs the real
// eipclaim binary as that instance would at boot; then it runs `eipclaim
// watch` on the holder and a standby, stops the holder's instance, and
// shows the standby take over by itself, with the hooks each ran; then the
// same for a role whose address is a secondary private IP (no EIP); last, it
// runs the same binary as the off-box controller's Lambda function (under
// AWS's runtime interface emulator) over a fleet of 40 roles, stops 4
// holders, and shows one schedule run move exactly their EIPs to their
// standbys. Run it with `make demo`.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run(ctx context.Context) (err error) {
	var emu testenv.Emulators
	defer emu.Close()
	// Every request the gate in front of moto denied is a defect of a
	// shipped policy (or of the code), as in the tests.
	defer func() {
		if err == nil {
			err = emu.GateError()
		}
		if err == nil {
			step("every AWS request eipclaim sent was judged by an IAM evaluator against the policy it ships")
			fmt.Println("    " + emu.GateSummary() + "; none denied")
		}
	}()

	step("building eipclaim")
	dir, err := os.MkdirTemp("", "eipclaim-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := testenv.Build(dir)
	if err != nil {
		return err
	}

	step("starting moto (EC2, S3, Route 53) on loopback")
	moto, err := emu.Moto()
	if err != nil {
		return err
	}
	fmt.Println("    moto at", moto.Endpoint)
	world := testenv.NewWorld(moto.Config())

	step("creating two instances (the old master and this one), an Elastic IP and a private hosted zone")
	instances, err := world.NewInstances(ctx, 2)
	if err != nil {
		return err
	}
	old, self := instances[0], instances[1]
	eip, err := world.NewEIP(ctx, nil)
	if err != nil {
		return err
	}
	alloc := eip.AllocationID
	zoneID, err := world.NewZone(ctx, "example.internal", true)
	if err != nil {
		return err
	}
	fmt.Printf("    old master %s, this instance %s\n    EIP %s (%s), zone example.internal (%s)\n", old.ID, self.ID, eip.PublicIP, alloc, zoneID)
	if err := world.Associate(ctx, alloc, old.ID); err != nil {
		return err
	}
	fmt.Printf("    the EIP starts on the old master %s\n", old.ID)

	userData := fmt.Sprintf(`#cloud-config
packages: [postgresql]
eipclaim:
  role: master-db
  roles:
    master-db:
      allocation_id: %s
      takeover: if-holder-down
      dns:
        route53: {zone_id: %s, name: master-db.example.internal, ttl: 60}
`, alloc, zoneID)
	step("starting the IMDS emulator for %s, with this #cloud-config user-data:", self.ID)
	fmt.Print(indent(userData))
	md, err := emu.IMDS(self.IMDSOptions(userData))
	if err != nil {
		return err
	}
	env := append(os.Environ(), append(moto.Env(), md.Env()...)...)
	eipclaim := func(args ...string) error {
		fmt.Printf("    $ eipclaim %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stdout
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			fmt.Printf("    (exit code %d)\n", ee.ExitCode())
			return nil
		}
		return err
	}

	step("boot: the old master is running and healthy, so the claim is refused (exit 4)")
	if err := eipclaim("--timeout", "30s"); err != nil {
		return err
	}

	step("the old master stops; this instance claims the EIP and publishes the CNAME")
	if _, err := world.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{old.ID}}); err != nil {
		return err
	}
	if err := eipclaim("--timeout", "60s"); err != nil {
		return err
	}

	step("a second run changes nothing: no remap, no DNS change; --json prints the failover step's outcome for scripts")
	if err := eipclaim("--timeout", "60s", "--json", "--log-level", "warn"); err != nil {
		return err
	}

	step("status")
	if err := eipclaim("status", "--timeout", "30s"); err != nil {
		return err
	}

	if err := showWorld(ctx, world, alloc, zoneID); err != nil {
		return err
	}
	if err := watchDemo(ctx, &emu, world, moto, bin, dir, alloc, zoneID); err != nil {
		return err
	}
	if err := privateDemo(ctx, &emu, world, moto, bin, dir, zoneID); err != nil {
		return err
	}
	if err := fleetDemo(ctx, &emu, world, moto, bin, dir); err != nil {
		return err
	}
	step("done in %s; the emulators stop now", time.Since(start).Round(time.Millisecond))
	return nil
}

// watchDemo shows automatic failover in under a second: a watcher on a
// holder and one on a standby, instances on a loopback VPC so that the
// standby's health_check dials the holder's service for real; each has
// hooks; the holder's instance and its service stop, the standby takes
// the EIP over by itself and runs on_holder, and the deposed holder's
// watcher runs on_standby.
func watchDemo(ctx context.Context, emu *testenv.Emulators, world *testenv.World, moto *testenv.Moto, bin, dir string, alloc, zoneID string) error {
	pair, err := world.NewLoopbackInstances(ctx, "127.0.1.10", "127.0.1.11")
	if err != nil {
		return err
	}
	holder, standby := pair[0], pair[1]
	const port = "15432"
	svc, err := net.Listen("tcp", net.JoinHostPort(holder.PrivateIP, port))
	if err != nil {
		return fmt.Errorf("the holder's service on %s:%s: %w", holder.PrivateIP, port, err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	step("a holder %s (%s) and a standby %s (%s) on a loopback VPC (%s), so that the standby's health check dials the holder's service (%s:%s) for real; the EIP moved to the holder",
		holder.ID, holder.PrivateIP, standby.ID, standby.PrivateIP, testenv.LoopbackSubnet, holder.PrivateIP, port)
	if err := world.Associate(ctx, alloc, holder.ID); err != nil {
		return err
	}
	hooksLog := dir + "/hooks.log"
	hook := func(event string) string {
		return fmt.Sprintf(`["/bin/sh", "-c", "echo \"  hook on $0: entered %s (epoch $EIPCLAIM_EPOCH, holder $EIPCLAIM_HOLDER): $EIPCLAIM_REASON\" >> %s", "$INSTANCE"]`, event, hooksLog)
	}
	conf := func(inst testenv.Instance) string {
		h := strings.ReplaceAll(hook("holder"), "$INSTANCE", inst.ID)
		sb := strings.ReplaceAll(hook("standby"), "$INSTANCE", inst.ID)
		return fmt.Sprintf(`#cloud-config
eipclaim:
  role: master-db
  roles:
    master-db:
      allocation_id: %s
      health_check: tcp:%s
      dns:
        route53: {zone_id: %s, name: master-db.example.internal, ttl: 60}
      watch: {interval: 250ms, fall: 2, hold_down: 10s}
      hooks:
        on_holder: %s
        on_standby: %s
`, alloc, port, zoneID, h, sb)
	}
	step("automatic failover: a watcher on each, with this user-data (the standby's); each look is a probe (the standby) or an IMDS read (the holder), free: EC2 is read on suspicion and every few minutes")
	fmt.Print(indent(conf(standby)))
	watchers, stopWatchers, err := startWatchers(ctx, emu, moto, bin, dir, "", conf, holder, standby)
	defer stopWatchers()
	if err != nil {
		return err
	}
	printHooks := func() {
		b, _ := os.ReadFile(hooksLog)
		fmt.Print(string(b))
		os.Truncate(hooksLog, 0)
	}
	time.Sleep(3 * time.Second)
	step("each watcher ran the hook of the state it found at start")
	printHooks()

	step("the holder's instance %s stops, and its service with it; the standby takes over by itself", holder.ID)
	stopped := time.Now()
	svc.Close()
	if _, err := world.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{holder.ID}}); err != nil {
		return err
	}
	for {
		a, err := world.Address(ctx, alloc)
		if err != nil {
			return err
		}
		if aws.ToString(a.NetworkInterfaceId) == standby.ENI {
			fmt.Printf("    the EIP is on the standby %s %s after %s\n", standby.ID, standby.ENI, time.Since(stopped).Round(10*time.Millisecond))
			break
		}
		if time.Since(stopped) > 60*time.Second {
			return fmt.Errorf("the standby did not take the EIP over within 60s: see %s", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The deposed holder stands down once its IMDS no longer lists the EIP
	// and EC2 agrees.
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(hooksLog)
		if strings.Contains(string(b), "hook on "+holder.ID+": entered standby") && strings.Contains(string(b), "hook on "+standby.ID+": entered holder") {
			break
		}
	}
	step("the new holder ran on_holder; the deposed holder's watcher (still running) ran on_standby")
	printHooks()

	step("SIGTERM to both watchers: they exit 0 and leave the EIP where it is")
	for _, w := range watchers {
		w.Process.Signal(syscall.SIGTERM)
	}
	for _, w := range watchers {
		err := w.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		fmt.Printf("    watcher %d exited %d\n", w.Process.Pid, code)
	}
	return showWorld(ctx, world, alloc, zoneID)
}

// startWatchers starts `eipclaim watch` on each instance, with its own
// IMDS serving conf(instance) as user-data, its output in
// dir/watch-LABELinstance.log. stop kills the watchers still running and
// closes the logs; it is to be called whatever startWatchers returned.
func startWatchers(ctx context.Context, emu *testenv.Emulators, moto *testenv.Moto, bin, dir, label string, conf func(testenv.Instance) string, insts ...testenv.Instance) (watchers []*exec.Cmd, stop func(), err error) {
	var logs []*os.File
	stop = func() {
		for _, w := range watchers {
			if w.ProcessState == nil {
				w.Process.Kill()
				w.Wait()
			}
		}
		for _, f := range logs {
			f.Close()
		}
	}
	for _, inst := range insts {
		md, err := emu.IMDS(inst.IMDSOptions(conf(inst)))
		if err != nil {
			return watchers, stop, err
		}
		logf, err := os.Create(dir + "/watch-" + label + inst.ID + ".log")
		if err != nil {
			return watchers, stop, err
		}
		logs = append(logs, logf)
		cmd := exec.CommandContext(ctx, bin, "watch")
		cmd.Env = append(os.Environ(), append(moto.Env(), md.Env()...)...)
		cmd.Stdout, cmd.Stderr = logf, logf
		fmt.Printf("    $ eipclaim watch    (on %s, logs in %s)\n", inst.ID, logf.Name())
		if err := cmd.Start(); err != nil {
			return watchers, stop, err
		}
		watchers = append(watchers, cmd)
	}
	return watchers, stop, nil
}

// showWorld prints what EC2 and Route 53 say of the EIP and the zone.
func showWorld(ctx context.Context, world *testenv.World, alloc, zoneID string) error {
	step("what EC2 and Route 53 say now")
	a, err := world.Address(ctx, alloc)
	if err != nil {
		return err
	}
	fmt.Printf("    %s is associated (%s) with %s\n", aws.ToString(a.PublicIp), aws.ToString(a.AssociationId), aws.ToString(a.NetworkInterfaceId))
	for _, tg := range a.Tags {
		fmt.Printf("    tag %s = %s\n", aws.ToString(tg.Key), aws.ToString(tg.Value))
	}
	rrs, err := world.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if err != nil {
		return err
	}
	for _, rr := range rrs.ResourceRecordSets {
		if rr.Type == r53types.RRTypeCname {
			fmt.Printf("    %s %d CNAME %s\n", aws.ToString(rr.Name), aws.ToInt64(rr.TTL), aws.ToString(rr.ResourceRecords[0].Value))
		}
	}
	return nil
}

var start = time.Now()

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}
