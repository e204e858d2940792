//go:build eipclaim_testhooks

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// In the test build only: EIPCLAIM_TEST_DIAL maps the health checks' target
// IPs (moto's 10.x private addresses, which must never be dialled from a
// test) to loopback listeners, "10.0.0.5=127.0.0.1:40001,10.0.0.6=...".
// Any other address is refused without a dial.
func init() {
	testConfigEvery, _ = time.ParseDuration(os.Getenv("EIPCLAIM_TEST_CONFIG_EVERY"))
	testTruthEvery, _ = time.ParseDuration(os.Getenv("EIPCLAIM_TEST_TRUTH_EVERY"))
	spec := os.Getenv("EIPCLAIM_TEST_DIAL")
	if spec == "" {
		return
	}
	to := map[string]string{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(kv, "=")
		to[k] = v
	}
	testDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		target, ok := to[host]
		if !ok {
			return nil, fmt.Errorf("test dial: %s is not mapped to a loopback listener", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
}
