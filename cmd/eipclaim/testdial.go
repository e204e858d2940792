package main

import (
	"context"
	"net"
)

// testDial replaces the health checks' dialer in the binary the tests
// build with -tags eipclaim_testhooks (testdial_testhooks.go); nil in a
// release build, which dials for real.
var testDial func(ctx context.Context, network, addr string) (net.Conn, error)
