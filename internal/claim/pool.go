package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// poolSettle is how long a pool that looks exhausted is read again before
// the claim is refused: a read may be stale (EC2's eventual consistency),
// showing an EIP released a moment ago still held. One read of the whole
// pool costs one DescribeAddresses whatever the pool's size, where
// confirming each EIP with an AssociateAddress would cost one mutating
// request per EIP.
const poolSettle = 5 * time.Second

// claimPool claims any free EIP of the pool, or keeps the one this
// instance already holds. A pool that looks exhausted is read again, with
// backoff, until poolSettle has passed since it first looked so: only
// then is the claim refused.
func (e *Engine) claimPool(ctx context.Context, log *slog.Logger, req Request, tgt *target) (*Result, error) {
	pool := describePool(req.Spec.Pool)
	tried := map[string]bool{}
	var exhausted missingSince
	for attempt := 1; ; attempt++ {
		addrs, err := e.poolAddresses(ctx, req.Spec.Pool)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("pool %s has no EIP: tag EIPs with %s, or fix pool.tags", pool, pool))
		}
		var free []types.Address
		for _, a := range addrs {
			eni := aws.ToString(a.NetworkInterfaceId)
			if slices.Contains(tgt.enis, eni) || aws.ToString(a.InstanceId) == e.InstanceID {
				// Ours already: keep it (on the configured interface).
				return e.claimOne(ctx, log, req, tgt, &a)
			}
			if eni == "" && aws.ToString(a.InstanceId) == "" && !tried[aws.ToString(a.AllocationId)] {
				free = append(free, a)
			}
		}
		if len(free) == 0 {
			now := e.clock().Now()
			if now.Sub(exhausted.first(now)) < poolSettle && !req.DryRun {
				b := e.Backoff
				if b.Base == 0 {
					b = retry.DefaultBackoff
				}
				delay := b.Delay(attempt)
				log.Debug("the pool looks exhausted; reading it again, as the read may be stale", "next_delay", delay.Round(time.Millisecond).String())
				if err := e.clock().Sleep(ctx, delay); err != nil {
					return nil, fmt.Errorf("pool %s looks exhausted (all %d EIPs held by other instances), and the claim ended before a later read could confirm it: %w", pool, len(addrs), err)
				}
				continue
			}
			return nil, exitcode.With(exitcode.Refused, fmt.Errorf("%w: pool %s is exhausted: all %d EIPs are held by other instances (read again for %s); add EIPs to the pool", ErrRefused, pool, len(addrs), poolSettle))
		}
		a := spread(free, e.InstanceID)[0]
		res, err := e.claimOne(ctx, log, req, tgt, &a)
		if !errors.Is(err, errRaced) {
			return res, err
		}
		// Lost to another claimer: read the pool again, so that the EIPs
		// taken meanwhile are not tried one by one.
		tried[aws.ToString(a.AllocationId)] = true
		log.Info("EIP of the pool taken by another claimer first; reading the pool again", "allocation_id", aws.ToString(a.AllocationId))
	}
}

// poolAddresses lists the VPC EIPs that carry every tag of the pool.
func (e *Engine) poolAddresses(ctx context.Context, p *config.Pool) ([]types.Address, error) {
	in := &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("domain"), Values: []string{"vpc"}}}}
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{p.Tags[k]}})
	}
	var addrs []types.Address
	err := e.retrier().Do(ctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		out, err := e.EC2.DescribeAddresses(ctx, in)
		if err != nil {
			return err
		}
		// EC2 filters treat * and ? in a value as wildcards, but a pool's
		// tags are literal: keep only the exact matches.
		addrs = slices.DeleteFunc(out.Addresses, func(a types.Address) bool { return !hasTags(a.Tags, p.Tags) })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the EIPs of pool %s: %w", describePool(p), err)
	}
	return addrs, nil
}

// InPool reports whether an EIP's tags make it one of pool p's: every tag
// of the pool with exactly its value (a filter's * and ? are wildcards,
// a pool's tags are literal).
func InPool(tags []types.Tag, p *config.Pool) bool { return hasTags(tags, p.Tags) }

// DescribePool names pool p in messages: "k1=v1,k2=v2".
func DescribePool(p *config.Pool) string { return describePool(p) }

// hasTags reports whether tags has every key of want with exactly its value.
func hasTags(tags []types.Tag, want map[string]string) bool {
	for k, v := range want {
		if !slices.ContainsFunc(tags, func(t types.Tag) bool { return aws.ToString(t.Key) == k && aws.ToString(t.Value) == v }) {
			return false
		}
	}
	return true
}

func describePool(p *config.Pool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		parts = append(parts, k+"="+p.Tags[k])
	}
	return strings.Join(parts, ",")
}
