package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// The service loop: running, then a stop request cancels the watch, which
// returns; interrogations are answered with the current state.
func TestServeLoopStop(t *testing.T) {
	var mu sync.Mutex
	var states []string
	status := func(s string) { mu.Lock(); states = append(states, s); mu.Unlock() }
	reqs := make(chan serviceRequest)
	started := make(chan struct{})
	errDone := errors.New("watch ended")
	done := make(chan error, 1)
	go func() {
		done <- serveLoop(context.Background(), func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return errDone
		}, reqs, status)
	}()
	<-started
	reqs <- serviceInterrogate
	reqs <- serviceStop
	select {
	case err := <-done:
		if !errors.Is(err, errDone) {
			t.Errorf("serveLoop returned %v, want the watch's result", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stop request did not end the watch")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{serviceRunning, serviceRunning, serviceStopPending, serviceStopped}
	if !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
}

// A watch that ends by itself (bad configuration) reports stopped.
func TestServeLoopRunEnds(t *testing.T) {
	var last string
	err := serveLoop(context.Background(), func(context.Context) error { return errors.New("bad config") }, nil, func(s string) { last = s })
	if err == nil || last != serviceStopped {
		t.Errorf("err %v, last state %q; want the error and stopped", err, last)
	}
}
