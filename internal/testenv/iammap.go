package testenv

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// mapRequest maps a request to the authorizations AWS makes for it, after
// the Service Authorization Reference: the action, each resource the
// request names (each authorized separately), and the condition keys the
// request sets. An error means the gate does not know the request.
func (g *gate) mapRequest(r *http.Request, body []byte, service string) (*request, error) {
	req := &request{service: service, summary: r.Method + " " + r.URL.Path}
	var err error
	switch service {
	case "ec2":
		err = g.mapEC2(req, r, body)
	case "route53":
		err = mapRoute53(req, r, body)
	case "s3":
		err = mapS3(req, r)
	case "autoscaling":
		err = mapAutoScaling(req, body)
	case "":
		err = errors.New("the request is not signed with SigV4")
	default:
		err = fmt.Errorf("service %q is not one eipclaim uses", service)
	}
	return req, err
}

const (
	ec2ARN = "arn:aws:ec2:" + MotoRegion + ":" + motoAccount + ":"
	r53ARN = "arn:aws:route53:::"
)

// ec2ResourceTypes maps an EC2 id's prefix to its resource type in ARNs.
var ec2ResourceTypes = map[string]string{
	"eipalloc": "elastic-ip",
	"i":        "instance",
	"eni":      "network-interface",
	"sg":       "security-group",
	"vpc":      "vpc",
	"subnet":   "subnet",
	"vol":      "volume",
	"snap":     "snapshot",
	"igw":      "internet-gateway",
	"rtb":      "route-table",
	"acl":      "network-acl",
}

func ec2ResourceARN(id string) (string, error) {
	prefix, _, ok := strings.Cut(id, "-")
	if !ok {
		return "", fmt.Errorf("resource id %q: no type prefix", id)
	}
	if prefix == "ami" {
		return "arn:aws:ec2:" + MotoRegion + "::image/" + id, nil
	}
	t, ok := ec2ResourceTypes[prefix]
	if !ok {
		return "", fmt.Errorf("resource id %q: the gate knows no resource type for %s-", id, prefix)
	}
	return ec2ARN + t + "/" + id, nil
}

func (g *gate) mapEC2(req *request, r *http.Request, body []byte) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("EC2 query body: %w", err)
	}
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	action := form.Get("Action")
	req.summary = "EC2 " + action
	if form.Get("DryRun") == "true" {
		req.summary += " (DryRun)"
	}
	switch {
	case action == "":
		return errors.New("EC2 request without Action")
	case strings.HasPrefix(action, "Describe"):
		// EC2's Describe* actions have no resource-level permissions.
		req.checks = append(req.checks, Authorization{Action: "ec2:" + action, Resource: "*"})
		return nil
	case action == "AssociateAddress":
		var arns []string
		for _, p := range []string{"AllocationId", "InstanceId", "NetworkInterfaceId"} {
			if id := form.Get(p); id != "" {
				a, err := ec2ResourceARN(id)
				if err != nil {
					return err
				}
				arns = append(arns, a)
			}
		}
		if form.Get("AllocationId") == "" {
			return errors.New("AssociateAddress without AllocationId (EC2-Classic) is not something eipclaim sends")
		}
		req.summary += " " + form.Get("AllocationId")
		for _, a := range arns {
			c := Authorization{Action: "ec2:AssociateAddress", Resource: a}
			if id := form.Get("InstanceId"); id != "" && strings.HasSuffix(a, "/"+id) {
				if c.Context, err = g.resourceTags(r.Context(), id); err != nil {
					return err
				}
			}
			req.checks = append(req.checks, c)
		}
		return nil
	case action == "StopInstances":
		// Authorized per instance, with the instance's tags as
		// aws:ResourceTag/* (a fence stops only instances of a role).
		var ids []string
		for i := 1; ; i++ {
			id := form.Get("InstanceId." + strconv.Itoa(i))
			if id == "" {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return errors.New("StopInstances without InstanceId.1")
		}
		req.summary += " " + strings.Join(ids, ",")
		if form.Get("Force") == "true" {
			req.summary += " (Force)"
		}
		for _, id := range ids {
			a, err := ec2ResourceARN(id)
			if err != nil {
				return err
			}
			ctx, err := g.resourceTags(r.Context(), id)
			if err != nil {
				return err
			}
			req.checks = append(req.checks, Authorization{Action: "ec2:StopInstances", Resource: a, Context: ctx})
		}
		return nil
	case action == "AssignPrivateIpAddresses" || action == "UnassignPrivateIpAddresses":
		// Authorized on the interface, with its tags as
		// aws:ResourceTag/* (the shipped policy moves addresses only on
		// the interfaces of a role).
		eni := form.Get("NetworkInterfaceId")
		if eni == "" {
			return fmt.Errorf("%s without NetworkInterfaceId", action)
		}
		a, err := ec2ResourceARN(eni)
		if err != nil {
			return err
		}
		ctx, err := g.resourceTags(r.Context(), eni)
		if err != nil {
			return err
		}
		req.summary += " " + eni + " " + strings.Join(listParam(form, "PrivateIpAddress"), ",")
		req.checks = append(req.checks, Authorization{Action: "ec2:" + action, Resource: a, Context: ctx})
		return nil
	case action == "CreateRoute" || action == "ReplaceRoute" || action == "DeleteRoute":
		// Authorized on the route table, with its tags as
		// aws:ResourceTag/* (the shipped policy changes routes only in
		// the route tables of a role).
		rtb := form.Get("RouteTableId")
		if rtb == "" {
			return fmt.Errorf("%s without RouteTableId", action)
		}
		a, err := ec2ResourceARN(rtb)
		if err != nil {
			return err
		}
		ctx, err := g.resourceTags(r.Context(), rtb)
		if err != nil {
			return err
		}
		req.summary += " " + rtb + " " + form.Get("DestinationCidrBlock") + " " + form.Get("NetworkInterfaceId")
		req.checks = append(req.checks, Authorization{Action: "ec2:" + action, Resource: a, Context: ctx})
		return nil
	case action == "DisassociateAddress":
		assoc := form.Get("AssociationId")
		if assoc == "" {
			return errors.New("DisassociateAddress without AssociationId")
		}
		alloc, err := g.allocationOf(r.Context(), assoc)
		if err != nil {
			return err
		}
		req.summary += " " + assoc
		req.checks = append(req.checks, Authorization{Action: "ec2:DisassociateAddress", Resource: ec2ARN + "elastic-ip/" + alloc})
		return nil
	case action == "CreateTags" || action == "DeleteTags":
		var ids []string
		for i := 1; ; i++ {
			id := form.Get("ResourceId." + strconv.Itoa(i))
			if id == "" {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s without ResourceId.1", action)
		}
		ctx := map[string]any{}
		var keys []string
		for i := 1; ; i++ {
			k, ok := form["Tag."+strconv.Itoa(i)+".Key"]
			if !ok {
				break
			}
			keys = append(keys, k[0])
			if action == "CreateTags" {
				ctx["aws:RequestTag/"+k[0]] = form.Get("Tag." + strconv.Itoa(i) + ".Value")
			}
		}
		if len(keys) > 0 {
			ctx["aws:TagKeys"] = keys
		} else if action == "DeleteTags" {
			// DeleteTags without tags deletes every tag: aws:TagKeys is then
			// absent, which ForAllValues conditions accept; the gate wants
			// what the product sends, so it refuses to guess.
			return errors.New("DeleteTags without Tag.N.Key (deletes every tag)")
		}
		req.summary += " " + strings.Join(ids, ",") + " keys " + strings.Join(keys, ",")
		for _, id := range ids {
			a, err := ec2ResourceARN(id)
			if err != nil {
				return err
			}
			c := ctx
			if strings.HasPrefix(id, "eni-") {
				// An interface's tags are evaluated as aws:ResourceTag/*
				// (the shipped policy tags only the interfaces of a role).
				rt, err := g.resourceTags(r.Context(), id)
				if err != nil {
					return err
				}
				c = maps.Clone(ctx)
				maps.Copy(c, rt)
			}
			req.checks = append(req.checks, Authorization{Action: "ec2:" + action, Resource: a, Context: c})
		}
		return nil
	}
	return fmt.Errorf("EC2 action %s: the gate does not map it (add it to iammap.go if eipclaim needs it)", action)
}

// adminEC2 is moto's EC2 as the admin, for the gate's own look-ups.
func (g *gate) adminEC2() *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:       MotoRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(AdminAccessKey, AdminAccessKey, ""),
		BaseEndpoint: aws.String(g.target.String()),
	})
}

// resourceTags asks moto, with the admin key, for the tags of the
// instance id, as the context keys AWS evaluates a request on it with:
// aws:ResourceTag/KEY = value (nil when it has none). An instance moto
// does not know has no tags (and moto answers that it does not exist).
func (g *gate) resourceTags(ctx context.Context, id string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := g.adminEC2().DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{{Name: aws.String("resource-id"), Values: []string{id}}}})
	if err != nil {
		return nil, fmt.Errorf("look up the tags of %s: %w", id, err)
	}
	var keys map[string]any
	for _, t := range out.Tags {
		if keys == nil {
			keys = map[string]any{}
		}
		keys["aws:ResourceTag/"+aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return keys, nil
}

// allocationOf asks moto, with the admin key, which Elastic IP an
// association belongs to. An unknown association maps to a made-up
// allocation id, so that the policy still judges the request (and moto
// answers that the association does not exist).
func (g *gate) allocationOf(ctx context.Context, assoc string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := g.adminEC2().DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []ec2types.Filter{{Name: aws.String("association-id"), Values: []string{assoc}}}})
	if err != nil {
		return "", fmt.Errorf("look up association %s: %w", assoc, err)
	}
	if len(out.Addresses) == 0 {
		return "eipalloc-unknown", nil
	}
	return aws.ToString(out.Addresses[0].AllocationId), nil
}

var (
	r53ZoneRE   = regexp.MustCompile(`^/2013-04-01/hostedzone/([A-Za-z0-9]+)$`)
	r53RRSetRE  = regexp.MustCompile(`^/2013-04-01/hostedzone/([A-Za-z0-9]+)/rrset/?$`)
	r53ChangeRE = regexp.MustCompile(`^/2013-04-01/change/([A-Za-z0-9]+)$`)
)

func mapRoute53(req *request, r *http.Request, body []byte) error {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/2013-04-01/hostedzonesbyname":
		req.summary = "Route 53 ListHostedZonesByName"
		req.checks = append(req.checks, Authorization{Action: "route53:ListHostedZonesByName", Resource: "*"})
	case r.Method == http.MethodGet && p == "/2013-04-01/hostedzone":
		req.summary = "Route 53 ListHostedZones"
		req.checks = append(req.checks, Authorization{Action: "route53:ListHostedZones", Resource: "*"})
	case r.Method == http.MethodGet && r53ZoneRE.MatchString(p):
		id := r53ZoneRE.FindStringSubmatch(p)[1]
		req.summary = "Route 53 GetHostedZone " + id
		req.checks = append(req.checks, Authorization{Action: "route53:GetHostedZone", Resource: r53ARN + "hostedzone/" + id})
	case r.Method == http.MethodGet && r53RRSetRE.MatchString(p):
		id := r53RRSetRE.FindStringSubmatch(p)[1]
		req.summary = "Route 53 ListResourceRecordSets " + id
		req.checks = append(req.checks, Authorization{Action: "route53:ListResourceRecordSets", Resource: r53ARN + "hostedzone/" + id})
	case r.Method == http.MethodPost && r53RRSetRE.MatchString(p):
		id := r53RRSetRE.FindStringSubmatch(p)[1]
		var batch struct {
			Changes []struct {
				Action string `xml:"Action"`
				RRSet  struct {
					Name string `xml:"Name"`
					Type string `xml:"Type"`
				} `xml:"ResourceRecordSet"`
			} `xml:"ChangeBatch>Changes>Change"`
		}
		if err := xml.Unmarshal(body, &batch); err != nil {
			return fmt.Errorf("ChangeResourceRecordSets body: %w", err)
		}
		if len(batch.Changes) == 0 {
			return errors.New("ChangeResourceRecordSets without changes")
		}
		var actions, types, names []string
		for _, c := range batch.Changes {
			actions = append(actions, c.Action)
			types = append(types, c.RRSet.Type)
			names = append(names, normalizedRecordName(c.RRSet.Name))
		}
		slices.Sort(actions)
		slices.Sort(types)
		slices.Sort(names)
		req.summary = fmt.Sprintf("Route 53 ChangeResourceRecordSets %s %v %v %v", id, actions, types, names)
		req.checks = append(req.checks, Authorization{Action: "route53:ChangeResourceRecordSets", Resource: r53ARN + "hostedzone/" + id,
			Context: map[string]any{
				"route53:ChangeResourceRecordSetsActions":               slices.Compact(actions),
				"route53:ChangeResourceRecordSetsRecordTypes":           slices.Compact(types),
				"route53:ChangeResourceRecordSetsNormalizedRecordNames": slices.Compact(names),
			}})
	case r.Method == http.MethodGet && r53ChangeRE.MatchString(p):
		id := r53ChangeRE.FindStringSubmatch(p)[1]
		req.summary = "Route 53 GetChange " + id
		req.checks = append(req.checks, Authorization{Action: "route53:GetChange", Resource: r53ARN + "change/" + id})
	default:
		return fmt.Errorf("route53 %s %s: the gate does not map it", r.Method, p)
	}
	return nil
}

// normalizedRecordName is a record name as the condition key
// route53:ChangeResourceRecordSetsNormalizedRecordNames has it: lowercase,
// without the final dot.
func normalizedRecordName(n string) string {
	return strings.ToLower(strings.TrimSuffix(n, "."))
}

func mapS3(req *request, r *http.Request) error {
	bucket, key := s3Object(r.URL.Path)
	if bucket == "" {
		return errors.New("S3 request without a bucket (ListBuckets?)")
	}
	req.bucket = bucket
	q := r.URL.Query()
	q.Del("x-id") // the SDK names the operation; not a sub-resource
	if key == "" {
		if r.Method == http.MethodGet && (q.Get("list-type") == "2" || len(q) == 0 || q.Has("prefix")) {
			req.summary = "S3 ListObjectsV2 " + bucket
			ctx := map[string]any{}
			if q.Has("prefix") {
				ctx["s3:prefix"] = q.Get("prefix")
			}
			req.checks = append(req.checks, Authorization{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + bucket, Context: ctx})
			return nil
		}
		return fmt.Errorf("S3 %s of bucket %s with %v: the gate does not map it", r.Method, bucket, q)
	}
	if len(q) > 0 {
		return fmt.Errorf("S3 %s %s/%s with sub-resource %v: the gate does not map it", r.Method, bucket, key, q)
	}
	req.key = key
	obj := "arn:aws:s3:::" + bucket + "/" + key
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		op := "GetObject"
		if r.Method == http.MethodHead {
			op = "HeadObject"
		}
		req.summary = "S3 " + op + " " + bucket + "/" + key
		req.s3read = true
		req.checks = append(req.checks, Authorization{Action: "s3:GetObject", Resource: obj})
	case http.MethodPut:
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return errors.New("S3 CopyObject: the gate does not map it")
		}
		req.summary = "S3 PutObject " + bucket + "/" + key
		if v := r.Header.Get("If-Match"); v != "" {
			req.summary += " If-Match " + v
		}
		if v := r.Header.Get("If-None-Match"); v != "" {
			req.summary += " If-None-Match " + v
		}
		req.s3write = true
		req.checks = append(req.checks, Authorization{Action: "s3:PutObject", Resource: obj})
	case http.MethodDelete:
		req.summary = "S3 DeleteObject " + bucket + "/" + key
		req.checks = append(req.checks, Authorization{Action: "s3:DeleteObject", Resource: obj})
	default:
		return fmt.Errorf("S3 %s %s/%s: the gate does not map it", r.Method, bucket, key)
	}
	return nil
}

func mapAutoScaling(req *request, body []byte) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("autoscaling query body: %w", err)
	}
	action := form.Get("Action")
	req.summary = "Auto Scaling " + action
	if action != "CompleteLifecycleAction" {
		return fmt.Errorf("autoscaling action %q: the gate does not map it", action)
	}
	group := form.Get("AutoScalingGroupName")
	// The group's ARN holds a UUID the request does not carry; moto's
	// groups are named, and the policy's pattern matches any UUID.
	req.checks = append(req.checks, Authorization{Action: "autoscaling:CompleteLifecycleAction",
		Resource: "arn:aws:autoscaling:" + MotoRegion + ":" + motoAccount + ":autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/" + group})
	return nil
}
