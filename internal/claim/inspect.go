package claim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Address is the state of one EIP of a role.
type Address struct {
	AllocationID  string            `json:"allocation_id"`
	PublicIP      string            `json:"public_ip"`
	AssociationID string            `json:"association_id,omitempty"`
	ENI           string            `json:"eni_id,omitempty"`
	PrivateIP     string            `json:"private_ip,omitempty"`
	Holder        string            `json:"holder,omitempty"` // instance id, "" when free
	Health        *Health           `json:"health,omitempty"` // nil when free or not examined
	Tags          map[string]string `json:"tags,omitempty"`
}

// Free reports whether no one holds the address.
func (a *Address) Free() bool { return a.ENI == "" && a.Holder == "" }

// HolderName names who holds the address: the instance, else the
// interface (one of no instance), else "free".
func (a *Address) HolderName() string {
	switch {
	case a.Holder != "":
		return a.Holder
	case a.ENI != "":
		return a.ENI
	}
	return "free"
}

// Epoch reads the address's epoch tag (epoch.Parse; 0 when untagged). A
// tag that is not an epoch is an error that says so and what the next
// claim does about it, and reads as 0.
func (a *Address) Epoch() (int64, error) {
	n, err := epoch.Parse(a.Tags[TagEpoch])
	if err != nil {
		return 0, fmt.Errorf("the EIP's epoch tag %s: %w: the next claim takes an epoch above the role table's and rewrites it", TagEpoch, err)
	}
	return n, nil
}

// ClaimedAt is when the holder claimed the address, as its audit tags
// say; false when they do not name this holder or give no valid time.
func (a *Address) ClaimedAt() (time.Time, bool) {
	if a.Holder == "" || a.Tags[TagHolder] != a.Holder {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, a.Tags[TagClaimedAt])
	return t, err == nil
}

// Warnings say what is wrong with what names the role's holder, for
// `eipclaim status`: the EIP's epoch tag that is not an epoch, a holder
// that is stopped (Health, when examined), and a role table entry (rec, nil
// when none) that names another holder than the EIP's.
func (a *Address) Warnings(rec *epoch.Recorded) []string {
	var w []string
	if _, err := a.Epoch(); err != nil {
		w = append(w, err.Error())
	}
	if a.Health != nil && decide.Stopped(a.Health.State) {
		what := "the EIP"
		if rec != nil && rec.Holder == a.Holder {
			what += " and the role table"
		}
		w = append(w, fmt.Sprintf("the holder %s is %s, and %s still name it: claim the role on a running instance (eipclaim claim --force there)", a.Holder, a.Health.State, what))
	}
	if rec != nil && rec.Holder != a.Holder && strings.HasPrefix(rec.Holder, "i-") {
		now := "the EIP is free"
		if !a.Free() {
			now = "the EIP is held by " + a.HolderName()
		}
		w = append(w, fmt.Sprintf("the role table names %s (epoch %d), but %s: clients of hosts --from are sent to %s; rerun eipclaim on the EIP's holder", rec.Holder, rec.Epoch, now, rec.Holder))
	}
	return w
}

// Addresses returns the state of the role's EIP (every EIP of a pool), with
// the holders' health when withHealth is set. It changes nothing.
func (e *Engine) Addresses(ctx context.Context, spec *config.Role, withHealth bool) ([]Address, error) {
	var raw []types.Address
	if spec.Pool != nil {
		var err error
		if raw, err = e.poolAddresses(ctx, spec.Pool); err != nil {
			return nil, err
		}
	} else {
		a, err := e.address(ctx, spec)
		if err != nil {
			return nil, err
		}
		raw = []types.Address{*a}
	}
	out := make([]Address, 0, len(raw))
	for _, r := range raw {
		a := Address{
			AllocationID:  aws.ToString(r.AllocationId),
			PublicIP:      aws.ToString(r.PublicIp),
			AssociationID: aws.ToString(r.AssociationId),
			ENI:           aws.ToString(r.NetworkInterfaceId),
			PrivateIP:     aws.ToString(r.PrivateIpAddress),
			Holder:        aws.ToString(r.InstanceId),
			Tags:          map[string]string{},
		}
		for _, t := range r.Tags {
			a.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if a.Holder == "" && a.ENI != "" {
			h, err := e.eniInstance(ctx, a.ENI)
			if err != nil {
				return nil, err
			}
			a.Holder = h
		}
		if withHealth && !a.Free() {
			h, err := e.health(ctx, a.Holder, a.PrivateIP, spec.HealthCheck)
			if err != nil {
				return nil, err
			}
			a.Health = h
		}
		out = append(out, a)
	}
	return out, nil
}

// Release disassociates the role's EIP if this instance holds it. It
// returns what it did: "released", "would be released", or why there was
// nothing to do.
func (e *Engine) Release(ctx context.Context, role string, spec *config.Role, dryRun bool) (string, error) {
	tgt, err := e.target(ctx, &config.Role{})
	if err != nil {
		return "", err
	}
	addrs, err := e.Addresses(ctx, spec, false)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if a.Holder != e.InstanceID && !slices.Contains(tgt.enis, a.ENI) {
			continue
		}
		log := e.Log.With("role", role, "instance_id", e.InstanceID, "allocation_id", a.AllocationID, "public_ip", a.PublicIP)
		if dryRun {
			log.Info("dry run: would release the EIP")
			return fmt.Sprintf("would release %s (%s) from %s", a.PublicIP, a.AllocationID, a.ENI), nil
		}
		err := e.retrier().Do(ctx, "ec2:DisassociateAddress", func(ctx context.Context) error {
			_, err := e.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(a.AssociationID)})
			if retry.Code(err) == "InvalidAssociationID.NotFound" {
				return nil // already gone
			}
			return err
		})
		if err != nil {
			// The request may have been carried out, its answer lost
			// (interrupted in flight): ask EC2.
			failed := fmt.Errorf("disassociate %s (%s) from %s: %w", a.AllocationID, a.AssociationID, a.ENI, err)
			cur, lerr := e.lookup(ctx, a.AllocationID)
			if lerr != nil {
				return "", fmt.Errorf("%w; whether it is released is unknown (%v): see `eipclaim status`", failed, lerr)
			}
			if aws.ToString(cur.AssociationId) == a.AssociationID {
				return "", fmt.Errorf("%w (nothing changed: this instance still holds it)", failed)
			}
			log.Warn("the disassociation was carried out although its call failed", "error", err)
		}
		log.Info("released the EIP", "association_id", a.AssociationID)
		// Released: the EIP no longer names a holder, even if ctx ends now.
		fctx, cancel := e.Finishing(ctx)
		defer cancel()
		e.untag(fctx, log, a.AllocationID, a.Tags[TagHolder])
		return fmt.Sprintf("released %s (%s) from %s", a.PublicIP, a.AllocationID, a.ENI), nil
	}
	if len(addrs) == 1 && !addrs[0].Free() {
		return fmt.Sprintf("nothing to do: %s (%s) is held by %s, not this instance", addrs[0].PublicIP, addrs[0].AllocationID, addrs[0].HolderName()), nil
	}
	return "nothing to do: this instance holds no EIP of role " + role, nil
}
