package main

import "context"

// serviceRequest is what a service manager asks of a running service.
type serviceRequest int

const (
	serviceStop        serviceRequest = iota // stop, or the machine shuts down
	serviceInterrogate                       // say the current state
)

// The states a service reports.
const (
	serviceRunning     = "running"
	serviceStopPending = "stop-pending"
	serviceStopped     = "stopped"
)

// serveLoop runs run as a service: it reports running, passes a stop
// request on as ctx's cancellation (the watcher then exits 0 within
// seconds), answers interrogations, and reports stopped when run returns.
// The Windows service handler (service_windows.go) adapts it to
// golang.org/x/sys/windows/svc.
func serveLoop(ctx context.Context, run func(context.Context) error, reqs <-chan serviceRequest, status func(state string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	state := serviceRunning
	status(state)
	for {
		select {
		case err := <-done:
			status(serviceStopped)
			return err
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			switch r {
			case serviceStop:
				if state != serviceStopPending {
					state = serviceStopPending
					cancel()
				}
				status(state)
			case serviceInterrogate:
				status(state)
			}
		}
	}
}
