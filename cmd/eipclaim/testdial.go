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

// testTruthEvery, in the test build only (EIPCLAIM_TEST_TRUTH_EVERY), is
// the period of watch's truth checks (its reads of EC2 in steady state);
// 0 (the defaults: 6 min for a holder, 90 s or 4 min for a standby) in a
// release build.
var testTruthEvery time.Duration
