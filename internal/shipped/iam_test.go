package shipped

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/observe"
)

// route53Actions are the Route 53 actions the DNS publisher calls.
// internal/publish exports no list of them (yet): they are written out here,
// and TestIAMPolicyActions also checks every "route53:…" name the code
// mentions against the policy. Replace with publish.Actions if it comes.
var route53Actions = []string{
	"route53:ChangeResourceRecordSets",
	"route53:GetChange",
	"route53:GetHostedZone",
	"route53:ListHostedZonesByName",
	"route53:ListResourceRecordSets",
}

// configActions are the actions of the configuration sources.
// tableActions: the role table (repository:) is read and written with
// conditional writes.
var tableActions = []string{"s3:PutObject"}

var configActions = []string{"s3:GetObject"}

// stringOrList is an IAM policy value: a string or a list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

type policy struct {
	Version   string
	Statement []policyStatement
}

type policyStatement struct {
	Sid       string
	Effect    string
	Action    stringOrList
	NotAction stringOrList
	Resource  stringOrList
	Condition map[string]map[string]stringOrList
}

func readPolicy(t *testing.T) *policy {
	t.Helper()
	var p policy
	dec := json.NewDecoder(strings.NewReader(string(readFile(t, "docs/iam-policy.json"))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("docs/iam-policy.json: %v", err)
	}
	return &p
}

// TestIAMPolicyActions keeps docs/iam-policy.json in step with the code: its
// actions are exactly claim.Actions and claim.SecondaryActions, the Route 53 publisher's and the S3
// source's, and every AWS action the code names is in it.
func TestIAMPolicyActions(t *testing.T) {
	p := readPolicy(t)
	if p.Version != "2012-10-17" {
		t.Errorf("Version %q, want 2012-10-17", p.Version)
	}
	inPolicy := map[string]bool{}
	resourcesOf := map[string][]string{} // action -> the resources granted so far
	sids := map[string]bool{}
	for i, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("statement %d (%s): Effect %q, want Allow", i, s.Sid, s.Effect)
		}
		if s.Sid == "" || sids[s.Sid] {
			t.Errorf("statement %d: Sid %q: want a unique name, docs/iam.md explains each", i, s.Sid)
		}
		sids[s.Sid] = true
		if len(s.NotAction) > 0 {
			t.Errorf("statement %s: NotAction grants too much", s.Sid)
		}
		if len(s.Resource) == 0 {
			t.Errorf("statement %s: no Resource", s.Sid)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s: action %q: name each action, no wildcards", s.Sid, a)
			}
			// An action may be in two statements on different resources
			// (ec2:CreateTags on EIPs and on interfaces, each with its
			// own keys), or on one with other conditions (Route 53's
			// CNAMEs and A records), never twice alike.
			for _, r := range s.Resource {
				key := r + " " + fmt.Sprint(s.Condition)
				if slices.Contains(resourcesOf[a], key) {
					t.Errorf("statement %s: action %q granted twice on %s", s.Sid, a, r)
				}
				resourcesOf[a] = append(resourcesOf[a], key)
			}
			inPolicy[a] = true
		}
	}

	want := map[string]bool{}
	for _, a := range slices.Concat(claim.Actions, claim.SecondaryActions, claim.OverlayActions, route53Actions, configActions, tableActions) {
		want[a] = true
	}
	for _, a := range slices.Sorted(maps.Keys(want)) {
		if !inPolicy[a] {
			t.Errorf("docs/iam-policy.json lacks %s, which eipclaim calls", a)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(inPolicy)) {
		if !want[a] {
			t.Errorf("docs/iam-policy.json grants %s, which eipclaim does not call", a)
		}
	}

	// Every "service:Action" the code names (in permission checks and
	// error messages) is in the policy.
	actionRE := regexp.MustCompile(`"((?:ec2|route53|s3|sts|kms):[A-Z][A-Za-z0-9]+)"`)
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "shipped" || d.Name() == "testenv") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range actionRE.FindAllStringSubmatch(string(b), -1) {
				if !inPolicy[m[1]] {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s names %s, which docs/iam-policy.json does not grant", rel, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestIAMPolicyConditions checks the narrowing the docs promise.
func TestIAMPolicyConditions(t *testing.T) {
	p := readPolicy(t)
	statementOf := map[string]int{} // action -> its statement (on EIPs, for the tag actions)
	for i, s := range p.Statement {
		for _, a := range s.Action {
			if _, seen := statementOf[a]; !seen {
				statementOf[a] = i
			}
		}
	}
	sid := func(name string) policyStatement {
		for _, s := range p.Statement {
			if s.Sid == name {
				return s
			}
		}
		t.Fatalf("docs/iam-policy.json has no statement %s", name)
		return policyStatement{}
	}

	t.Run("CreateTags only eipclaim's tags on EIPs", func(t *testing.T) {
		s := p.Statement[statementOf["ec2:CreateTags"]]
		if !slices.Equal(s.Resource, stringOrList{"arn:aws:ec2:*:*:elastic-ip/*"}) {
			t.Errorf("Resource %q, want only elastic-ip ARNs", s.Resource)
		}
		got := slices.Sorted(slices.Values(s.Condition["ForAllValues:StringEquals"]["aws:TagKeys"]))
		want := slices.Sorted(slices.Values(claim.TagsWritten))
		if !slices.Equal(got, want) {
			t.Errorf("aws:TagKeys %q, want %q (claim.TagsWritten, the tags a claim writes)", got, want)
		}
	})
	t.Run("DeleteTags only the tags a release deletes, on EIPs", func(t *testing.T) {
		s := p.Statement[statementOf["ec2:DeleteTags"]]
		if !slices.Equal(s.Resource, stringOrList{"arn:aws:ec2:*:*:elastic-ip/*"}) {
			t.Errorf("Resource %q, want only elastic-ip ARNs", s.Resource)
		}
		got := slices.Sorted(slices.Values(s.Condition["ForAllValues:StringEquals"]["aws:TagKeys"]))
		if want := slices.Sorted(slices.Values(claim.TagsDeleted)); !slices.Equal(got, want) {
			t.Errorf("aws:TagKeys %q, want %q (claim.TagsDeleted)", got, want)
		}
	})
	t.Run("secondary private IPs moved and tagged only on the interfaces of a role, with the role's keys", func(t *testing.T) {
		move := sid("MoveRolePrivateAddresses")
		if !slices.Equal(move.Action, stringOrList{"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}) {
			t.Errorf("MoveRolePrivateAddresses: Action %q", move.Action)
		}
		for _, s := range []policyStatement{move, sid("TagRoleInterfaces"), sid("UntagRoleInterfaces")} {
			if !slices.Equal(s.Resource, stringOrList{"arn:aws:ec2:*:*:network-interface/*"}) {
				t.Errorf("%s: Resource %q, want only network-interface ARNs", s.Sid, s.Resource)
			}
			if got := s.Condition["Null"]["aws:ResourceTag/"+observe.TagRole]; !slices.Equal(got, stringOrList{"false"}) {
				t.Errorf("%s: Condition %v, want Null aws:ResourceTag/%s false (the interface carries the role tag)", s.Sid, s.Condition, observe.TagRole)
			}
		}
		for name, want := range map[string][]string{"TagRoleInterfaces": claim.SecondaryTagPatterns, "UntagRoleInterfaces": claim.SecondaryTagsDeleted} {
			s := sid(name)
			got := slices.Sorted(slices.Values(s.Condition["ForAllValues:StringLike"]["aws:TagKeys"]))
			if want := slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
				t.Errorf("%s: aws:TagKeys %q, want %q", name, got, want)
			}
			if got := s.Condition["Null"]["aws:TagKeys"]; !slices.Equal(got, stringOrList{"false"}) {
				t.Errorf("%s: want Null aws:TagKeys false (a request without keys would touch every tag)", name)
			}
		}
	})
	t.Run("Associate and Disassociate on EIP, instance and ENI ARNs", func(t *testing.T) {
		for _, a := range []string{"ec2:AssociateAddress", "ec2:DisassociateAddress"} {
			s := p.Statement[statementOf[a]]
			want := []string{"arn:aws:ec2:*:*:elastic-ip/*", "arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:network-interface/*"}
			if !slices.Equal(slices.Sorted(slices.Values(s.Resource)), want) {
				t.Errorf("%s: Resource %q, want %q", a, s.Resource, want)
			}
		}
	})
	t.Run("StopInstances alone, only on instances tagged with a role", func(t *testing.T) {
		s := p.Statement[statementOf["ec2:StopInstances"]]
		if !slices.Equal(s.Action, stringOrList{"ec2:StopInstances"}) {
			t.Errorf("Action %q, want ec2:StopInstances alone (a statement that users who do not fence drop)", s.Action)
		}
		if !slices.Equal(s.Resource, stringOrList{"arn:aws:ec2:*:*:instance/*"}) {
			t.Errorf("Resource %q, want only instance ARNs", s.Resource)
		}
		if got := s.Condition["Null"]["aws:ResourceTag/"+observe.TagRole]; !slices.Equal(got, stringOrList{"false"}) {
			t.Errorf("Condition %v, want Null aws:ResourceTag/%s false (the instance carries the role tag)", s.Condition, observe.TagRole)
		}
	})
	t.Run("ChangeResourceRecordSets only UPSERT of CNAME", func(t *testing.T) {
		s := p.Statement[statementOf["route53:ChangeResourceRecordSets"]]
		c := s.Condition["ForAllValues:StringEquals"]
		if !slices.Equal(c["route53:ChangeResourceRecordSetsRecordTypes"], stringOrList{"CNAME"}) {
			t.Errorf("record types %q, want [CNAME]", c["route53:ChangeResourceRecordSetsRecordTypes"])
		}
		if !slices.Equal(c["route53:ChangeResourceRecordSetsActions"], stringOrList{"UPSERT"}) {
			t.Errorf("actions %q, want [UPSERT]", c["route53:ChangeResourceRecordSetsActions"])
		}
		if !slices.Equal(s.Resource, stringOrList{"arn:aws:route53:::hostedzone/*"}) {
			t.Errorf("Resource %q, want hosted zones", s.Resource)
		}
	})
	t.Run("A records apart: only UPSERT of A, in a statement of its own", func(t *testing.T) {
		s := sid("UpsertRolePrivateARecords")
		c := s.Condition["ForAllValues:StringEquals"]
		if !slices.Equal(s.Action, stringOrList{"route53:ChangeResourceRecordSets"}) || !slices.Equal(s.Resource, stringOrList{"arn:aws:route53:::hostedzone/*"}) {
			t.Errorf("Action %q on %q, want route53:ChangeResourceRecordSets on hosted zones", s.Action, s.Resource)
		}
		if !slices.Equal(c["route53:ChangeResourceRecordSetsRecordTypes"], stringOrList{"A"}) || !slices.Equal(c["route53:ChangeResourceRecordSetsActions"], stringOrList{"UPSERT"}) {
			t.Errorf("Condition %v, want record types [A], actions [UPSERT]", c)
		}
	})
	t.Run("describe actions on *", func(t *testing.T) {
		for _, a := range slices.Concat(claim.Actions, claim.SecondaryActions, claim.OverlayActions) {
			if !strings.Contains(a, ":Describe") {
				continue
			}
			s := p.Statement[statementOf[a]]
			if !slices.Equal(s.Resource, stringOrList{"*"}) {
				t.Errorf("%s: Resource %q, want * (EC2 Describe actions have no resource-level permissions)", a, s.Resource)
			}
			if len(s.Condition) > 0 {
				t.Errorf("%s: a Condition on a Describe action", a)
			}
		}
	})
}
