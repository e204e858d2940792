//go:build !windows

package main

import "context"

// asService runs the watch; on Windows, as a service when started by the
// service manager (service_windows.go).
func asService(ctx context.Context, run func(context.Context) error) error { return run(ctx) }
