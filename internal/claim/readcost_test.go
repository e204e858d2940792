package claim

import (
	"context"
	"slices"
	"sync"
	"testing"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/table"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// opLog records the requests a client sends (each attempt), by operation.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) option(st *middleware.Stack) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("opLog", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		l.mu.Lock()
		l.ops = append(l.ops, awsmw.GetOperationName(ctx))
		l.mu.Unlock()
		return next.HandleFinalize(ctx, in)
	}), middleware.After)
}

// take returns the requests sent since the last take.
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ops
	l.ops = nil
	return out
}

// TestSteadyReadCost: the reads a watcher makes at each truth check
// (Engine.Secondary, Engine.Overlay) describe this instance once, at the
// first read, and never again: a steady read of a secondary private IP is
// one DescribeNetworkInterfaces (the interface that has the address, with
// its epoch tag), of an overlay address one
// DescribeRouteTables and one S3 GetObject of the role table. Against
// moto's EC2 and S3 behind the IAM gate.
func TestSteadyReadCost(t *testing.T) {
	w := newOverlayWorld(t, 2)
	a := w.inst[0]
	if _, err := w.claim(a, nil); err != nil {
		t.Fatal(err)
	}
	ec2Log, s3Log := &opLog{}, &opLog{}
	e, _ := w.engine(a)
	e.EC2 = ec2.NewFromConfig(w.moto.ConfigAs(testenv.CallerInstance), func(o *ec2.Options) { o.APIOptions = append(o.APIOptions, ec2Log.option) })
	store := &table.Store{API: s3.NewFromConfig(w.moto.ConfigAs(testenv.CallerInstance), func(o *s3.Options) {
		o.UsePathStyle = true
		o.APIOptions = append(o.APIOptions, s3Log.option)
	}), Bucket: "fleet-config", Key: "roles.json"}
	ctx := t.Context()

	sec := &config.Role{Name: "db", PrivateAddress: secondaryAddr}
	r, err := e.ClaimSecondary(ctx, Request{Role: "db", Spec: sec})
	if err != nil || r.Action != "claimed" {
		t.Fatalf("claim of the secondary: %+v, %v", r, err)
	}
	e.TagSecondary(ctx, r) // as the step does
	e.forgetSelf()
	ec2Log.take()
	for i := range 3 {
		st, err := e.Secondary(ctx, "db", sec, false)
		if err != nil || st.Holder != a.ID {
			t.Fatalf("read %d of the secondary: %+v, %v; want held by %s", i+1, st, err, a.ID)
		}
		ops := ec2Log.take()
		slices.Sort(ops)
		want := []string{"DescribeNetworkInterfaces"}
		if i == 0 {
			want = append([]string{"DescribeInstances"}, want...)
		}
		if !slices.Equal(ops, want) {
			t.Errorf("read %d of the secondary sent %v, want %v", i+1, ops, want)
		}
	}
	for i := range 3 {
		st, err := e.Overlay(ctx, "vpn", w.spec(), store, false)
		if err != nil || st.Holder != a.ID || !st.Consistent() {
			t.Fatalf("read %d of the overlay: %+v, %v; want held by %s", i+1, st, err, a.ID)
		}
		ops, s3ops := ec2Log.take(), s3Log.take()
		if len(s3ops) != 1 || s3ops[0] != "GetObject" {
			t.Errorf("read %d of the overlay sent %v to S3, want one GetObject", i+1, s3ops)
		}
		if !slices.Equal(ops, []string{"DescribeRouteTables"}) {
			t.Errorf("read %d of the overlay sent %v to EC2, want one DescribeRouteTables (this instance known since the secondary's first read)", i+1, ops)
		}
	}
	// The holder's truth check runs a claim of what it holds: "already
	// held", its cost logged for docs/watch.md's table.
	if r, err := e.ClaimSecondary(ctx, Request{Role: "db", Spec: sec}); err != nil || r.Action != "already held" {
		t.Fatalf("claim of the secondary held: %+v, %v", r, err)
	}
	t.Logf("a claim of a secondary private IP already held sends %v", ec2Log.take())
	if r, err := e.ClaimOverlay(ctx, Request{Role: "vpn", Spec: w.spec()}, store); err != nil || r.Action != "already held" {
		t.Fatalf("claim of the overlay held: %+v, %v", r, err)
	}
	t.Logf("a claim of an overlay address already held sends %v to EC2, %v to S3", ec2Log.take(), s3Log.take())
	// A read that fails drops what the engine knew of this instance.
	bad := w.spec()
	bad.Overlay.RouteTables = []string{"rtb-00000000000000001"}
	if _, err := e.Overlay(ctx, "vpn", bad, store, false); err == nil {
		t.Fatal("a read of a route table that does not exist succeeded")
	}
	ec2Log.take()
	if _, err := e.Overlay(ctx, "vpn", w.spec(), store, false); err != nil {
		t.Fatal(err)
	}
	if ops := ec2Log.take(); !slices.Contains(ops, "DescribeInstances") {
		t.Errorf("after a failed read, the next sent %v, want this instance described again", ops)
	}
}
