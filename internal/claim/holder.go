package claim

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
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
	// Facts are what the verdict (Down, Why) was judged from
	// (decide.Judge), for a driver that decides again with them.
	Facts decide.Holder `json:"-"`
}

// health examines the holder (its state, its status checks and the
// role's health_check) and judges it (decide.Judge). It reads only what
// the verdict needs: not the status checks of a stopped holder, not the
// probe of an impaired one.
func (e *Engine) health(ctx context.Context, holder, privateIP string, healthCheck config.HealthCheck) (*Health, error) {
	h := &Health{Instance: holder, PrivateIP: privateIP}
	facts := decide.Holder{Instance: holder}
	judge := func() (*Health, error) {
		v := decide.Judge(facts)
		h.Down, h.Why, h.Facts = v.Down, v.Why, facts
		return h, nil
	}
	if holder == "" {
		return judge()
	}
	inst, err := e.Instance(ctx, holder)
	if err != nil {
		return nil, fmt.Errorf("describe the holder %s: %w", holder, err)
	}
	if inst == nil {
		h.State, facts.State = decide.StateGone, decide.StateGone
		return judge()
	}
	if inst.State != nil {
		h.State = string(inst.State.Name)
	}
	facts.State = h.State
	if h.PrivateIP == "" {
		h.PrivateIP = aws.ToString(inst.PrivateIpAddress)
	}
	if decide.Stopped(h.State) {
		return judge()
	}
	err = e.retrier().Do(ctx, "ec2:DescribeInstanceStatus", func(ctx context.Context) error {
		out, err := e.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{holder}, IncludeAllInstances: aws.Bool(true)})
		if err != nil {
			return err
		}
		for _, s := range out.InstanceStatuses {
			facts.InstanceStatus, facts.SystemStatus = StatusSummary(s.InstanceStatus), StatusSummary(s.SystemStatus)
			h.Status = "instance " + facts.InstanceStatus + ", system " + facts.SystemStatus
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the status checks of the holder %s: %w", holder, err)
	}
	if decide.Judge(facts).Down || !healthCheck.Set() {
		return judge()
	}
	ok, result := e.check(ctx, h.PrivateIP, healthCheck)
	h.Check = result
	facts.Probe = &decide.Probe{OK: ok, Result: result}
	return judge()
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
