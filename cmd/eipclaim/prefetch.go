package main

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/claim"
)

// prefetchedEC2 is the EC2 client of a claim whose first look at this
// instance (DescribeInstances: its interfaces and private IPs) was sent as
// soon as the identity was known, while the configuration loads: the two do
// not depend on each other. The claim engine's first DescribeInstances of
// this instance gets that answer; every other call, a retry included, goes
// to the API.
type prefetchedEC2 struct {
	claim.EC2API
	self string
	used atomic.Bool
	done chan struct{}
	out  *ec2.DescribeInstancesOutput
	err  error
}

// prefetchSelf sends DescribeInstances for self now.
func prefetchSelf(ctx context.Context, api claim.EC2API, self string) *prefetchedEC2 {
	p := &prefetchedEC2{EC2API: api, self: self, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.out, p.err = api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{self}})
	}()
	return p
}

func (p *prefetchedEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if in.DryRun == nil && len(in.InstanceIds) == 1 && in.InstanceIds[0] == p.self && len(in.Filters) == 0 && !p.used.Swap(true) {
		select {
		case <-p.done:
			return p.out, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.EC2API.DescribeInstances(ctx, in, optFns...)
}
