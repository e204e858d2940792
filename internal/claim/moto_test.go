package claim

// Tests of the engine against moto's EC2, with a thin wrapper around the
// real client where a test must act between two calls (as a signal would).

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// hookedEC2 is the real client, with hooks run after the real call: the
// error a hook returns replaces the call's (an answer lost in flight).
type hookedEC2 struct {
	*ec2.Client
	afterDisassociate, afterAssociate func(err error) error
	createTags                        atomic.Int32
	// stops counts the StopInstances calls (forced: those with Force);
	// stopFault, when set, replaces their answer before they are sent.
	stops, forced atomic.Int32
	stopFault     func() error
}

func (h *hookedEC2) StopInstances(ctx context.Context, in *ec2.StopInstancesInput, o ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	h.stops.Add(1)
	if aws.ToBool(in.Force) {
		h.forced.Add(1)
	}
	if h.stopFault != nil {
		if err := h.stopFault(); err != nil {
			return nil, err
		}
	}
	return h.Client.StopInstances(ctx, in, o...)
}

func (h *hookedEC2) DisassociateAddress(ctx context.Context, in *ec2.DisassociateAddressInput, o ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error) {
	out, err := h.Client.DisassociateAddress(ctx, in, o...)
	if h.afterDisassociate != nil {
		err = h.afterDisassociate(err)
	}
	return out, err
}

func (h *hookedEC2) AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, o ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	out, err := h.Client.AssociateAddress(ctx, in, o...)
	if h.afterAssociate != nil {
		err = h.afterAssociate(err)
	}
	return out, err
}

func (h *hookedEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	h.createTags.Add(1)
	return h.Client.CreateTags(ctx, in, o...)
}

// motoWorld is moto with two instances: self (the claimer) and another.
type motoWorld struct {
	t           *testing.T
	ec2         *hookedEC2  // the engine's: the instance's caller, judged by the IAM gate
	admin       *ec2.Client // the test's: seeding and inspection
	self, other string
	moto        *testenv.Moto
}

func newMotoWorld(t *testing.T) *motoWorld {
	t.Helper()
	moto := testenv.SharedMoto(t)
	w := &motoWorld{t: t, moto: moto, ec2: &hookedEC2{Client: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance))}, admin: ec2.NewFromConfig(moto.Config())}
	out, err := w.admin.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2), InstanceType: types.InstanceTypeT3Micro,
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	w.self, w.other = aws.ToString(out.Instances[0].InstanceId), aws.ToString(out.Instances[1].InstanceId)
	return w
}

func (w *motoWorld) engine() (*Engine, *bytes.Buffer) {
	var logs bytes.Buffer
	return &Engine{
		EC2:        w.ec2,
		InstanceID: w.self,
		Region:     testenv.MotoRegion,
		Log:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backoff:    retry.Backoff{Base: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no health probe dials moto's addresses")
		},
	}, &logs
}

// allocate creates an EIP with tags and returns its allocation id.
func (w *motoWorld) allocate(tags map[string]string) string {
	w.t.Helper()
	in := &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}
	if len(tags) > 0 {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeElasticIp}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []types.TagSpecification{spec}
	}
	out, err := w.admin.AllocateAddress(context.Background(), in)
	if err != nil {
		w.t.Fatalf("AllocateAddress: %v", err)
	}
	return aws.ToString(out.AllocationId)
}

func (w *motoWorld) associate(alloc, instance string) {
	w.t.Helper()
	if _, err := w.admin.AssociateAddress(context.Background(), &ec2.AssociateAddressInput{AllocationId: aws.String(alloc), InstanceId: aws.String(instance)}); err != nil {
		w.t.Fatalf("AssociateAddress: %v", err)
	}
}

func (w *motoWorld) setTag(alloc, k, v string) {
	w.t.Helper()
	if _, err := w.admin.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{alloc}, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}); err != nil {
		w.t.Fatalf("CreateTags: %v", err)
	}
}

// primaryENI returns the instance's interface at device index 0. (moto
// reports no InstanceId for an EIP associated with an interface.)
func (w *motoWorld) primaryENI(instance string) string {
	w.t.Helper()
	out, err := w.admin.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, n := range out.Reservations[0].Instances[0].NetworkInterfaces {
		if n.Attachment != nil && aws.ToInt32(n.Attachment.DeviceIndex) == 0 {
			return aws.ToString(n.NetworkInterfaceId)
		}
	}
	w.t.Fatalf("instance %s has no interface at device index 0", instance)
	return ""
}

// address returns the EIP as moto reports it.
func (w *motoWorld) address(alloc string) *types.Address {
	w.t.Helper()
	out, err := w.admin.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{AllocationIds: []string{alloc}})
	if err != nil || len(out.Addresses) != 1 {
		w.t.Fatalf("DescribeAddresses %s: %v", alloc, err)
	}
	return &out.Addresses[0]
}

// TestMotoInterruptedTakeover: the claim's context is cancelled right after
// the real DisassociateAddress (its answer received, or lost in flight);
// the EIP must end on the claimer, tagged, not on nobody.
func TestMotoInterruptedTakeover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(err error) error
	}{
		{"answer received", func(err error) error { return err }},
		{"answer lost", func(err error) error {
			if err != nil {
				return err
			}
			return context.Canceled
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newMotoWorld(t)
			alloc := w.allocate(nil)
			w.associate(alloc, w.other)
			e, logs := w.engine()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			w.ec2.afterDisassociate = func(err error) error {
				cancel() // SIGTERM arrives now
				return tc.answer(err)
			}
			res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}, Force: true})
			if err != nil {
				t.Fatalf("Claim: %v (exit %d)\nlogs:\n%s", err, exitcode.Of(err), logs)
			}
			a := w.address(alloc)
			if got, want := aws.ToString(a.NetworkInterfaceId), w.primaryENI(w.self); got != want {
				t.Fatalf("the EIP is on %q after an interrupted takeover, want the claimer's %s\nlogs:\n%s", got, want, logs)
			}
			if res.Action != "taken over" || res.PreviousHolder != w.other || res.AssociationID != aws.ToString(a.AssociationId) {
				t.Errorf("result %+v, want taken over from %s as %s", res, w.other, aws.ToString(a.AssociationId))
			}
			if got := TagValue(a.Tags, TagHolder); got != w.self {
				t.Errorf("%s = %q, want %s", TagHolder, got, w.self)
			}
		})
	}
}

// TestMotoInterruptedAssociation: cancelled as the real AssociateAddress
// answers, its answer lost; the claim reports what EC2 shows (claimed) and
// tags the EIP, instead of "context canceled".
func TestMotoInterruptedAssociation(t *testing.T) {
	w := newMotoWorld(t)
	alloc := w.allocate(map[string]string{TagHolder: "i-0123456789abcdef0"})
	e, logs := w.engine()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.ec2.afterAssociate = func(err error) error {
		cancel()
		if err != nil {
			return err
		}
		return context.Canceled
	}
	res, err := e.claimTagged(ctx, Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
	if err != nil {
		t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
	}
	a := w.address(alloc)
	if aws.ToString(a.NetworkInterfaceId) != w.primaryENI(w.self) || res.Action != "claimed" {
		t.Errorf("EIP on %q, result %+v; want claimed by %s", aws.ToString(a.NetworkInterfaceId), res, w.self)
	}
	if got := TagValue(a.Tags, TagHolder); got != w.self {
		t.Errorf("%s = %q, want %s", TagHolder, got, w.self)
	}
}

// TestMotoRerunRepairsTag: held by the claimer but tagged with the old
// holder, a rerun repairs the tag with one CreateTags call, and a rerun
// with the right tag makes none.
func TestMotoRerunRepairsTag(t *testing.T) {
	w := newMotoWorld(t)
	alloc := w.allocate(nil)
	w.associate(alloc, w.self)
	w.setTag(alloc, TagHolder, w.other)
	e, logs := w.engine()
	for run, wantCalls := range []int32{1, 1} {
		res, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}})
		if err != nil || res.Action != "already held" {
			t.Fatalf("run %d: %+v, %v\nlogs:\n%s", run, res, err, logs)
		}
		if got := TagValue(w.address(alloc).Tags, TagHolder); got != w.self {
			t.Errorf("run %d: %s = %q, want %s", run, TagHolder, got, w.self)
		}
		if got := w.ec2.createTags.Load(); got != wantCalls {
			t.Errorf("run %d: %d CreateTags calls in all, want %d", run, got, wantCalls)
		}
	}
}

// TestMotoReleaseUntags: a released EIP names no holder; other tags stay.
func TestMotoReleaseUntags(t *testing.T) {
	w := newMotoWorld(t)
	alloc := w.allocate(map[string]string{"eip-pool": "db"})
	e, logs := w.engine()
	if _, err := e.claimTagged(context.Background(), Request{Role: "db", Spec: &config.Role{AllocationID: alloc}}); err != nil {
		t.Fatalf("Claim: %v\nlogs:\n%s", err, logs)
	}
	if got := TagValue(w.address(alloc).Tags, TagHolder); got != w.self {
		t.Fatalf("after the claim %s = %q", TagHolder, got)
	}
	what, err := e.Release(context.Background(), "db", &config.Role{AllocationID: alloc}, false)
	if err != nil || !strings.HasPrefix(what, "released") {
		t.Fatalf("Release = %q, %v", what, err)
	}
	a := w.address(alloc)
	if !free(a) {
		t.Errorf("still associated: %+v", a)
	}
	if got := TagValue(a.Tags, TagHolder); got != "" {
		t.Errorf("%s = %q on the released EIP, want none", TagHolder, got)
	}
	if TagValue(a.Tags, "eip-pool") != "db" {
		t.Errorf("release removed another tag: %v", a.Tags)
	}
}

// TestMotoPoolTagsAreLiteral: a pool tagged `*` must not claim the EIPs of
// other pools, although EC2's tag filter treats * as a wildcard.
func TestMotoPoolTagsAreLiteral(t *testing.T) {
	w := newMotoWorld(t)
	web := map[string]bool{w.allocate(map[string]string{"eip-pool": "web"}): true, w.allocate(map[string]string{"eip-pool": "wxb"}): true}
	e, _ := w.engine()
	for _, value := range []string{"*", "w?b"} {
		_, err := e.claimTagged(context.Background(), Request{Role: "star", Spec: &config.Role{Pool: &config.Pool{Tags: map[string]string{"eip-pool": value}}}})
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "has no EIP") {
			t.Errorf("pool eip-pool=%s: %v (exit %d), want has no EIP, exit 2", value, err, exitcode.Of(err))
		}
	}
	for alloc := range web {
		if a := w.address(alloc); !free(a) {
			t.Errorf("another pool's EIP %s was claimed: %+v", alloc, a)
		}
	}
	star := w.allocate(map[string]string{"eip-pool": "*"})
	res, err := e.claimTagged(context.Background(), Request{Role: "star", Spec: &config.Role{Pool: &config.Pool{Tags: map[string]string{"eip-pool": "*"}}}})
	if err != nil || res.AllocationID != star {
		t.Fatalf("pool eip-pool=*: %+v, %v; want %s", res, err, star)
	}
}

// TestMotoNonexistentEIP: moto answers InvalidAllocationID.NotFound (and
// InvalidAddress.NotFound): after the window, exit 2 naming the id.
func TestMotoNonexistentEIP(t *testing.T) {
	w := newMotoWorld(t)
	e, _ := w.engine()
	e.NotFoundWait = 500 * time.Millisecond
	for _, tc := range []struct {
		spec config.Role
		want string
	}{
		{config.Role{AllocationID: "eipalloc-0123456789abcdef0"}, "allocation id eipalloc-0123456789abcdef0 does not exist in us-east-1: check allocation_id"},
		{config.Role{PublicIP: "198.51.100.99"}, "public_ip 198.51.100.99 is not an EIP of this account in us-east-1: check public_ip"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		began := time.Now()
		spec := tc.spec
		_, err := e.claimTagged(ctx, Request{Role: "db", Spec: &spec})
		cancel()
		if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v (exit %d), want %q, exit 2", err, exitcode.Of(err), tc.want)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("took %v with a 500ms window", took)
		}
	}
}
