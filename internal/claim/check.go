package claim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Permission is the answer of one EC2 DryRun call.
type Permission struct {
	Action  string `json:"action"` // ec2:AssociateAddress
	Allowed bool   `json:"allowed"`
	Denied  bool   `json:"denied,omitempty"` // refused for want of permission (not some other error)
	Code    string `json:"code,omitempty"`   // the error code when not allowed
	Detail  string `json:"detail,omitempty"`
}

// Actions are the EC2 actions eipclaim calls, for the IAM policy.
var Actions = []string{
	"ec2:AssignPrivateIpAddresses", // private_address only
	"ec2:AssociateAddress",
	"ec2:CreateTags",
	"ec2:DeleteTags",
	"ec2:DescribeAddresses",
	"ec2:DescribeInstanceStatus",
	"ec2:DescribeInstances",
	"ec2:DescribeNetworkInterfaces",
	"ec2:DescribeSubnets", // private_address only
	"ec2:DisassociateAddress",
	"ec2:StopInstances",              // fence: stop only
	"ec2:UnassignPrivateIpAddresses", // private_address only
}

// Permissions asks EC2, with DryRun, whether every call a claim of spec
// makes is permitted. It changes nothing. DisassociateAddress cannot be
// dry-run without an association, so it is checked with one that does not
// exist: a NotFound answer means the permission is there. A role with
// fence: stop also asks StopInstances, on this instance (a DryRun stops
// nothing).
func (e *Engine) Permissions(ctx context.Context, spec *config.Role) ([]Permission, error) {
	tgt, err := e.target(ctx, spec)
	if err != nil {
		return nil, err
	}
	alloc := spec.AllocationID
	if alloc == "" {
		addrs, err := e.Addresses(ctx, spec, false)
		if err != nil {
			return nil, err
		}
		if len(addrs) > 0 {
			alloc = addrs[0].AllocationID
		}
	}
	dry := aws.Bool(true)
	calls := []struct {
		action string
		call   func() error
	}{
		{"ec2:DescribeInstances", func() error {
			_, err := e.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{e.InstanceID}, DryRun: dry})
			return err
		}},
		{"ec2:DescribeAddresses", func() error {
			_, err := e.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{DryRun: dry})
			return err
		}},
		{"ec2:DescribeInstanceStatus", func() error {
			_, err := e.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{e.InstanceID}, DryRun: dry})
			return err
		}},
		{"ec2:DescribeNetworkInterfaces", func() error {
			_, err := e.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{tgt.eni}, DryRun: dry})
			return err
		}},
		{"ec2:AssociateAddress", func() error {
			_, err := e.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(alloc), NetworkInterfaceId: aws.String(tgt.eni), AllowReassociation: aws.Bool(false), DryRun: dry})
			return err
		}},
		{"ec2:CreateTags", func() error {
			_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{alloc}, Tags: []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(e.InstanceID)}}, DryRun: dry})
			return err
		}},
		{"ec2:DeleteTags", func() error {
			_, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{alloc}, Tags: []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(e.InstanceID)}}, DryRun: dry})
			return err
		}},
		{"ec2:DisassociateAddress", func() error {
			_, err := e.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String("eipassoc-00000000000000000"), DryRun: dry})
			return err
		}},
	}
	if spec.EffectiveFence() == config.FenceStop {
		// A fence stops another instance of the role; this one, tagged
		// like it (eipclaim:role), stands in for it: the shipped policy
		// allows stopping the instances that carry the tag.
		calls = append(calls, struct {
			action string
			call   func() error
		}{"ec2:StopInstances", func() error {
			_, err := e.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{e.InstanceID}, Force: aws.Bool(true), DryRun: dry})
			return err
		}})
	}
	var out []Permission
	for _, c := range calls {
		p := Permission{Action: c.action}
		err := c.call()
		class, code := retry.Classify(c.action, err)
		switch {
		case err == nil, code == "DryRunOperation", code == "InvalidAssociationID.NotFound":
			p.Allowed = true
		default:
			p.Code, p.Detail, p.Denied = code, err.Error(), class == retry.Denied
		}
		out = append(out, p)
	}
	return out, nil
}
