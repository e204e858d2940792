package table

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Registration is a service outside the cloud, which no claim publishes,
// recorded in the table by `eipclaim register`.
type Registration struct {
	Role    string
	Private netip.Addr // the private column: what clients inside the cloud use
	Public  netip.Addr // for clients outside (hosts --public)
	Names   []string   // the role's DNS names, as the configuration gives them
	Holder  string     // "register@HOST"
}

// NewRegistration returns the registration of role at private (and public,
// when valid; else private) under cfg, written from hostname. Role names
// are the same whatever their case, and the configuration's spelling is
// the role's: a role cfg spells otherwise is refused (exit 2), naming the
// spelling to use. A role cfg does not list is registered with no DNS
// names.
func NewRegistration(cfg *config.Config, role string, private, public netip.Addr, hostname string) (Registration, error) {
	for name := range cfg.Roles {
		if name != role && strings.EqualFold(name, role) {
			return Registration{}, exitcode.With(exitcode.Usage, fmt.Errorf("role %s: the configuration's role is %s (role names are host names, the same whatever their case): use role %s", role, name, name))
		}
	}
	if !public.IsValid() {
		public = private
	}
	holder := "register"
	if hostname != "" {
		holder += "@" + hostname
	}
	return Registration{Role: role, Private: private, Public: public, Names: cfg.Roles[role].HostNames(), Holder: holder}, nil
}

// Entry returns the entry r writes over old, the table's entry for the
// role (zero when there is none), at now. When old says the same already
// (addresses, names, holder, and no public DNS name), it is old itself and
// same is true: nothing to write. Otherwise the epoch is one above old's:
// a registration moves the role, so it replaces whatever was there. err is
// epoch.Next's when old's epoch cannot advance (the entry then has the
// greatest epoch); the entry is still the one to write.
func (r Registration) Entry(old Entry, now time.Time) (e Entry, same bool, err error) {
	e = Entry{Name: r.Role, PrivateIP: r.Private.String(), PublicIP: r.Public.String(), Names: r.Names, Holder: r.Holder, UpdatedAt: now.UTC()}
	if old.PrivateIP == e.PrivateIP && old.PublicIP == e.PublicIP && old.Holder == e.Holder && old.PublicDNSName == "" && slices.Equal(old.Names, e.Names) {
		return old, true, nil
	}
	e.Epoch, err = epoch.Next(old.Epoch)
	return e, false, err
}
