package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// imdsLists reports whether inst's IMDS lists the world's EIP among the
// public addresses of its interfaces (meta-data/network/interfaces/macs/
// MAC/public-ipv4s), as AWS's does on the instance that holds it. The IMDS
// emulator alone serves canned answers there; the layer of internal/testenv
// that answers from moto's state lists it.
func (w *watchWorld) imdsLists(inst testenv.Instance) bool {
	w.t.Helper()
	md := awsimds.New(awsimds.Options{Endpoint: w.tw.IMDSFor(inst, "").Endpoint})
	get := func(path string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := md.GetMetadata(ctx, &awsimds.GetMetadataInput{Path: path})
		if err != nil {
			return ""
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b)
	}
	for _, mac := range strings.Fields(get("network/interfaces/macs/")) {
		if slices.Contains(strings.Fields(get("network/interfaces/macs/"+strings.TrimSuffix(mac, "/")+"/public-ipv4s")), w.eip.PublicIP) {
			return true
		}
	}
	return false
}

// The holder learns that it lost the EIP from its own IMDS, which no
// longer lists it, confirmed by one read of EC2: on_standby within 2
// intervals of the move. Until then its looks read IMDS only: no EC2
// request between its truth checks.
func TestWatchHolderLossViaIMDS(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	if !w.imdsLists(a) {
		t.Skip("the IMDS emulator does not list the EIP on its holder's interface (canned answers: internal/testenv has no IMDS layer answering " +
			"network/interfaces/macs/ from moto's state yet): a holder's detection through IMDS cannot be tested")
	}
	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A holder, B standby", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	time.Sleep(2 * time.Second) // past the start's reads
	before := wa.ec2.Counts().Total
	time.Sleep(5 * time.Second) // five looks
	if n := wa.ec2.Counts().Total - before; n != 0 {
		t.Errorf("the holder sent %d AWS requests in 5 looks, want 0 (IMDS only)", n)
	}
	// The operator runs `eipclaim claim --force` on B.
	md := w.tw.IMDSFor(b, "")
	cmd := exec.Command(w.bin, "claim", "--force", "--config", w.config, "--timeout", "30s")
	cmd.Env = append(append(append(os.Environ(), w.moto.Env()...), md.Env()...), "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("claim --force: %v\n%s", err, out)
	}
	forced := time.Now()
	within := 2*time.Second + 500*time.Millisecond // 2 intervals, and the hook's start
	waitFor(t, within+5*time.Second, "A's on_standby ran", func() bool { return len(wa.hooks(t, "standby")) == 1 })
	if d := time.Since(forced); d > within {
		t.Errorf("A ran on_standby %s after the move, want within 2 intervals (%s)", d.Round(10*time.Millisecond), within)
	}
	if !strings.Contains(wa.stderr.String(), "the loss is confirmed by both") {
		t.Errorf("A's log does not say IMDS and EC2 agreed on the loss")
	}
	waitFor(t, 5*time.Second, "B's on_holder ran (moved to it: its IMDS lists the EIP)", func() bool { return len(wb.hooks(t, "holder")) == 1 })
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}

// A standby whose own IMDS does not answer does not take over, however
// long the holder fails its probes: it says why (refused=imds) and
// counts it; once its IMDS answers again, it takes over.
func TestWatchStandbyWithoutIMDSRefuses(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A holder, B standby", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	wb.md.SetDown(true)
	svcA.Stop()
	waitFor(t, 15*time.Second, "B refuses for want of its IMDS", func() bool {
		return metricHas(t, wb.metrics, `eipclaim_takeover_refused_total{reason="imds",role="db"} 1`)
	})
	time.Sleep(3 * time.Second) // three more looks
	if got := aws.ToString(w.tw.Address(w.eip.AllocationID).NetworkInterfaceId); got != a.ENI {
		t.Fatalf("the EIP moved to %s while B's IMDS was down", got)
	}
	if !strings.Contains(wb.stderr.String(), `"refused":"imds"`) {
		t.Errorf("B's log does not say why it did not take over")
	}
	wb.md.SetDown(false)
	waitFor(t, 20*time.Second, "B takes over once its IMDS answers", func() bool { return len(wb.hooks(t, "holder")) == 1 })
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}
