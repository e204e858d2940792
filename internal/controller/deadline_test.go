package controller_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
)

// TestLambdaDeadlineReportsFreeEIP: a function timeout (6 s) shorter than
// the claim engine's finishing window (30 s), and a takeover whose
// AssociateAddress keeps failing once the old holder's association is gone.
// The invocation must end before Lambda's deadline with its outcome: the
// decision line and the error saying that the EIP is FREE and what to do;
// not "Task timed out" with the EIP on nobody and nothing said (issue 17
// item 5).
func TestLambdaDeadlineReportsFreeEIP(t *testing.T) {
	f := newFixture(t)
	is := f.candidates("db", 2)
	a := is[0]
	eip := f.w.NewEIP(nil)
	f.w.Associate(eip.AllocationID, a.ID)
	f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
	px, err := faultproxy.New(f.moto.Endpoint, faultproxy.Options{Plan: func(action string, n int) faultproxy.Kind {
		if action == "AssociateAddress" {
			return faultproxy.HTTP503
		}
		return faultproxy.None
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	const timeout = 6 * time.Second
	fn := f.lambdaFn("AWS_ENDPOINT_URL_EC2="+px.URL, "AWS_LAMBDA_FUNCTION_TIMEOUT=6")
	invoke(t, fn, stateChange(f.w.NewInstance().ID, "running")) // the cold start, outside the measure
	f.stop(a.ID)
	inv := fn.Invoke(t, []byte(stateChange(a.ID, "stopped")))
	out := fn.Output()
	t.Logf("invocation took %s: %s (%s)", inv.Took, inv.Body, inv.FunctionError)
	if holder, _ := f.holder(eip.AllocationID); holder != "" {
		t.Fatalf("the EIP is on %s: want it left free by the failing association (the fault proxy fails every AssociateAddress)", holder)
	}
	if strings.Contains(string(inv.Body), "timed out") || inv.Took >= timeout {
		t.Fatalf("the invocation ran into Lambda's deadline (%s, took %s): %s\n--- output ---\n%s", timeout, inv.Took, inv.Body, out)
	}
	var answer struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(inv.Body, &answer); err != nil || answer.ErrorMessage == "" {
		t.Fatalf("want the handler's error (EventBridge retries the event): %s (%v)", inv.Body, err)
	}
	for _, want := range []string{"is now FREE", "run `eipclaim --role db` to claim it"} {
		if !strings.Contains(answer.ErrorMessage, want) {
			t.Errorf("the error does not say %q: %s", want, answer.ErrorMessage)
		}
	}
	var decision bool
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, `"msg":"decision"`) && strings.Contains(line, `"action":"failed"`) && strings.Contains(line, "is now FREE") {
			decision = true
		}
	}
	if !decision {
		t.Errorf("no decision line saying the EIP is FREE in the function's output:\n%s", out)
	}
	if n := px.Counts().Requests("AssociateAddress"); n == 0 {
		t.Errorf("no AssociateAddress reached the fault proxy: the test proves nothing")
	}
}
