package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Caller is who sends a request through the IAM gate in front of moto: the
// access key id of its SigV4 signature says which shipped policy judges it.
type Caller string

const (
	// CallerInstance is eipclaim on an instance (claim, watch, status,
	// check, release, boot, hosts from Route 53): docs/iam-policy.json.
	CallerInstance Caller = "instance"
	// CallerController is the off-box controller (the Lambda function): the
	// policy of the Role in deploy/eipclaim-controller.yaml.
	CallerController Caller = "controller"
	// CallerClient is a client off EC2 (register, hosts --from):
	// docs/iam-client-policy.json.
	CallerClient Caller = "client"
)

// AdminAccessKey is the key of [Moto.Config]: the test's own seeding and
// inspection, which the gate lets through unevaluated.
const AdminAccessKey = "testing"

// accessKeys maps each caller to its access key id.
var accessKeys = map[Caller]string{
	CallerInstance:   "AKIAEIPCLAIMINSTANCE",
	CallerController: "AKIAEIPCLAIMCONTROLLER",
	CallerClient:     "AKIAEIPCLAIMCLIENT",
}

// callerOfKey is the caller whose access key id is key.
func callerOfKey(key string) (Caller, bool) {
	for c, k := range accessKeys {
		if k == key {
			return c, true
		}
	}
	return "", false
}

// PolicyFile is the file of the repository that holds c's policy.
func (c Caller) PolicyFile() string {
	switch c {
	case CallerInstance:
		return "docs/iam-policy.json"
	case CallerController:
		return "deploy/eipclaim-controller.yaml"
	case CallerClient:
		return "docs/iam-client-policy.json"
	}
	return ""
}

// PolicyValues are the values a user puts into a shipped policy: the S3
// objects of the configuration and of the role table ("bucket/key"), and
// the hosted zones the controller may change. The gate instantiates each
// policy with the test's values, as a user would with theirs.
type PolicyValues struct {
	ConfigObject string   // default fleet/eipclaim.yaml
	TableObject  string   // default fleet-config/roles.json
	ZoneIDs      []string // the controller's HostedZoneIds; default none
}

// DefaultPolicyValues are the values of a test that sets none: the
// objects most tests use.
var DefaultPolicyValues = PolicyValues{ConfigObject: "fleet/eipclaim.yaml", TableObject: "fleet-config/roles.json"}

func (v PolicyValues) withDefaults() PolicyValues {
	if v.ConfigObject == "" {
		v.ConfigObject = DefaultPolicyValues.ConfigObject
	}
	if v.TableObject == "" {
		v.TableObject = DefaultPolicyValues.TableObject
	}
	return v
}

// The example values of the shipped JSON policies, replaced by the test's.
const (
	docConfigARN = "arn:aws:s3:::fleet-config/eipclaim.yaml"
	docTableARN  = "arn:aws:s3:::fleet-config/roles.json"
)

// Policy returns c's shipped policy document instantiated with v.
func Policy(c Caller, v PolicyValues) (json.RawMessage, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	v = v.withDefaults()
	file := c.PolicyFile()
	if file == "" {
		return nil, fmt.Errorf("no policy for caller %q", c)
	}
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	var doc any
	switch c {
	case CallerController:
		doc, err = controllerPolicy(b, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		doc = replaceStrings(doc, map[string]string{
			docConfigARN: "arn:aws:s3:::" + v.ConfigObject,
			docTableARN:  "arn:aws:s3:::" + v.TableObject,
		})
	}
	return json.Marshal(doc)
}

// replaceStrings returns doc with every string equal to a key of m
// replaced by its value.
func replaceStrings(doc any, m map[string]string) any {
	switch d := doc.(type) {
	case string:
		if r, ok := m[d]; ok {
			return r
		}
		return d
	case []any:
		out := make([]any, len(d))
		for i, e := range d {
			out[i] = replaceStrings(e, m)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(d))
		for k, e := range d {
			out[k] = replaceStrings(e, m)
		}
		return out
	}
	return doc
}

// controllerPolicy is the policy document of the Role in the controller's
// CloudFormation template, with its parameters, pseudo parameters and
// intrinsic functions (Ref, Fn::Sub, Fn::Join, Fn::Split) resolved as
// CloudFormation would for a stack in moto's account and region.
func controllerPolicy(template []byte, v PolicyValues) (any, error) {
	var t struct {
		Parameters map[string]struct {
			Type    string `yaml:"Type"`
			Default any    `yaml:"Default"`
		} `yaml:"Parameters"`
		Resources map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(template, &t); err != nil {
		return nil, err
	}
	cb, ck, _ := strings.Cut(v.ConfigObject, "/")
	tb, tk, _ := strings.Cut(v.TableObject, "/")
	params := map[string]any{
		"AWS::Partition": "aws",
		"AWS::Region":    MotoRegion,
		"AWS::AccountId": motoAccount,
		"ConfigBucket":   cb,
		"ConfigKey":      ck,
		"TableBucket":    tb,
		"TableKey":       tk,
		"HostedZoneIds":  slices.Clone(v.ZoneIDs),
	}
	for name, p := range t.Parameters {
		if _, ok := params[name]; !ok && p.Default != nil {
			params[name] = fmt.Sprint(p.Default)
		}
	}
	if ids := params["HostedZoneIds"].([]string); len(ids) == 0 {
		// CloudFormation refuses an empty list parameter; a test
		// without zones gives the controller a zone that does not exist.
		params["HostedZoneIds"] = []string{"ZNOZONEGIVEN"}
	}
	role, ok := t.Resources["Role"]
	if !ok || role.Type != "AWS::IAM::Role" {
		return nil, fmt.Errorf("no AWS::IAM::Role named Role")
	}
	pols, _ := role.Properties["Policies"].([]any)
	if len(pols) != 1 {
		return nil, fmt.Errorf("the Role has %d inline policies, want 1", len(pols))
	}
	p, _ := pols[0].(map[string]any)
	return resolveCFN(p["PolicyDocument"], params)
}

// motoAccount is the account id of moto's resources.
const motoAccount = "123456789012"

// resolveCFN evaluates the intrinsic functions in v.
func resolveCFN(v any, params map[string]any) (any, error) {
	switch d := v.(type) {
	case []any:
		out := make([]any, 0, len(d))
		for _, e := range d {
			r, err := resolveCFN(e, params)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	case map[string]any:
		if len(d) == 1 {
			for fn, arg := range d {
				switch fn {
				case "Ref":
					name, _ := arg.(string)
					r, ok := params[name]
					if !ok {
						return nil, fmt.Errorf("a Ref of %q: no such parameter", name)
					}
					return r, nil
				case "Fn::Sub":
					return cfnSub(arg, params)
				case "Fn::Join":
					args, _ := arg.([]any)
					if len(args) != 2 {
						return nil, fmt.Errorf("Fn::Join: want [delimiter, list]")
					}
					list, err := resolveCFN(args[1], params)
					if err != nil {
						return nil, err
					}
					var parts []string
					for _, e := range asList(list) {
						parts = append(parts, fmt.Sprint(e))
					}
					return strings.Join(parts, fmt.Sprint(args[0])), nil
				case "Fn::Split":
					args, _ := arg.([]any)
					if len(args) != 2 {
						return nil, fmt.Errorf("Fn::Split: want [delimiter, string]")
					}
					s, err := resolveCFN(args[1], params)
					if err != nil {
						return nil, err
					}
					var out []any
					for _, e := range strings.Split(fmt.Sprint(s), fmt.Sprint(args[0])) {
						out = append(out, e)
					}
					return out, nil
				}
				if strings.HasPrefix(fn, "Fn::") {
					return nil, fmt.Errorf("%s: not supported by the gate", fn)
				}
			}
		}
		out := make(map[string]any, len(d))
		for k, e := range d {
			r, err := resolveCFN(e, params)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []string:
		return d, nil
	}
	return v, nil
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return []any{v}
}

// cfnSub evaluates Fn::Sub: a string, or [string, {name: value}].
func cfnSub(arg any, params map[string]any) (any, error) {
	local := map[string]any{}
	s, ok := arg.(string)
	if !ok {
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("Fn::Sub: want a string or [string, variables]")
		}
		s, _ = l[0].(string)
		vars, _ := l[1].(map[string]any)
		for k, e := range vars {
			r, err := resolveCFN(e, params)
			if err != nil {
				return nil, err
			}
			local[k] = r
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return nil, fmt.Errorf("Fn::Sub %q: unclosed ${", s)
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		r, ok := local[name]
		if !ok {
			r, ok = params[name]
		}
		if !ok {
			return nil, fmt.Errorf("Fn::Sub: no parameter %q", name)
		}
		if _, isList := r.([]string); isList {
			return nil, fmt.Errorf("Fn::Sub: parameter %q is a list", name)
		}
		b.WriteString(fmt.Sprint(r))
		s = s[i+j+1:]
	}
}

// Authorization is one check AWS makes for a request: Action on Resource
// (an ARN, or * for actions without resource types) with the request's
// condition keys.
type Authorization struct {
	Action   string
	Resource string
	Context  map[string]any // string or []string values
}

// Evaluate says what caller c's shipped policy, instantiated with v, decides
// for a, by the IAM evaluator the gate uses. An error means the policy
// cannot be read or the evaluator does not run; a request the evaluator
// cannot evaluate (an unknown action, a resource of no type the action
// takes) comes back as a Decision with Error set.
func Evaluate(c Caller, v PolicyValues, a Authorization) (Decision, error) {
	policy, err := Policy(c, v)
	if err != nil {
		return Decision{}, err
	}
	ev, err := sharedEvaluator()
	if err != nil {
		return Decision{}, err
	}
	return ev.evaluate(policy, a.Action, a.Resource, a.Context), nil
}
