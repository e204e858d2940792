package shipped

// The shipped IAM policies judged by a real IAM evaluator
// (@cloud-copilot/iam-simulate, the one the test world's gate uses): each
// allows what its caller sends, with the keys the code writes, and denies
// the foreign requests a least-privilege policy must deny. The integration
// tests prove the first half request by request, through the gate in front
// of moto; this table proves the second half, which no product request
// exercises.

import (
	"fmt"
	"maps"
	"testing"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/observe"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The values the policies are instantiated with, as a user would write
// theirs.
var evalValues = testenv.PolicyValues{
	ConfigObject: "fleet-config/eipclaim.yaml",
	TableObject:  "fleet-config/roles.json",
	ZoneIDs:      []string{"Z0ROLEZONE", "Z1ROLEZONE"},
}

const (
	eip       = "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-0123456789abcdef0"
	instance  = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
	eni       = "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-0123456789abcdef0"
	sg        = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0"
	roleZone  = "arn:aws:route53:::hostedzone/Z0ROLEZONE"
	otherZone = "arn:aws:route53:::hostedzone/ZOTHERZONE"
	configObj = "arn:aws:s3:::fleet-config/eipclaim.yaml"
	tableObj  = "arn:aws:s3:::fleet-config/roles.json"
	otherObj  = "arn:aws:s3:::fleet-config/secrets.env"
	bucketARN = "arn:aws:s3:::fleet-config"
	asg       = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/db"
)

func tags(keys ...string) map[string]any {
	ctx := map[string]any{"aws:TagKeys": keys}
	for _, k := range keys {
		ctx["aws:RequestTag/"+k] = "x"
	}
	return ctx
}

func change(actions, types, names []string) map[string]any {
	return map[string]any{
		"route53:ChangeResourceRecordSetsActions":               actions,
		"route53:ChangeResourceRecordSetsRecordTypes":           types,
		"route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
	}
}

var (
	cnameUpsert = change([]string{"UPSERT"}, []string{"CNAME"}, []string{"db.example.internal"})
	// aUpsert is the A record of a role's private address
	// (dns.route53.record: A).
	aUpsert = change([]string{"UPSERT"}, []string{"A"}, []string{"db.example.internal"})
	untag   = map[string]any{"aws:TagKeys": claim.TagsDeleted}
	// roleTagged is an instance of a role (the tag observe.TagRole), the
	// only kind a fence stops.
	roleTagged = map[string]any{"aws:ResourceTag/" + observe.TagRole: "db", "aws:ResourceTag/Name": "db-1"}
)

// needed are the requests each caller sends (the gate sees them all in the
// integration tests; here with the code's own tag keys).
var needed = map[testenv.Caller][]testenv.Authorization{
	testenv.CallerInstance: {
		{Action: "ec2:DescribeAddresses", Resource: "*"},
		{Action: "ec2:DescribeInstances", Resource: "*"},
		{Action: "ec2:DescribeInstanceStatus", Resource: "*"},
		{Action: "ec2:DescribeNetworkInterfaces", Resource: "*"},
		{Action: "ec2:AssociateAddress", Resource: eip},
		{Action: "ec2:AssociateAddress", Resource: instance},
		{Action: "ec2:AssociateAddress", Resource: eni},
		{Action: "ec2:DisassociateAddress", Resource: eip},
		{Action: "ec2:CreateTags", Resource: eip, Context: tags(claim.TagsWritten...)},
		{Action: "ec2:DeleteTags", Resource: eip, Context: untag},
		{Action: "ec2:StopInstances", Resource: instance, Context: roleTagged}, // fence: stop
		{Action: "route53:ListHostedZonesByName", Resource: "*"},
		{Action: "route53:GetHostedZone", Resource: roleZone},
		{Action: "route53:ListResourceRecordSets", Resource: roleZone},
		{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: cnameUpsert},
		{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: aUpsert},
		{Action: "route53:GetChange", Resource: "arn:aws:route53:::change/C0123456789"},
		{Action: "s3:GetObject", Resource: configObj},
		{Action: "s3:GetObject", Resource: tableObj},
		{Action: "s3:PutObject", Resource: tableObj},
	},
	testenv.CallerClient: {
		{Action: "s3:GetObject", Resource: configObj},
		{Action: "s3:GetObject", Resource: tableObj},
		{Action: "s3:PutObject", Resource: tableObj},
	},
}

// roleENI is an interface of a role's instance (tagged observe.TagRole),
// the only kind whose secondary private IPs eipclaim moves and tags.
var roleENI = map[string]any{"aws:ResourceTag/" + observe.TagRole: "db"}

// secondaryKeys are the role-scoped tag keys of a secondary private IP.
func secondaryKeys(role string) []string {
	h, c, e := claim.SecondaryTagKeys(role)
	return []string{h, c, e}
}

// withTags is ctx with the interface's tags (aws:ResourceTag/*).
func withTags(ctx, resourceTags map[string]any) map[string]any {
	out := maps.Clone(ctx)
	maps.Copy(out, resourceTags)
	return out
}

// secondaryNeeded are the requests of a claim of a secondary private IP
// (private_address): an instance's, and the controller's on behalf of one.
var secondaryNeeded = []testenv.Authorization{
	{Action: "ec2:DescribeSubnets", Resource: "*"},
	{Action: "ec2:AssignPrivateIpAddresses", Resource: eni, Context: roleENI},
	{Action: "ec2:UnassignPrivateIpAddresses", Resource: eni, Context: roleENI},
	{Action: "ec2:CreateTags", Resource: eni, Context: withTags(tags(secondaryKeys("db")...), roleENI)},
	{Action: "ec2:DeleteTags", Resource: eni, Context: withTags(map[string]any{"aws:TagKeys": secondaryKeys("db")}, roleENI)},
}

// rtb is a route table; roleRTB one tagged for a role (the only kind
// whose routes eipclaim changes).
const rtb = "arn:aws:ec2:us-east-1:123456789012:route-table/rtb-0123456789abcdef0"

var roleRTB = map[string]any{"aws:ResourceTag/" + observe.TagRole: "vpn"}

// overlayNeeded are the requests of a claim of an overlay address
// (overlay) and its release: an instance's, and the controller's on
// behalf of one.
var overlayNeeded = []testenv.Authorization{
	{Action: "ec2:DescribeRouteTables", Resource: "*"},
	{Action: "ec2:DescribeVpcs", Resource: "*"},
	{Action: "ec2:CreateRoute", Resource: rtb, Context: roleRTB},
	{Action: "ec2:ReplaceRoute", Resource: rtb, Context: roleRTB},
	{Action: "ec2:DeleteRoute", Resource: rtb, Context: roleRTB},
}

func init() {
	// The controller sends what an instance sends, in its zones, and
	// completes lifecycle actions.
	needed[testenv.CallerController] = append(needed[testenv.CallerController], needed[testenv.CallerInstance]...)
	needed[testenv.CallerController] = append(needed[testenv.CallerController],
		testenv.Authorization{Action: "autoscaling:CompleteLifecycleAction", Resource: asg})
	needed[testenv.CallerInstance] = append(needed[testenv.CallerInstance], secondaryNeeded...)
	needed[testenv.CallerController] = append(needed[testenv.CallerController], secondaryNeeded...)
	needed[testenv.CallerInstance] = append(needed[testenv.CallerInstance], overlayNeeded...)
	needed[testenv.CallerController] = append(needed[testenv.CallerController], overlayNeeded...)
	foreign = append(foreign,
		testenv.Authorization{Action: "ec2:AssignPrivateIpAddresses", Resource: eni},                                                                         // an interface of no role
		testenv.Authorization{Action: "ec2:UnassignPrivateIpAddresses", Resource: eni, Context: map[string]any{"aws:ResourceTag/Name": "web-1"}},             // likewise
		testenv.Authorization{Action: "ec2:CreateTags", Resource: eni, Context: withTags(tags("Name"), roleENI)},                                             // a foreign key on a role's interface
		testenv.Authorization{Action: "ec2:CreateTags", Resource: eni, Context: tags(secondaryKeys("db")...)},                                                // an interface of no role
		testenv.Authorization{Action: "ec2:DeleteTags", Resource: eni, Context: withTags(map[string]any{"aws:TagKeys": []string{observe.TagRole}}, roleENI)}, // its role tag
		testenv.Authorization{Action: "ec2:DeleteTags", Resource: eni, Context: roleENI},                                                                     // no keys: every tag
	)
	// The controller's statements are of its account and region.
	foreignFor[testenv.CallerController] = append(foreignFor[testenv.CallerController],
		testenv.Authorization{Action: "ec2:AssignPrivateIpAddresses", Resource: "arn:aws:ec2:eu-west-1:123456789012:network-interface/eni-0123456789abcdef0", Context: roleENI})
	foreign = append(foreign,
		testenv.Authorization{Action: "ec2:ReplaceRoute", Resource: rtb},                                                         // a route table of no role
		testenv.Authorization{Action: "ec2:CreateRoute", Resource: rtb, Context: map[string]any{"aws:ResourceTag/Name": "main"}}, // likewise
		testenv.Authorization{Action: "ec2:DeleteRouteTable", Resource: rtb, Context: roleRTB},                                   // the table itself
		testenv.Authorization{Action: "ec2:CreateRouteTable", Resource: rtb, Context: roleRTB},
		testenv.Authorization{Action: "ec2:ModifyNetworkInterfaceAttribute", Resource: eni, Context: roleENI}, // source/dest check: the operator's
	)
	// The controller's route statement is of its account and region.
	foreignFor[testenv.CallerController] = append(foreignFor[testenv.CallerController],
		testenv.Authorization{Action: "ec2:ReplaceRoute", Resource: "arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0123456789abcdef0", Context: roleRTB})
}

// foreign are requests eipclaim never sends, which every shipped policy
// must deny.
var foreign = []testenv.Authorization{
	{Action: "ec2:CreateTags", Resource: instance, Context: tags(claim.TagHolder)},                                    // tag an instance
	{Action: "ec2:CreateTags", Resource: sg, Context: tags("Name")},                                                   // tag a security group
	{Action: "ec2:CreateTags", Resource: eip, Context: tags("eipclaim-role")},                                         // a foreign key on an EIP
	{Action: "ec2:CreateTags", Resource: eip, Context: tags(claim.TagHolder, "eip-pool")},                             // one foreign key among eipclaim's
	{Action: "ec2:DeleteTags", Resource: eip, Context: map[string]any{"aws:TagKeys": []string{"eipclaim-role"}}},      // delete a foreign tag
	{Action: "ec2:DeleteTags", Resource: eip, Context: map[string]any{"aws:TagKeys": []string{claim.TagEpoch}}},       // delete the epoch
	{Action: "ec2:DeleteTags", Resource: instance, Context: map[string]any{"aws:TagKeys": []string{claim.TagHolder}}}, // untag an instance
	{Action: "ec2:DeleteTags", Resource: eip},                                                                         // no keys: delete every tag of the EIP (ForAllValues is true of an empty set)
	{Action: "ec2:CreateTags", Resource: eip},                                                                         // no keys (the same hole, for symmetry)
	{Action: "ec2:AllocateAddress", Resource: eip},
	{Action: "ec2:ReleaseAddress", Resource: eip},
	{Action: "ec2:TerminateInstances", Resource: instance},
	{Action: "ec2:TerminateInstances", Resource: instance, Context: roleTagged},                                 // fencing stops, never terminates
	{Action: "ec2:StopInstances", Resource: instance},                                                           // an instance without tags
	{Action: "ec2:StopInstances", Resource: instance, Context: map[string]any{"aws:ResourceTag/Name": "web-1"}}, // an instance of no role
	{Action: "ec2:StartInstances", Resource: instance, Context: roleTagged},
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"UPSERT"}, []string{"AAAA"}, []string{"db.example.internal"})}, // an AAAA record
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"UPSERT"}, []string{"CNAME", "A"}, []string{"db.example.internal", "x.example.internal"})}, // both types in one batch
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"DELETE"}, []string{"A"}, []string{"db.example.internal"})},                                // a DELETE of an A record
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"DELETE"}, []string{"CNAME"}, []string{"db.example.internal"})},                            // a DELETE
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"UPSERT", "DELETE"}, []string{"CNAME"}, []string{"db.example.internal"})},                  // a DELETE in a batch of UPSERTs
	{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: change([]string{"UPSERT"}, []string{"CNAME", "NS"}, []string{"example.internal", "db.example.internal"})},  // NS at the apex
	{Action: "route53:DeleteHostedZone", Resource: roleZone},
	{Action: "s3:GetObject", Resource: otherObj},    // another object of the bucket
	{Action: "s3:PutObject", Resource: configObj},   // the configuration object
	{Action: "s3:PutObject", Resource: otherObj},    // another object
	{Action: "s3:DeleteObject", Resource: tableObj}, // delete the table
	{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]any{"s3:prefix": ""}},
	{Action: "iam:PassRole", Resource: "arn:aws:iam::123456789012:role/admin"},
}

// foreignFor are the foreign requests of one caller besides the common
// ones.
var foreignFor = map[testenv.Caller][]testenv.Authorization{
	// Only the controller completes lifecycle actions.
	testenv.CallerInstance: {{Action: "autoscaling:CompleteLifecycleAction", Resource: asg}},
	// The controller's zones are its parameters: a change elsewhere.
	testenv.CallerController: {
		{Action: "route53:ChangeResourceRecordSets", Resource: otherZone, Context: cnameUpsert},
		{Action: "route53:ChangeResourceRecordSets", Resource: otherZone, Context: aUpsert},
		{Action: "route53:ListResourceRecordSets", Resource: otherZone},
	},
	// A client off EC2 touches no EC2 and no DNS.
	testenv.CallerClient: {
		{Action: "ec2:DescribeAddresses", Resource: "*"},
		{Action: "ec2:AssociateAddress", Resource: eip},
		{Action: "ec2:StopInstances", Resource: instance, Context: roleTagged},
		{Action: "ec2:CreateTags", Resource: eip, Context: tags(claim.TagsWritten...)},
		{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: cnameUpsert},
		{Action: "route53:ChangeResourceRecordSets", Resource: roleZone, Context: aUpsert},
		{Action: "autoscaling:CompleteLifecycleAction", Resource: asg},
	},
}

var callers = []testenv.Caller{testenv.CallerInstance, testenv.CallerController, testenv.CallerClient}

func describe(a testenv.Authorization) string {
	return fmt.Sprintf("%s on %s %v", a.Action, a.Resource, a.Context)
}

// TestShippedPoliciesAllowWhatTheCodeSends: each caller's policy allows
// the requests it sends, with the tag keys of claim.TagsWritten and
// claim.TagsDeleted.
func TestShippedPoliciesAllowWhatTheCodeSends(t *testing.T) {
	for _, c := range callers {
		t.Run(string(c), func(t *testing.T) {
			for _, a := range needed[c] {
				d, err := testenv.Evaluate(c, evalValues, a)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Allowed() {
					t.Errorf("%s denies %s: %+v", c.PolicyFile(), describe(a), d)
				}
			}
		})
	}
}

// TestShippedPoliciesDenyForeignRequests: least privilege the other way
// round. Each request must be evaluated (a request the evaluator cannot
// evaluate proves nothing) and denied.
func TestShippedPoliciesDenyForeignRequests(t *testing.T) {
	for _, c := range callers {
		t.Run(string(c), func(t *testing.T) {
			for _, a := range append(append([]testenv.Authorization{}, foreign...), foreignFor[c]...) {
				d, err := testenv.Evaluate(c, evalValues, a)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case d.Error != "":
					t.Errorf("%s: the evaluator cannot evaluate it: %s", describe(a), d.Error)
				case len(d.Ignored) > 0:
					t.Errorf("%s: the evaluator ignores the context keys %v", describe(a), d.Ignored)
				case d.Decision == "Allowed":
					t.Errorf("%s allows %s, which eipclaim never sends", c.PolicyFile(), describe(a))
				default:
					t.Logf("denied (%s): %s", d.Decision, describe(a))
				}
			}
		})
	}
}

// TestEvaluatorFailsUnknownRequests: an action the evaluator does not know,
// or a resource of a type the action does not take, is an error, never a
// denial that a foreign-request table could count.
func TestEvaluatorFailsUnknownRequests(t *testing.T) {
	for _, a := range []testenv.Authorization{
		{Action: "ec2:AssociateAddresses", Resource: eip},
		{Action: "s3:GetObject", Resource: bucketARN},
	} {
		d, err := testenv.Evaluate(testenv.CallerInstance, evalValues, a)
		if err != nil {
			t.Fatal(err)
		}
		if d.Error == "" || d.Allowed() {
			t.Errorf("%s: %+v, want an evaluation error", describe(a), d)
		}
	}
}
