package main

import (
	"context"
	"net"
	"time"
)

// testDial replaces the health checks' dialer in the binary the tests
// build with -tags eipclaim_testhooks (testdial_testhooks.go); nil in a
// release build, which dials for real.
var testDial func(ctx context.Context, network, addr string) (net.Conn, error)

// testConfigEvery, in the test build only (EIPCLAIM_TEST_CONFIG_EVERY), is
// how often watch reads its configuration again; 0 (the default, 30 s) in
// a release build.
var testConfigEvery time.Duration
