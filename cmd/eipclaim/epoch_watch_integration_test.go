//go:build unix

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWatchReportsEpochAndStoppedHolder: a standby that does not take over
// (takeover: never) watching a stopped holder says so (a warning, and
// eipclaim_holder_stopped), and an epoch tag of 9223372036854775807 is
// reported (a warning, eipclaim_epoch_invalid), never shown wrapped.
func TestWatchReportsEpochAndStoppedHolder(t *testing.T) {
	w := newWatchWorld(t, watchFast+"    takeover: never\n")
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	if _, err := w.tw.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{w.eip.AllocationID},
		Tags: []types.Tag{{Key: aws.String(claim.TagEpoch), Value: aws.String("9223372036854775807")}}}); err != nil {
		t.Fatal(err)
	}
	w.stopInstance(a)
	wb := w.start(b)
	waitFor(t, 30*time.Second, "the standby's metrics report the stopped holder and the bad epoch tag", func() bool {
		m, _ := os.ReadFile(wb.metrics)
		return strings.Contains(string(m), `eipclaim_holder_stopped{role="db"} 1`) && strings.Contains(string(m), `eipclaim_epoch_invalid{role="db"} 1`)
	})
	logs := wb.stderr.String()
	for _, want := range []string{`"holder":"` + a.ID + `"`, "is stopped", "takeover: never", `\"9223372036854775807\" is not an epoch`, `"allocation_id":"` + w.eip.AllocationID + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the watcher's log lacks %s:\n%s", want, logs)
		}
	}
	if m, _ := os.ReadFile(wb.metrics); strings.Contains(string(m), "eipclaim_epoch{role=\"db\"} -") {
		t.Errorf("a negative epoch in the metrics:\n%s", m)
	}
}
