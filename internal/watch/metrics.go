package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eipclaim/eipclaim/internal/decide"
)

// Metrics are the watcher's, in the Prometheus client library's registry:
// served by --metrics-listen, written by --metrics-file. A nil *Metrics
// records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	state     *prometheus.GaugeVec
	epoch     *prometheus.GaugeVec
	takeovers *prometheus.CounterVec
	losses    *prometheus.CounterVec
	hooks     *prometheus.CounterVec
	requests  *prometheus.CounterVec
	looks     *prometheus.CounterVec
	probes    *prometheus.CounterVec
	lastLook  *prometheus.GaugeVec

	epochInvalid  *prometheus.GaugeVec
	tableDrops    *prometheus.CounterVec
	holderStopped *prometheus.GaugeVec
	changed       *prometheus.GaugeVec
	refusals      *prometheus.CounterVec
	local         *prometheus.CounterVec
}

// NewMetrics registers the watcher's metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_watch_state",
			Help: "1 for the watcher's state of the role (holder or standby), 0 for the other."}, []string{"role", "state"}),
		epoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_epoch",
			Help: "The role's EIP's eipclaim:epoch tag as last seen: it grows by one with every move."}, []string{"role"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_takeovers_total",
			Help: "Moves of the role's EIP to this instance made by this watcher."}, []string{"role"}),
		losses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_losses_total",
			Help: "Times this watcher found that the EIP it held had been moved elsewhere."}, []string{"role"}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_hook_runs_total",
			Help: "Hook runs by event (holder, standby) and result (ok, failed, timeout)."}, []string{"role", "event", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_aws_requests_total",
			Help: "AWS requests (every attempt) by operation and outcome (ok, or the error code)."}, []string{"operation", "outcome"}),
		looks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_looks_total",
			Help: "Looks at the role's EIP by result: ok (through IMDS, the probe, or EC2), or failed (the EC2 API did not answer a look that read it)."}, []string{"role", "result"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_holder_failed_looks_total",
			Help: "Looks at which the holder failed its probe or counted as down through the API."}, []string{"role"}),
		lastLook: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_last_successful_look_timestamp_seconds",
			Help: "Unix time of the last read of the EIP the EC2 API answered (the truth checks, the reads on suspicion)."}, []string{"role"}),
		epochInvalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_epoch_invalid",
			Help: "1 when the role's EIP's eipclaim:epoch tag, as last seen, is not an epoch (not an integer from 0 to 2^53-1)."}, []string{"role"}),
		tableDrops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_table_writes_dropped_total",
			Help: "Role table writes of this holder's entry dropped because the table held a greater epoch."}, []string{"role"}),
		holderStopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_holder_stopped",
			Help: "1 while the EIP's holder is stopped, terminated or gone and still holds it (the EIP, DNS and role table name it)."}, []string{"role"}),
		changed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eipclaim_config_changed",
			Help: "1 when the configuration on disk differs from the one the watcher runs with (restart it to apply it), else 0."}, []string{"role"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_takeover_refused_total",
			Help: "Looks at which the holder had failed fall looks but this standby did not take over, by reason: hold_down (the holder is new), imds (this instance's IMDS does not answer), ec2_api (the EC2 API does not answer it), cut_off (its every probe fails)."}, []string{"role", "reason"}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eipclaim_local_interface_total",
			Help: "Operations on the local interface (local_interface) by op (ensure: the private address put on it; remove: taken off) and result (ok, failed)."}, []string{"role", "op", "result"}),
	}
	m.Registry.MustRegister(m.state, m.epoch, m.takeovers, m.losses, m.hooks, m.requests, m.looks, m.probes, m.lastLook,
		m.epochInvalid, m.tableDrops, m.holderStopped, m.changed, m.refusals, m.local)
	return m
}

// Role creates the role's series at zero, so that they exist before the
// first event.
func (m *Metrics) Role(role string) {
	if m == nil {
		return
	}
	m.state.WithLabelValues(role, StateHolder).Set(0)
	m.state.WithLabelValues(role, StateStandby).Set(0)
	m.takeovers.WithLabelValues(role)
	m.losses.WithLabelValues(role)
	m.epochInvalid.WithLabelValues(role).Set(0)
	m.tableDrops.WithLabelValues(role)
	m.holderStopped.WithLabelValues(role).Set(0)
	m.changed.WithLabelValues(role).Set(0)
	for _, r := range []string{decide.RefusedHoldDown, decide.RefusedIMDS, decide.RefusedAPI, decide.RefusedCutOff} {
		m.refusals.WithLabelValues(role, r)
	}
	for _, ev := range []string{StateHolder, StateStandby} {
		for _, r := range []string{"ok", "failed", "timeout"} {
			m.hooks.WithLabelValues(role, ev, r)
		}
	}
}

func (m *Metrics) setState(role, state string) {
	if m == nil {
		return
	}
	for _, s := range []string{StateHolder, StateStandby} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(role, s).Set(v)
	}
}

func (m *Metrics) setEpoch(role string, epoch int64) {
	if m != nil {
		m.epoch.WithLabelValues(role).Set(float64(epoch))
	}
}

func (m *Metrics) setEpochInvalid(role string, invalid bool) {
	if m != nil {
		m.epochInvalid.WithLabelValues(role).Set(b2f(invalid))
	}
}

func (m *Metrics) tableDropped(role string) {
	if m != nil {
		m.tableDrops.WithLabelValues(role).Inc()
	}
}

func (m *Metrics) setHolderStopped(role string, stopped bool) {
	if m != nil {
		m.holderStopped.WithLabelValues(role).Set(b2f(stopped))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) setConfigChanged(role string, changed bool) {
	if m != nil {
		m.changed.WithLabelValues(role).Set(b2f(changed))
	}
}

func (m *Metrics) takeover(role string) {
	if m != nil {
		m.takeovers.WithLabelValues(role).Inc()
	}
}

func (m *Metrics) loss(role string) {
	if m != nil {
		m.losses.WithLabelValues(role).Inc()
	}
}

func (m *Metrics) refused(role, reason string) {
	if m != nil {
		m.refusals.WithLabelValues(role, reason).Inc()
	}
}

func (m *Metrics) probeFailed(role string) {
	if m != nil {
		m.probes.WithLabelValues(role).Inc()
	}
}

// freeLook counts a look that read no AWS API (IMDS, the probe).
func (m *Metrics) freeLook(role string) {
	if m != nil {
		m.looks.WithLabelValues(role, "ok").Inc()
	}
}

func (m *Metrics) look(role string, ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.looks.WithLabelValues(role, "ok").Inc()
		m.lastLook.WithLabelValues(role).Set(float64(time.Now().UnixNano()) / 1e9)
		return
	}
	m.looks.WithLabelValues(role, "failed").Inc()
}

// HookRun counts a hook run: failover.Hooks.Observe.
func (m *Metrics) HookRun(role string) func(event, result string) {
	return func(event, result string) {
		if m != nil {
			m.hooks.WithLabelValues(role, event, result).Inc()
		}
	}
}

// LocalRun counts an operation on the local interface:
// failover.Local.Observe.
func (m *Metrics) LocalRun(role string) func(op, result string) {
	return func(op, result string) {
		if m != nil {
			m.local.WithLabelValues(role, op, result).Inc()
		}
	}
}

// WriteFile writes the metrics in the text format to path atomically (a
// temporary file renamed over it), for node_exporter's textfile collector.
//
// CheckMetricsFile says at start whether it can.
func (m *Metrics) WriteFile(path string) error {
	return prometheus.WriteToTextfile(path, m.Registry)
}

// CheckMetricsFile proves that WriteFile can write path: its directory
// exists and a file can be created in it (WriteFile writes a temporary
// file there, then renames it). A watcher checks at start, rather than
// warning at every look forever.
func CheckMetricsFile(path string) error {
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it (node_exporter's textfile directory) or fix the path", dir)
	case err != nil:
		return err
	case !info.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".eipclaim-check-*")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s: %w: give the user eipclaim runs as write access to it", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// AWSRequests is an AWS SDK option (aws.Config.APIOptions) that counts
// every attempt of every request by operation ("ec2:DescribeAddresses")
// and outcome ("ok", or the error code).
func (m *Metrics) AWSRequests(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("eipclaimRequestCount",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			outcome := "ok"
			if err != nil {
				outcome = "error"
				var ae smithy.APIError
				if errors.As(err, &ae) && ae.ErrorCode() != "" {
					outcome = ae.ErrorCode()
				}
			}
			m.requests.WithLabelValues(serviceName(awsmiddleware.GetServiceID(ctx))+":"+awsmiddleware.GetOperationName(ctx), outcome).Inc()
			return out, md, err
		}), middleware.Before) // outside the deserializer: it sees the API error; inside the retryer: every attempt
}

// serviceName is the IAM prefix of a service id, as in eipclaim's op names.
func serviceName(id string) string {
	switch id {
	case "EC2":
		return "ec2"
	case "Route 53":
		return "route53"
	case "S3":
		return "s3"
	}
	return id
}
