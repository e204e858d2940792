// Command demo shows eipclaim at work without an AWS account: it starts
// moto (EC2, S3, Route 53) and the IMDS emulator on loopback, creates an
// instance, an Elastic IP and a hosted zone in them, and runs the real
// eipclaim binary as that instance would at boot. Run it with `make demo`.
package main

import (
	"context"
	"fmt"
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

func run(ctx context.Context) error {
	var emu testenv.Emulators
	defer emu.Close()

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
	step("done in %s; the emulators stop now", time.Since(start).Round(time.Millisecond))
	return nil
}

var start = time.Now()

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}
