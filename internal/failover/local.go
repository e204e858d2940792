package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// LocalAddr puts an address on a local network interface and takes it
// off, and finds an interface by its MAC; *localaddr.Namespace has it.
type LocalAddr interface {
	Ensure(ctx context.Context, iface string, addr netip.Addr) (changed bool, err error)
	Remove(ctx context.Context, iface string, addr netip.Addr) (changed bool, err error)
	ByMAC(ctx context.Context, mac string) (string, error)
}

// Metadata reads this instance's metadata (IMDS), one path at a time;
// *imds.Client has it.
type Metadata interface {
	Metadata(ctx context.Context, path string) (string, error)
}

// Local is the wiring of a role's local_interface: the holder puts the
// role's private address (placement.Private) on a local interface, a
// deposed holder takes it off. The interface is the one local_interface
// names, or with auto the one whose MAC is the ENI's (IMDS gives the
// MACs and their interface ids). A failure is reported, logged and
// counted; it never undoes a claim.
type Local struct {
	Addr LocalAddr
	IMDS Metadata
	Log  *slog.Logger
	// Observe, when set, is told the result of every operation ("ensure"
	// or "remove", and ok or failed): metrics.
	Observe func(op, result string)
}

// LocalRun is one operation on the local interface, reported in the
// step's Outcome (local_interface).
type LocalRun struct {
	Op      string `json:"op"`             // ensure or remove
	Name    string `json:"name,omitempty"` // the interface, "" when it was not found
	Address string `json:"address"`
	Changed bool   `json:"changed"`
	Error   string `json:"error,omitempty"`
}

// The operations of a LocalRun, and their results as Observe is told.
const (
	LocalEnsure = "ensure"
	LocalRemove = "remove"
	LocalOK     = "ok"
	LocalFailed = "failed"
)

// ErrLocal marks the error of a step whose claim stands but whose address
// is not on the local interface: exit code 5, as a publication's failure
// (the address is this instance's; a rerun, a no-op claim, tries again).
var ErrLocal = errors.New("the private address is not on the local interface")

// Ensure puts addr on the role's local interface, eni's (the interface
// that carries the address in EC2) with auto. nil when the role has no
// local_interface or addr is not valid.
func (l *Local) Ensure(ctx context.Context, role string, spec *config.Role, eni string, addr netip.Addr) *LocalRun {
	if l == nil || spec.LocalInterface == "" || !addr.IsValid() {
		return nil
	}
	run := &LocalRun{Op: LocalEnsure, Address: addr.String(), Name: spec.LocalInterface}
	var err error
	if spec.LocalInterface == config.LocalInterfaceAuto {
		run.Name, err = l.byENI(ctx, eni)
	}
	if err == nil {
		run.Changed, err = l.Addr.Ensure(ctx, run.Name, addr)
	}
	l.done(role, run, err)
	return run
}

// Remove takes addr off the role's local interface: with auto, off every
// interface of this instance's ENIs (IMDS lists them), since the one that
// carried it has given it up in EC2 already. nil when the role has no
// local_interface or addr is not valid.
func (l *Local) Remove(ctx context.Context, role string, spec *config.Role, addr netip.Addr) *LocalRun {
	if l == nil || spec.LocalInterface == "" || !addr.IsValid() {
		return nil
	}
	run := &LocalRun{Op: LocalRemove, Address: addr.String(), Name: spec.LocalInterface}
	if spec.LocalInterface != config.LocalInterfaceAuto {
		var err error
		run.Changed, err = l.Addr.Remove(ctx, run.Name, addr)
		l.done(role, run, err)
		return run
	}
	macs, err := l.macs(ctx)
	var names []string
	var errs []error
	for _, mac := range macs {
		name, err := l.Addr.ByMAC(ctx, mac)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		changed, err := l.Addr.Remove(ctx, name, addr)
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			run.Changed = true
			names = append(names, name)
		}
	}
	run.Name = strings.Join(names, ",")
	l.done(role, run, errors.Join(append(errs, err)...))
	return run
}

// done records run's error, logs and counts it.
func (l *Local) done(role string, run *LocalRun, err error) {
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	result := LocalOK
	if err != nil {
		result, run.Error = LocalFailed, err.Error()
		log.Warn("the private address could not be "+verb(run.Op)+" the local interface; the claim stands", "role", role,
			"interface", run.Name, "private_address", run.Address, "error", err)
	} else if run.Changed {
		log.Info("the private address was "+verb(run.Op)+" the local interface", "role", role, "interface", run.Name, "private_address", run.Address)
	}
	if l.Observe != nil {
		l.Observe(run.Op, result)
	}
}

func verb(op string) string {
	if op == LocalRemove {
		return "removed from"
	}
	return "added to"
}

// byENI finds the local interface of eni: the MAC IMDS lists with that
// interface id, then the interface with that MAC.
func (l *Local) byENI(ctx context.Context, eni string) (string, error) {
	if eni == "" {
		return "", errors.New("local_interface auto: the interface (ENI) that carries the address is not known")
	}
	macs, err := l.macs(ctx)
	if err != nil {
		return "", err
	}
	for _, mac := range macs {
		id, err := l.IMDS.Metadata(ctx, "network/interfaces/macs/"+mac+"/interface-id")
		if err != nil {
			return "", fmt.Errorf("local_interface auto: read the interface id of MAC %s from IMDS: %w", mac, err)
		}
		if strings.TrimSpace(id) == eni {
			return l.Addr.ByMAC(ctx, mac)
		}
	}
	return "", fmt.Errorf("local_interface auto: IMDS lists no interface %s among this instance's (MACs %s)", eni, strings.Join(macs, ", "))
}

// macs lists the MACs of this instance's interfaces, as IMDS does.
func (l *Local) macs(ctx context.Context) ([]string, error) {
	if l.IMDS == nil {
		return nil, errors.New("local_interface auto: no instance metadata (IMDS) to find the interface by its MAC")
	}
	list, err := l.IMDS.Metadata(ctx, "network/interfaces/macs/")
	if err != nil {
		return nil, fmt.Errorf("local_interface auto: list this instance's interfaces from IMDS: %w", err)
	}
	var macs []string
	for m := range strings.FieldsSeq(list) {
		macs = append(macs, strings.TrimSuffix(m, "/"))
	}
	return macs, nil
}

// localError is the step's error for a run that failed: exit code 5.
func localError(role, instance string, run *LocalRun) error {
	if run == nil || run.Error == "" {
		return nil
	}
	return exitcode.With(exitcode.DNSFailed, fmt.Errorf("role %s: claimed for %s, but %w (%s %s): %s", role, instance, ErrLocal, run.Address, orAuto(run.Name), run.Error))
}

func orAuto(name string) string {
	if name == "" {
		return "interface not found"
	}
	return "on " + name
}

// String says what the run did, for people.
func (r *LocalRun) String() string {
	what := "added to"
	if r.Op == LocalRemove {
		what = "removed from"
	}
	switch {
	case r.Error != "":
		return fmt.Sprintf("local interface: the private address %s could not be %s %s: %s", r.Address, what, orAny(r.Name), r.Error)
	case r.Changed:
		return fmt.Sprintf("local interface: private address %s %s %s", r.Address, what, r.Name)
	case r.Op == LocalRemove:
		return fmt.Sprintf("local interface: private address %s was not on %s", r.Address, orAny(r.Name))
	}
	return fmt.Sprintf("local interface: private address %s already on %s", r.Address, r.Name)
}

func orAny(name string) string {
	if name == "" {
		return "this instance's interfaces"
	}
	return name
}

// RoleAddress is the private address the role puts on a local interface
// (private_address or overlay), the zero Addr when it has none or it is not valid
// (the configuration's validation refuses that).
func RoleAddress(spec *config.Role) netip.Addr {
	a, err := netip.ParseAddr(spec.PrivateKind())
	if err != nil {
		return netip.Addr{}
	}
	return a
}
