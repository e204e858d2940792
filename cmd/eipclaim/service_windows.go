//go:build windows

package main

import (
	"context"

	"golang.org/x/sys/windows/svc"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// watchServiceName is the Windows service install.ps1 creates.
const watchServiceName = "eipclaim-watch"

// isService reports whether the service manager started this process:
// svc.IsWindowsService, its parent is services.exe in session 0. The test
// build widens it for wine (service_wine_testhooks_windows.go).
var isService = svc.IsWindowsService

// asService runs the watch as a Windows service when the service manager
// started the process, else (a console) as it is.
func asService(ctx context.Context, run func(context.Context) error) error {
	isService, err := isService()
	if err != nil || !isService {
		return run(ctx)
	}
	h := &serviceHandler{ctx: ctx, run: run}
	if err := svc.Run(watchServiceName, h); err != nil {
		return err
	}
	return h.err
}

type serviceHandler struct {
	ctx context.Context
	run func(context.Context) error
	err error
}

// Execute adapts the service manager's requests to serveLoop.
func (h *serviceHandler) Execute(args []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	s <- svc.Status{State: svc.StartPending}
	reqs := make(chan serviceRequest)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case c := <-r:
				switch c.Cmd {
				case svc.Stop, svc.Shutdown:
					select {
					case reqs <- serviceStop:
					case <-stop:
						return
					}
				case svc.Interrogate:
					select {
					case reqs <- serviceInterrogate:
					case <-stop:
						return
					}
				}
			}
		}
	}()
	h.err = serveLoop(h.ctx, h.run, reqs, func(state string) {
		switch state {
		case serviceRunning:
			s <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
		case serviceStopPending:
			s <- svc.Status{State: svc.StopPending}
		case serviceStopped:
			s <- svc.Status{State: svc.Stopped}
		}
	})
	if h.err != nil {
		return true, uint32(exitcode.Of(h.err))
	}
	return false, 0
}
