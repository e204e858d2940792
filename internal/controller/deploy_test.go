package controller_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.yaml.in/yaml/v3"

	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func templatePath(t *testing.T) string {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy", "eipclaim-controller.yaml")
}

// TestTemplateCreatesInMoto creates deploy/eipclaim-controller.yaml as a
// stack in moto's CloudFormation and fails unless it reaches
// CREATE_COMPLETE with the function, its role and the rules.
func TestTemplateCreatesInMoto(t *testing.T) {
	moto := testenv.SharedMoto(t)
	cfg := moto.Config()
	body, err := os.ReadFile(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	// The function's code: a zip with a bootstrap in it, as make lambda builds.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("#!/bin/sh\n"))
	zw.Close()
	s3c := s3.NewFromConfig(cfg)
	for _, b := range []string{"code-bucket", "fleet-config"} {
		if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("code-bucket"), Key: aws.String("eipclaim-lambda-arm64.zip"), Body: bytes.NewReader(zb.Bytes())}); err != nil {
		t.Fatal(err)
	}
	cf := cloudformation.NewFromConfig(cfg)
	_, err = cf.CreateStack(t.Context(), &cloudformation.CreateStackInput{
		StackName: aws.String("eipclaim-controller"), TemplateBody: aws.String(string(body)),
		Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam},
		Parameters: []cftypes.Parameter{
			{ParameterKey: aws.String("CodeBucket"), ParameterValue: aws.String("code-bucket")},
			{ParameterKey: aws.String("CodeKey"), ParameterValue: aws.String("eipclaim-lambda-arm64.zip")},
			{ParameterKey: aws.String("ConfigBucket"), ParameterValue: aws.String("fleet-config")},
			{ParameterKey: aws.String("HostedZoneIds"), ParameterValue: aws.String("Z0123456789ABCDEFGHIJ,Z1111111111111111111")},
		},
	})
	if err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	var st *cftypes.Stack
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String("eipclaim-controller")})
		if err != nil {
			t.Fatal(err)
		}
		st = &out.Stacks[0]
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			break
		}
	}
	if st.StackStatus != cftypes.StackStatusCreateComplete {
		t.Fatalf("stack %s: %s", st.StackStatus, aws.ToString(st.StackStatusReason))
	}
	res, err := cf.DescribeStackResources(t.Context(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String("eipclaim-controller")})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, r := range res.StackResources {
		types[aws.ToString(r.ResourceType)] = true
	}
	for _, want := range []string{"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Events::Rule", "AWS::Lambda::Permission"} {
		if !types[want] {
			t.Errorf("the stack has no %s (it has %v)", want, types)
		}
	}

	// The role's policy as CloudFormation made it is the one the IAM gate
	// judges the controller with (testenv.Policy resolves the template
	// itself): same statements, the zones of HostedZoneIds, the two objects.
	var roleName string
	for _, r := range res.StackResources {
		if aws.ToString(r.LogicalResourceId) == "Role" {
			roleName = aws.ToString(r.PhysicalResourceId)
		}
	}
	body2 := moto.IAMQuery(t, url.Values{"Action": {"GetRolePolicy"}, "RoleName": {roleName}, "PolicyName": {"eipclaim-controller"}})
	var out struct {
		Document string `xml:"GetRolePolicyResult>PolicyDocument"`
	}
	if err := xml.Unmarshal(body2, &out); err != nil {
		t.Fatalf("GetRolePolicy %s: %v\n%s", roleName, err, body2)
	}
	doc, err := url.QueryUnescape(out.Document)
	if err != nil {
		doc = out.Document
	}
	gate, err := testenv.Policy(testenv.CallerController, testenv.PolicyValues{
		ConfigObject: "fleet-config/eipclaim.yaml", TableObject: "fleet-config/roles.json",
		ZoneIDs: []string{"Z0123456789ABCDEFGHIJ", "Z1111111111111111111"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// moto stores a policy made by CloudFormation as Python's repr of it:
	// single quotes (the policy holds no other quote).
	if strings.HasPrefix(doc, "{'") {
		doc = strings.ReplaceAll(doc, "'", `"`)
	}
	var fromStack, fromGate any
	if err := json.Unmarshal([]byte(doc), &fromStack); err != nil {
		t.Fatalf("the role's policy %q: %v", doc, err)
	}
	if err := json.Unmarshal(gate, &fromGate); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromStack, fromGate) {
		t.Errorf("the stack's role policy differs from the gate's:\nstack: %s\ngate:  %s", doc, gate)
	}
}

// TestTemplatePolicyMatchesCode: the function's role grants exactly the
// actions the controller calls (controller.Actions), plus Lambda's log
// actions; and every "service:Action" operation the controller and the
// claim engine name is in controller.Actions.
func TestTemplatePolicyMatchesCode(t *testing.T) {
	body, err := os.ReadFile(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Policies []struct {
					PolicyDocument struct {
						Statement []struct {
							Sid    string   `yaml:"Sid"`
							Effect string   `yaml:"Effect"`
							Action []string `yaml:"Action"`
						} `yaml:"Statement"`
					} `yaml:"PolicyDocument"`
				} `yaml:"Policies"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(body, &tpl); err != nil {
		t.Fatal(err)
	}
	var granted []string
	for _, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		for _, p := range r.Properties.Policies {
			for _, s := range p.PolicyDocument.Statement {
				if s.Effect != "Allow" {
					t.Errorf("statement %s: Effect %s", s.Sid, s.Effect)
				}
				for _, a := range s.Action {
					if strings.Contains(a, "*") {
						t.Errorf("statement %s: %s: name each action", s.Sid, a)
					}
					granted = append(granted, a)
				}
			}
		}
	}
	want := append(slices.Clone(controller.Actions), "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
	slices.Sort(granted)
	granted = slices.Compact(granted) // CreateTags and DeleteTags: on EIPs and a role's interfaces; ChangeResourceRecordSets: CNAMEs and A records
	slices.Sort(want)
	if !slices.Equal(granted, want) {
		t.Errorf("the template grants %v\nthe code calls     %v", granted, want)
	}
	root, _ := testenv.ModuleRoot()
	opRE := regexp.MustCompile(`"((?:ec2|route53|s3|autoscaling):[A-Z][A-Za-z0-9]+)"`)
	for _, dir := range []string{"internal/controller", "internal/claim", "internal/publish"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range opRE.FindAllStringSubmatch(string(b), -1) {
				if !slices.Contains(controller.Actions, m[1]) {
					t.Errorf("%s calls %s, which controller.Actions (and so the template) lacks", f, m[1])
				}
			}
		}
	}
}
