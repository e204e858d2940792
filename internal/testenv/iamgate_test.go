package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// recordingTB records what a test would have been failed with.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// apiError returns err's code and HTTP status.
func apiError(err error) (string, int) {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// TestGateDeniesLikeAWS: requests the instance's policy does not allow are
// answered as AWS answers them (EC2 UnauthorizedOperation, Route 53 and S3
// AccessDenied, all 403), a DryRun that would succeed says so, an unknown
// key is refused, a missing object is 403 without s3:ListBucket; and each
// denial fails the test that owns it, with a message naming the request,
// the resource's ARN, the context keys and the missing permission.
func TestGateDeniesLikeAWS(t *testing.T) {
	m := SharedMoto(t)
	ctx := t.Context()
	w := NewTestWorld(t, m.Config())
	inst := w.NewInstance()
	eip := w.NewEIP(nil)
	zone := w.NewZone("example.internal", false)
	admin := s3.NewFromConfig(m.Config())
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fleet"), Key: aws.String("secrets.env"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	n := m.gate.denialCount()
	m.ExpectDenied(t, "ec2:CreateTags", "route53:ChangeResourceRecordSets", "s3:GetObject", "?")

	e := ec2.NewFromConfig(m.ConfigAs(CallerInstance))
	_, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst.ID}, Tags: []ec2types.Tag{{Key: aws.String("eipclaim:holder"), Value: aws.String("x")}}})
	if code, status := apiError(err); code != "UnauthorizedOperation" || status != http.StatusForbidden {
		t.Errorf("CreateTags on an instance: %v, want UnauthorizedOperation 403", err)
	}
	_, err = e.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{eip.AllocationID}, Tags: []ec2types.Tag{{Key: aws.String("eipclaim:holder"), Value: aws.String("x")}}})
	if code, _ := apiError(err); code != "DryRunOperation" {
		t.Errorf("DryRun CreateTags of eipclaim:holder on an EIP: %v, want DryRunOperation", err)
	}
	_, err = route53.NewFromConfig(m.ConfigAs(CallerInstance)).ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("Web.Example.Internal."), Type: r53types.RRTypeTxt, TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("\"v=1\"")}}}}}},
	})
	if code, status := apiError(err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("UPSERT of a TXT record (the policies allow CNAME and A only): %v, want AccessDenied 403", err)
	}
	s3i := s3.NewFromConfig(m.ConfigAs(CallerInstance))
	_, err = s3i.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fleet"), Key: aws.String("secrets.env")})
	if code, status := apiError(err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("GetObject of another object: %v, want AccessDenied 403", err)
	}
	stranger := m.Config()
	stranger.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIASTRANGER", SecretAccessKey: "x"}, nil
	}))
	_, err = ec2.NewFromConfig(stranger).DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if code, _ := apiError(err); code != "UnauthorizedOperation" {
		t.Errorf("an unknown key: %v, want UnauthorizedOperation", err)
	}

	// The configuration object, allowed but missing: 403 to the instance
	// (no s3:ListBucket), 404 to the admin.
	_, err = s3i.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fleet"), Key: aws.String("eipclaim.yaml")})
	if code, status := apiError(err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("GetObject of the missing configuration object: %v, want AccessDenied 403", err)
	}
	_, err = s3i.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("fleet"), Key: aws.String("eipclaim.yaml")})
	if _, status := apiError(err); status != http.StatusForbidden {
		t.Errorf("HeadObject of the missing configuration object: %v, want 403", err)
	}
	_, err = admin.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fleet"), Key: aws.String("eipclaim.yaml")})
	if code, _ := apiError(err); code != "NoSuchKey" {
		t.Errorf("the admin's GetObject of a missing object: %v, want NoSuchKey", err)
	}

	rec := &recordingTB{TB: t}
	checkDenials(rec, m.gate, n, map[string]int{})
	all := strings.Join(rec.errs, "\n")
	if len(rec.errs) != 4 {
		t.Errorf("%d denials would fail the test, want 4 (the missing object is not one):\n%s", len(rec.errs), all)
	}
	for _, want := range []string{
		"instance caller denied: EC2 CreateTags " + inst.ID,
		"ec2:CreateTags on arn:aws:ec2:us-east-1:123456789012:instance/" + inst.ID,
		`"aws:TagKeys":["eipclaim:holder"]`,
		"docs/iam-policy.json does not allow ec2:CreateTags",
		"route53:ChangeResourceRecordSets on arn:aws:route53:::hostedzone/" + zone,
		`"route53:ChangeResourceRecordSetsNormalizedRecordNames":["web.example.internal"]`,
		`"route53:ChangeResourceRecordSetsRecordTypes":["TXT"]`,
		"s3:GetObject on arn:aws:s3:::fleet/secrets.env",
		`access key id "AKIASTRANGER" is no caller`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the denials do not say %q:\n%s", want, all)
		}
	}
	// Declared denials do not fail the test; a declared one that never
	// came does.
	rec = &recordingTB{TB: t}
	checkDenials(rec, m.gate, n, map[string]int{"ec2:CreateTags": 0, "route53:ChangeResourceRecordSets": 0, "s3:GetObject": 0, "?": 0, "s3:PutObject": 0})
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "expected a denial of s3:PutObject") {
		t.Errorf("with the denials declared: %q, want only the missing s3:PutObject denial", rec.errs)
	}
}

// TestGateSerializesConditionalWrites: concurrent conditional writes of
// one object through the gate are atomic, as on S3: of many creates with
// If-None-Match: *, and of many writes with the same If-Match ETag, exactly
// one wins each time.
func TestGateSerializesConditionalWrites(t *testing.T) {
	m := SharedMoto(t)
	ctx := t.Context()
	m.SetPolicyValues(PolicyValues{TableObject: "fleet/roles.json"})
	if _, err := s3.NewFromConfig(m.Config()).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet")}); err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(m.ConfigAs(CallerInstance))
	race := func(in func(i int) *s3.PutObjectInput) (won int64, etag string) {
		var wins atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				out, err := c.PutObject(ctx, in(i))
				if err == nil {
					wins.Add(1)
					mu.Lock()
					etag = aws.ToString(out.ETag)
					mu.Unlock()
					return
				}
				if _, status := apiError(err); status != http.StatusPreconditionFailed && status != http.StatusConflict {
					t.Errorf("writer %d: %v, want 412 or 409", i, err)
				}
			})
		}
		wg.Wait()
		return wins.Load(), etag
	}
	for round := range 5 {
		key := fmt.Sprintf("round%d", round)
		m.SetPolicyValues(PolicyValues{TableObject: "fleet/" + key})
		won, etag := race(func(i int) *s3.PutObjectInput {
			return &s3.PutObjectInput{Bucket: aws.String("fleet"), Key: aws.String(key), IfNoneMatch: aws.String("*"), Body: strings.NewReader(fmt.Sprint("create ", i))}
		})
		if won != 1 {
			t.Fatalf("round %d: %d creates with If-None-Match: * won, want 1", round, won)
		}
		if won, _ = race(func(i int) *s3.PutObjectInput {
			return &s3.PutObjectInput{Bucket: aws.String("fleet"), Key: aws.String(key), IfMatch: aws.String(etag), Body: strings.NewReader(fmt.Sprint("update ", i))}
		}); won != 1 {
			t.Fatalf("round %d: %d writes with If-Match %s won, want 1", round, won, etag)
		}
	}
}

// TestGateStopInstancesByResourceTag: the gate judges StopInstances with
// the instance's tags (read from moto) as aws:ResourceTag/*: the shipped
// policy lets an instance stop an instance tagged eipclaim:role (a fence),
// and not one without the tag; a DryRun says which.
func TestGateStopInstancesByResourceTag(t *testing.T) {
	m := SharedMoto(t)
	ctx := t.Context()
	w := NewTestWorld(t, m.Config())
	insts := w.NewInstances(2)
	tagged, untagged := insts[0].ID, insts[1].ID
	admin := ec2.NewFromConfig(m.Config())
	if _, err := admin.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{tagged}, Tags: []ec2types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{untagged}, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}}}); err != nil {
		t.Fatal(err)
	}
	n := m.gate.denialCount()
	m.ExpectDenied(t, "ec2:StopInstances")
	e := ec2.NewFromConfig(m.ConfigAs(CallerInstance))
	state := func(id string) ec2types.InstanceStateName {
		t.Helper()
		out, err := admin.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Reservations[0].Instances[0].State.Name
	}

	_, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{untagged}, Force: aws.Bool(true), DryRun: aws.Bool(true)})
	if code, _ := apiError(err); code != "UnauthorizedOperation" {
		t.Errorf("DryRun StopInstances of an untagged instance: %v, want UnauthorizedOperation", err)
	}
	_, err = e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{untagged}, Force: aws.Bool(true)})
	if code, status := apiError(err); code != "UnauthorizedOperation" || status != http.StatusForbidden {
		t.Errorf("StopInstances of an untagged instance: %v, want UnauthorizedOperation 403", err)
	}
	if got := state(untagged); got != ec2types.InstanceStateNameRunning {
		t.Errorf("the untagged instance is %s after a denied stop, want running", got)
	}
	denials := m.gate.denialsSince(n)
	if len(denials) != 2 || !strings.Contains(denials[0].Message, "ec2:StopInstances on arn:aws:ec2:") || !strings.Contains(denials[0].Message, `"aws:ResourceTag/Name":"web-1"`) {
		t.Errorf("denials %+v, want 2 naming ec2:StopInstances, the instance's ARN and its tags", denials)
	}

	_, err = e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{tagged}, Force: aws.Bool(true), DryRun: aws.Bool(true)})
	if code, _ := apiError(err); code != "DryRunOperation" {
		t.Errorf("DryRun StopInstances of a tagged instance: %v, want DryRunOperation (moto honours DryRun)", err)
	}
	if got := state(tagged); got != ec2types.InstanceStateNameRunning {
		t.Errorf("the tagged instance is %s after a DryRun, want running", got)
	}
	if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{tagged}, Force: aws.Bool(true)}); err != nil {
		t.Errorf("StopInstances of an instance tagged eipclaim:role: %v", err)
	}
	if got := state(tagged); got != ec2types.InstanceStateNameStopped && got != ec2types.InstanceStateNameStopping {
		t.Errorf("the tagged instance is %s after StopInstances, want stopping or stopped", got)
	}
	if got := len(m.gate.denialsSince(n)); got != 2 {
		t.Errorf("%d denials, want the 2 of the untagged instance", got)
	}
}
