package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/watch"
)

// runWatch is `eipclaim watch`: flags and wiring; internal/watch decides.
// --timeout bounds the start (configuration, identity); the watch itself
// runs until SIGTERM or SIGINT, then exits 0.
func runWatch(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("watch", stderr, defaultTimeout)
	metricsFile := c.flags.String("metrics-file", "", "write the metrics in the Prometheus text format to this file after every look, atomically (node_exporter's textfile collector)")
	metricsListen := c.flags.String("metrics-listen", "", "serve the metrics on http://ADDR/metrics; a bare :PORT listens on 127.0.0.1")
	c.checks = append(c.checks, func() error {
		if *metricsFile == "" {
			return nil
		}
		if err := watch.CheckMetricsFile(*metricsFile); err != nil {
			return usageError("--metrics-file %s: %v", *metricsFile, err)
		}
		return nil
	}, func() error {
		if *metricsListen == "" {
			return nil
		}
		if _, _, err := net.SplitHostPort(*metricsListen); err != nil {
			return usageError("--metrics-listen %q: want HOST:PORT or :PORT, such as 127.0.0.1:9110", *metricsListen)
		}
		return nil
	})
	return asService(ctx, func(ctx context.Context) error {
		sctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{instance: true, userData: true})
		if s == nil {
			return err
		}
		defer s.finish(&err)
		spec, err := s.spec()
		if err != nil {
			return err
		}
		if spec.Pool != nil {
			return usageError("role %s has a pool: eipclaim watch needs a role with one EIP (allocation_id or public_ip)", s.role)
		}
		// One watcher per role on an instance: a second would run the
		// hooks too.
		release, err := watch.Lock(watch.RuntimeDir(getenv), s.role, s.instanceID)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		defer release()
		m := watch.NewMetrics()
		m.Role(s.role)
		s.aws.APIOptions = append(s.aws.APIOptions, m.AWSRequests)
		if *metricsListen != "" {
			stop, addr, err := serveMetrics(sctx, *metricsListen, m)
			if err != nil {
				return err
			}
			defer stop()
			s.log.Info("serving metrics", "url", "http://"+addr+"/metrics")
		}
		settings := spec.WatchSettings()
		hooks := &failover.Hooks{Role: s.role, OnHolder: settings.OnHolder, OnStandby: settings.OnStandby,
			Timeout: settings.HookTimeout, Log: s.log, Observe: m.HookRun(s.role)}
		pubs := s.publishers(spec, false)
		// A secret file that is missing is known now: exit 2 at start,
		// not a takeover whose publication fails.
		if err := publish.CheckLocal(pubs); err != nil {
			return fmt.Errorf("role %s: %w", s.role, err)
		}
		local := s.local()
		local.Observe = m.LocalRun(s.role)
		step := s.step()
		step.Local = local
		w := &watch.Watcher{
			Role: s.role, Spec: spec, Settings: settings, InstanceID: s.instanceID,
			Engine: s.engine(), Step: step, Publishers: pubs, Hooks: hooks, IMDS: s.imds, Local: local,
			Log: s.log, Metrics: m, Config: s.cfg, Reload: s.reload, ConfigEvery: testConfigEvery, TruthEvery: testTruthEvery,
		}
		if st := publish.Table(pubs); st != nil {
			w.Table, w.Changes = st, st // an overlay's arbiter, and its holder's look
		}
		if n := watch.NewSystemdNotifier(getenv); n != nil {
			w.Notify = n
			// A hook may run longer than the watchdog's timeout.
			hooks.Heartbeat, hooks.HeartbeatEvery = n.Watchdog, n.WatchdogEvery()
		}
		if *metricsFile != "" {
			w.AfterLook = func() {
				if err := m.WriteFile(*metricsFile); err != nil {
					s.log.Warn("could not write the metrics file", "path", *metricsFile, "error", err)
				}
			}
		}
		// The start had --timeout; the watch has no deadline.
		return w.Run(ctx)
	})
}

// loopbackDefault puts 127.0.0.1 in front of a bare :PORT.
func loopbackDefault(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// serveMetrics serves the registry on addr until stop is called; bound is
// the address it listens on (the port chosen when addr's is 0).
func serveMetrics(ctx context.Context, addr string, m *watch.Metrics) (stop func(), bound string, err error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", loopbackDefault(addr))
	if err != nil {
		return nil, "", exitcode.With(exitcode.Usage, fmt.Errorf("--metrics-listen %s: %w", addr, err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // until Shutdown

	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, ln.Addr().String(), nil
}
