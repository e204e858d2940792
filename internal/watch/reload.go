package watch

import (
	"context"
	"reflect"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
)

// DefaultConfigEvery is how often a watcher reads its configuration again
// to see whether it changed.
const DefaultConfigEvery = 30 * time.Second

// configTimeout bounds one read of the configuration.
const configTimeout = 20 * time.Second

// watchConfig reads the configuration again every ConfigEvery until ctx
// ends and says when what the watcher runs with differs from it: the
// watcher does not apply a change (no hot reload), it logs a warning that
// a restart is needed, once per change, and sets eipclaim_config_changed.
func (w *Watcher) watchConfig(ctx context.Context) {
	every := w.ConfigEvery
	if every <= 0 {
		every = DefaultConfigEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var warned string // the differences last warned about
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, configTimeout)
		now, err := w.Reload(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Debug("could not read the configuration again to see whether it changed", "error", err)
			}
			continue
		}
		diff := ConfigDiff(w.Config, now, w.Role)
		switch {
		case diff != "" && diff != warned:
			w.Log.Warn("configuration changed on disk; restart the watcher to apply it", "changed", diff)
		case diff == "" && warned != "":
			w.Log.Info("the configuration on disk is the one the watcher runs with again")
		}
		warned = diff
		w.Metrics.setConfigChanged(w.Role, diff != "")
	}
}

// ConfigDiff names what differs between the configuration a watcher of
// role runs with (was) and the one read now, as far as the watcher is
// concerned ("" when nothing): the role it watches, the role table, and
// the role's entry of the roles table.
func ConfigDiff(was, now *config.Config, role string) string {
	var diff []string
	if !strings.EqualFold(was.Role, now.Role) {
		diff = append(diff, "role")
	}
	if was.Repository != now.Repository {
		diff = append(diff, "repository")
	}
	var spec *config.Role
	for name, r := range now.Roles {
		if strings.EqualFold(name, role) {
			spec = r
		}
	}
	var old *config.Role
	for name, r := range was.Roles {
		if strings.EqualFold(name, role) {
			old = r
		}
	}
	if !reflect.DeepEqual(old, spec) {
		diff = append(diff, "roles."+role)
	}
	return strings.Join(diff, ", ")
}
