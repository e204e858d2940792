package claim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// TestNonexistentEIP: an allocation id or address that no EIP has is
// reported as such after a short eventual-consistency window, exit 2,
// rather than retried to the deadline.
func TestNonexistentEIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec config.Role
		want string
	}{
		{"allocation id", config.Role{AllocationID: "eipalloc-0000000000000dead"}, "allocation id eipalloc-0000000000000dead does not exist in us-east-1: check allocation_id"},
		{"public ip", config.Role{PublicIP: "198.51.100.99"}, "public_ip 198.51.100.99 is not an EIP of this account in us-east-1: check public_ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			e, _ := newEngine(t, f)
			e.Region = "us-east-1"
			clock := e.Clock.(*fakeClock)
			start := clock.now
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			spec := tc.spec
			_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &spec})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if exitcode.Of(err) != exitcode.Usage {
				t.Errorf("exit %d, want 2", exitcode.Of(err))
			}
			waited := clock.now.Sub(start)
			if waited < defaultNotFoundWait || waited > defaultNotFoundWait+retry.DefaultBackoff.Max {
				t.Errorf("waited %v, want the %v window (and at most one backoff more)", waited, defaultNotFoundWait)
			}
		})
	}
	t.Run("visible within the window", func(t *testing.T) {
		f := newFake()
		f.fail["DescribeAddresses"] = []error{apiErr("InvalidAllocationID.NotFound"), apiErr("InvalidAllocationID.NotFound")}
		e, logs := newEngine(t, f)
		res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
		if err != nil || res.Action != "claimed" {
			t.Fatalf("Claim = %+v, %v\nlogs:\n%s", res, err, logs)
		}
	})
	t.Run("status window", func(t *testing.T) {
		f := newFake()
		e, _ := newEngine(t, f)
		e.NotFoundWait = time.Second
		clock := e.Clock.(*fakeClock)
		start := clock.now
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := e.Addresses(ctx, &config.Role{AllocationID: "eipalloc-0000000000000dead"}, true)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("err = %v, want does not exist, exit 2", err)
		}
		if waited := clock.now.Sub(start); waited > time.Second+retry.DefaultBackoff.Max {
			t.Errorf("waited %v with a 1s window", waited)
		}
	})
}

// TestNonexistentSelf: this instance, named by IMDS, unknown to EC2 for
// the credentials (another account's): exit 2 saying so after a window,
// not retries to the deadline.
func TestNonexistentSelf(t *testing.T) {
	f := newFake()
	e, _ := newEngine(t, f)
	e.InstanceID = "i-0000000000000nope"
	e.Region = "us-east-1"
	clock := e.Clock.(*fakeClock)
	start := clock.now
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	want := "this instance i-0000000000000nope does not exist in us-east-1 for these AWS credentials"
	if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v (exit %d), want %q, exit 2", err, exitcode.Of(err), want)
	}
	window := selfNotFoundFactor * defaultNotFoundWait
	if waited := clock.now.Sub(start); waited < window || waited > window+retry.DefaultBackoff.Max {
		t.Errorf("waited %v, want the %v window", waited, window)
	}
}

// TestHolderInterfaceGone: the interface an EIP is on does not exist (it
// was deleted): reported after the window, not retried to the deadline.
func TestHolderInterfaceGone(t *testing.T) {
	f := newFake()
	a := f.addr(alloc)
	a.AssociationId, a.InstanceId, a.NetworkInterfaceId = aws.String("eipassoc-x"), aws.String(""), aws.String("eni-0000000000gone0")
	e, _ := newEngine(t, f)
	clock := e.Clock.(*fakeClock)
	start := clock.now
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err == nil || !strings.Contains(err.Error(), "the interface eni-0000000000gone0 that holds the EIP does not exist") {
		t.Fatalf("err = %v", err)
	}
	if waited := clock.now.Sub(start); waited > defaultNotFoundWait+retry.DefaultBackoff.Max {
		t.Errorf("waited %v", waited)
	}
	if f.associates != 0 {
		t.Errorf("%d associations", f.associates)
	}
}
