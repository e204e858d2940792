package claim

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// Health is what eipclaim knows of an EIP's holder.
type Health struct {
	Instance  string `json:"instance,omitempty"` // "" when the EIP is on an interface of no instance
	State     string `json:"state,omitempty"`    // running, stopped, ... ("gone" when the API no longer knows it)
	Status    string `json:"status,omitempty"`   // the status checks: ok, impaired, initializing, ... ("" when unknown)
	Check     string `json:"check,omitempty"`    // the health_check result: "tcp:5432 on 10.0.1.7 answered", or why it failed
	Down      bool   `json:"down"`
	Why       string `json:"why"` // one line: why Down is what it is
	PrivateIP string `json:"private_ip,omitempty"`
}

// Stopped reports a holder's state (Health.State) in which it does not
// serve, whatever its probe says: stopped, stopping, shutting down,
// terminated, or gone.
func Stopped(state string) bool {
	switch types.InstanceStateName(state) {
	case types.InstanceStateNameStopped, types.InstanceStateNameStopping, types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown, "gone":
		return true
	}
	return false
}

// holderDown tells whether the holder of an EIP counts as down, and why.
func (e *Engine) holderDown(ctx context.Context, holder, privateIP string, healthCheck config.HealthCheck) (bool, string, error) {
	h, err := e.health(ctx, holder, privateIP, healthCheck)
	if err != nil {
		return false, "", err
	}
	return h.Down, h.Why, nil
}

// health examines the holder: its state, its status checks and the role's
// health_check.
func (e *Engine) health(ctx context.Context, holder, privateIP string, healthCheck config.HealthCheck) (*Health, error) {
	h := &Health{Instance: holder, PrivateIP: privateIP}
	if holder == "" {
		h.Why = "on an interface attached to no instance (a NAT gateway, a load balancer or a detached interface): eipclaim does not take it without --force"
		return h, nil
	}
	inst, err := e.Instance(ctx, holder)
	if err != nil {
		return nil, fmt.Errorf("describe the holder %s: %w", holder, err)
	}
	if inst == nil {
		h.State, h.Down, h.Why = "gone", true, "holder "+holder+" no longer exists"
		return h, nil
	}
	if inst.State != nil {
		h.State = string(inst.State.Name)
	}
	if h.PrivateIP == "" {
		h.PrivateIP = aws.ToString(inst.PrivateIpAddress)
	}
	if Stopped(h.State) {
		h.Down, h.Why = true, "holder "+holder+" is "+h.State
		return h, nil
	}
	err = e.retrier().Do(ctx, "ec2:DescribeInstanceStatus", func(ctx context.Context) error {
		out, err := e.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{holder}, IncludeAllInstances: aws.Bool(true)})
		if err != nil {
			return err
		}
		for _, s := range out.InstanceStatuses {
			inst, sys := StatusSummary(s.InstanceStatus), StatusSummary(s.SystemStatus)
			h.Status = "instance " + inst + ", system " + sys
			if inst == string(types.SummaryStatusImpaired) || sys == string(types.SummaryStatusImpaired) {
				h.Down = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the status checks of the holder %s: %w", holder, err)
	}
	if h.Down {
		h.Why = "holder " + holder + " fails its status checks (" + h.Status + ")"
		return h, nil
	}
	reasons := []string{h.State}
	if h.Status != "" {
		reasons = append(reasons, "status checks: "+h.Status)
	}
	if healthCheck.Set() {
		ok, result := e.check(ctx, h.PrivateIP, healthCheck)
		h.Check = result
		if !ok {
			h.Down, h.Why = true, "holder "+holder+" fails its health check: "+result
			return h, nil
		}
		reasons = append(reasons, result)
	}
	h.Why = strings.Join(reasons, ", ")
	return h, nil
}

// StatusSummary is a status check's summary as words: ok, impaired,
// initializing, ... ("unknown" when EC2 gave none).
func StatusSummary(s *types.InstanceStatusSummary) string {
	if s == nil || s.Status == "" {
		return "unknown"
	}
	return string(s.Status)
}

// check runs a tcp:PORT health check against ip.
func (e *Engine) check(ctx context.Context, ip string, healthCheck config.HealthCheck) (bool, string) {
	if ip == "" {
		return false, healthCheck.String() + ": the holder has no private IP to check"
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(healthCheck.Port))
	timeout := e.HealthTimeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	dial := e.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Sprintf("%s on %s failed: %v", healthCheck, ip, err)
	}
	conn.Close()
	return true, fmt.Sprintf("%s on %s answered", healthCheck, ip)
}

// Health examines the holder of an EIP through the EC2 API (its state and
// status checks) and, when healthCheck is set, its probe. It changes
// nothing.
func (e *Engine) Health(ctx context.Context, holder, privateIP string, healthCheck config.HealthCheck) (*Health, error) {
	return e.health(ctx, holder, privateIP, healthCheck)
}

// Probe runs the role's health_check (tcp:PORT) against ip through Dial:
// free, no API request. It says whether it answered, and the result in
// words.
func (e *Engine) Probe(ctx context.Context, ip string, healthCheck config.HealthCheck) (bool, string) {
	return e.check(ctx, ip, healthCheck)
}

// Instance describes an instance through the EC2 API; nil when the API no
// longer knows it (terminated long ago).
func (e *Engine) Instance(ctx context.Context, id string) (*types.Instance, error) {
	var inst *types.Instance
	err := e.retrier().Do(ctx, "ec2:DescribeInstances", func(ctx context.Context) error {
		out, err := e.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if retry.Code(err) == "InvalidInstanceID.NotFound" {
			return nil // gone for good
		}
		if err != nil {
			return err
		}
		for _, r := range out.Reservations {
			for i := range r.Instances {
				inst = &r.Instances[i]
			}
		}
		return nil
	})
	return inst, err
}
