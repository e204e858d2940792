package claim

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"

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
	"ec2:AssociateAddress",
	"ec2:CreateTags",
	"ec2:DeleteTags",
	"ec2:DescribeAddresses",
	"ec2:DescribeInstanceStatus",
	"ec2:DescribeInstances",
	"ec2:DescribeNetworkInterfaces",
	"ec2:DisassociateAddress",
	"ec2:StopInstances", // fence: stop only
}

// SecondaryActions are the EC2 actions a claim of a role's private_address
// (a secondary private IP) calls besides Actions: in the instance's IAM
// policy and the controller's.
var SecondaryActions = []string{
	"ec2:AssignPrivateIpAddresses",
	"ec2:DescribeSubnets",
	"ec2:UnassignPrivateIpAddresses",
}

// OverlayActions are the EC2 actions a claim of a role's overlay address
// (overlay) calls besides Actions (release: DeleteRoute): in the
// instance's IAM policy and the controller's.
var OverlayActions = []string{
	"ec2:CreateRoute",
	"ec2:DeleteRoute",
	"ec2:DescribeRouteTables",
	"ec2:DescribeVpcs",
	"ec2:ReplaceRoute",
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
	if alloc == "" && spec.HasEIP() {
		addrs, err := e.Addresses(ctx, spec, false)
		if err != nil {
			return nil, err
		}
		if len(addrs) > 0 {
			alloc = addrs[0].AllocationID
		}
	}
	dry := aws.Bool(true)
	calls := []call{
		{"ec2:DescribeInstances", func() error {
			_, err := e.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{e.InstanceID}, DryRun: dry})
			return err
		}, ""},
		{"ec2:DescribeAddresses", func() error {
			_, err := e.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{DryRun: dry})
			return err
		}, ""},
		{"ec2:DescribeInstanceStatus", func() error {
			_, err := e.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{e.InstanceID}, DryRun: dry})
			return err
		}, ""},
		{"ec2:DescribeNetworkInterfaces", func() error {
			_, err := e.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{tgt.eni}, DryRun: dry})
			return err
		}, ""},
		{"ec2:AssociateAddress", func() error {
			_, err := e.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(alloc), NetworkInterfaceId: aws.String(tgt.eni), AllowReassociation: aws.Bool(false), DryRun: dry})
			return err
		}, ""},
		{"ec2:CreateTags", func() error {
			_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{alloc}, Tags: []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(e.InstanceID)}}, DryRun: dry})
			return err
		}, ""},
		{"ec2:DeleteTags", func() error {
			_, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{alloc}, Tags: []types.Tag{{Key: aws.String(TagHolder), Value: aws.String(e.InstanceID)}}, DryRun: dry})
			return err
		}, ""},
		{"ec2:DisassociateAddress", func() error {
			_, err := e.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String("eipassoc-00000000000000000"), DryRun: dry})
			return err
		}, ""},
	}
	if !spec.HasEIP() {
		calls = slices.DeleteFunc(calls, func(c call) bool { return eipOnly[c.action] })
	}
	if spec.PrivateAddress != "" {
		calls = append(calls, e.secondaryCalls(ctx, spec, tgt)...)
	}
	if spec.Overlay != nil {
		calls = append(calls, e.overlayCalls(ctx, spec, tgt)...)
	}
	if spec.EffectiveFence() == config.FenceStop {
		// A fence stops another instance of the role; this one, tagged
		// like it (eipclaim:role), stands in for it: the shipped policy
		// allows stopping the instances that carry the tag.
		calls = append(calls, call{"ec2:StopInstances", func() error {
			_, err := e.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{e.InstanceID}, Force: aws.Bool(true), DryRun: dry})
			return err
		}, ""})
	}
	var out []Permission
	for _, c := range calls {
		p := Permission{Action: c.action}
		err := c.call()
		class, code := retry.Classify(c.action, err)
		switch {
		case err == nil, code == "DryRunOperation", code == "InvalidAssociationID.NotFound":
			p.Allowed = true
		case c.allowedCode != "" && code == c.allowedCode:
			p.Allowed = true // refused after authorization: see secondaryCalls
		default:
			p.Code, p.Detail, p.Denied = code, err.Error(), class == retry.Denied
		}
		out = append(out, p)
	}
	return out, nil
}

// call is one DryRun (or harmless) call of Permissions. allowedCode, when
// set, is an error code EC2 answers only once the call is authorized.
type call struct {
	action      string
	call        func() error
	allowedCode string
}

// eipOnly are the calls of Permissions that only a role with an EIP makes.
var eipOnly = map[string]bool{
	"ec2:DescribeAddresses":   true,
	"ec2:AssociateAddress":    true,
	"ec2:DisassociateAddress": true,
	"ec2:CreateTags":          true,
	"ec2:DeleteTags":          true,
}

// secondaryCalls are the calls a claim of the role's private_address makes,
// asked without changing anything. AssignPrivateIpAddresses and
// UnassignPrivateIpAddresses have no DryRun: they are asked for the
// subnet's first address, which AWS reserves in every subnet, on this
// instance's interface, so that EC2 refuses them with
// InvalidParameterValue once they are authorized (UnauthorizedOperation
// when not). The tag calls are dry runs on this interface with the role's
// keys. The first line says whether the address is in the interface's
// subnet (a secondary private IP moves only within one).
func (e *Engine) secondaryCalls(ctx context.Context, spec *config.Role, tgt *target) []call {
	var cidr netip.Prefix
	subnetErr := errors.New("not read")
	calls := []call{
		{"ec2:DescribeSubnets", func() error {
			_, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{tgt.subnet}, DryRun: aws.Bool(true)})
			return err
		}, ""},
		{"private_address " + spec.PrivateAddress + " in the subnet of " + tgt.eni, func() error {
			cidr, subnetErr = e.subnetCIDR(ctx, tgt, spec.PrivateAddress)
			return subnetErr
		}, ""},
	}
	reserved := func() string {
		if subnetErr != nil {
			return "0.0.0.0" // the subnet is unknown: still a refused address
		}
		return cidr.Masked().Addr().String()
	}
	hk, ck, ek := SecondaryTagKeys(spec.Name)
	tags := []types.Tag{{Key: aws.String(hk), Value: aws.String(e.InstanceID)}, {Key: aws.String(ck), Value: aws.String("x")}, {Key: aws.String(ek), Value: aws.String("0")}}
	return append(calls,
		call{"ec2:AssignPrivateIpAddresses", func() error {
			_, err := e.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(tgt.eni), PrivateIpAddresses: []string{reserved()}, AllowReassignment: aws.Bool(false)})
			return err
		}, "InvalidParameterValue"},
		call{"ec2:UnassignPrivateIpAddresses", func() error {
			_, err := e.EC2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(tgt.eni), PrivateIpAddresses: []string{reserved()}})
			return err
		}, "InvalidParameterValue"},
		call{"ec2:CreateTags", func() error {
			_, err := e.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{tgt.eni}, Tags: tags, DryRun: aws.Bool(true)})
			return err
		}, ""},
		call{"ec2:DeleteTags", func() error {
			_, err := e.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{tgt.eni}, Tags: tags[:2], DryRun: aws.Bool(true)})
			return err
		}, ""},
	)
}

// overlayCalls are the calls a claim of the role's overlay address makes,
// asked without changing anything: the reads with DryRun; whether the
// address may be routed here (outside the VPC's CIDR, the listed tables
// of this instance's VPC, source/destination checking off on its
// interface: each says what to do); CreateRoute, ReplaceRoute and
// DeleteRoute of the address's /32 with DryRun in each listed table.
func (e *Engine) overlayCalls(ctx context.Context, spec *config.Role, tgt *target) []call {
	o := spec.Overlay
	dry := aws.Bool(true)
	dest := aws.String(overlayDest(o.Address))
	calls := []call{
		{"ec2:DescribeRouteTables", func() error {
			_, err := e.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: o.RouteTables, DryRun: dry})
			return err
		}, ""},
		{"ec2:DescribeVpcs", func() error {
			_, err := e.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{tgt.vpc}, DryRun: dry})
			return err
		}, ""},
		{"overlay address " + o.Address + " routable to " + tgt.eni + " (outside the VPC's CIDR, source/destination checking off)", func() error {
			return e.overlayRoutable(ctx, o, tgt)
		}, ""},
		{"route tables " + strings.Join(o.RouteTables, ", ") + " of VPC " + tgt.vpc, func() error {
			_, err := e.overlayRoutes(ctx, o, tgt)
			return err
		}, ""},
	}
	for _, rtb := range o.RouteTables {
		calls = append(calls,
			call{"ec2:CreateRoute", func() error {
				_, err := e.EC2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(tgt.eni), DryRun: dry})
				return err
			}, ""},
			call{"ec2:ReplaceRoute", func() error {
				_, err := e.EC2.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: dest, NetworkInterfaceId: aws.String(tgt.eni), DryRun: dry})
				return err
			}, ""},
			call{"ec2:DeleteRoute", func() error {
				_, err := e.EC2.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(rtb), DestinationCidrBlock: dest, DryRun: dry})
				return err
			}, ""},
		)
	}
	return calls
}
