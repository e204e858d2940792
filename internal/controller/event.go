package controller

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// The EventBridge detail types the controller handles.
const (
	DetailStateChange = "EC2 Instance State-change Notification"
	DetailLaunch      = "EC2 Instance-launch Lifecycle Action"
	DetailTerminate   = "EC2 Instance-terminate Lifecycle Action"
	DetailSchedule    = "Scheduled Event"
)

// The lifecycle transitions of Auto Scaling's lifecycle hooks.
const (
	TransitionLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	TransitionTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
)

// Event is an EventBridge event, as Lambda delivers it.
type Event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// StateChange is the detail of an "EC2 Instance State-change
// Notification".
type StateChange struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

// Lifecycle is the detail of an Auto Scaling lifecycle action event.
type Lifecycle struct {
	Token      string `json:"LifecycleActionToken"`
	Group      string `json:"AutoScalingGroupName"`
	Hook       string `json:"LifecycleHookName"`
	InstanceID string `json:"EC2InstanceId"`
	Transition string `json:"LifecycleTransition"`
}

// kind names an event in decisions and logs.
type kind string

const (
	kindStateChange kind = "state-change"
	kindLaunching   kind = "launching"
	kindTerminating kind = "terminating"
	kindSchedule    kind = "schedule"
)

// parsed is an event the controller understood.
type parsed struct {
	kind      kind
	id        string
	state     *StateChange
	lifecycle *Lifecycle
}

// parse reads an event; an event of another kind is a usage error that
// names the rule to fix.
func parse(raw []byte) (*parsed, error) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("the invocation is not an EventBridge event (%v): invoke eipclaim lambda from EventBridge rules (deploy/eipclaim-controller.yaml)", err))
	}
	p := &parsed{id: ev.ID}
	bad := func(err error) error {
		return exitcode.With(exitcode.Usage, fmt.Errorf("event %s (%s): %w", ev.ID, ev.DetailType, err))
	}
	switch ev.DetailType {
	case DetailStateChange:
		p.kind, p.state = kindStateChange, &StateChange{}
		if err := json.Unmarshal(ev.Detail, p.state); err != nil {
			return nil, bad(fmt.Errorf("detail: %w", err))
		}
		if p.state.InstanceID == "" || p.state.State == "" {
			return nil, bad(errors.New("detail has no instance-id or state"))
		}
	case DetailLaunch, DetailTerminate:
		p.lifecycle = &Lifecycle{}
		if err := json.Unmarshal(ev.Detail, p.lifecycle); err != nil {
			return nil, bad(fmt.Errorf("detail: %w", err))
		}
		switch p.lifecycle.Transition {
		case TransitionLaunching:
			p.kind = kindLaunching
		case TransitionTerminating:
			p.kind = kindTerminating
		default:
			return nil, bad(fmt.Errorf("LifecycleTransition %q: want %s or %s", p.lifecycle.Transition, TransitionLaunching, TransitionTerminating))
		}
		if p.lifecycle.InstanceID == "" || p.lifecycle.Group == "" || p.lifecycle.Hook == "" {
			return nil, bad(errors.New("detail has no EC2InstanceId, AutoScalingGroupName or LifecycleHookName"))
		}
	case DetailSchedule:
		p.kind = kindSchedule
	default:
		return nil, bad(fmt.Errorf("not an event the controller handles (want %q, %q, %q or %q): fix the EventBridge rule's pattern",
			DetailStateChange, DetailLaunch, DetailTerminate, DetailSchedule))
	}
	return p, nil
}
