package shipped

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/testenv"
	"github.com/eipclaim/eipclaim/internal/watch"
)

// units are the systemd units in init/.
var units = []string{"eipclaim.service", "eipclaim-hosts.service", "eipclaim-hosts.timer", "eipclaim-watch.service"}

// dropIn is the optional drop-in for eipclaim.service.
const dropIn = "release-on-stop.conf"

// unitFile is a parsed unit file: section -> key -> values, in order.
type unitFile map[string]map[string][]string

// parseUnit parses the systemd unit syntax: [Section], Key=Value lines,
// comments (# and ;), and backslash continuations.
func parseUnit(t *testing.T, data []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	var pending string
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "", line[0] == '#', line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: %q: want Key=Value inside a [Section]", n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

// get returns the last value of a key ("" when absent).
func (u unitFile) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// words returns every space-separated word of every value of a key.
func (u unitFile) words(section, key string) []string {
	var ws []string
	for _, v := range u[section][key] {
		ws = append(ws, strings.Fields(v)...)
	}
	return ws
}

func TestSystemdUnits(t *testing.T) {
	claim := parseUnit(t, readFile(t, "init/eipclaim.service"))
	hostsSvc := parseUnit(t, readFile(t, "init/eipclaim-hosts.service"))
	timer := parseUnit(t, readFile(t, "init/eipclaim-hosts.timer"))
	drop := parseUnit(t, readFile(t, "init/"+dropIn))

	checks := []struct {
		name          string
		u             unitFile
		section, key  string
		want          string // the last value, exactly
		contains      string // or: one of the words of the values
		wantAbsent    bool
		wantAnyPrefix string
	}{
		{name: "claim oneshot", u: claim, section: "Service", key: "Type", want: "oneshot"},
		{name: "claim stays active", u: claim, section: "Service", key: "RemainAfterExit", want: "yes"},
		{name: "claim after network", u: claim, section: "Unit", key: "After", contains: "network-online.target"},
		{name: "claim wants network", u: claim, section: "Unit", key: "Wants", contains: "network-online.target"},
		{name: "claim settings", u: claim, section: "Service", key: "EnvironmentFile", want: "-/etc/default/eipclaim"},
		{name: "claim command", u: claim, section: "Service", key: "ExecStart", wantAnyPrefix: "/usr/bin/eipclaim claim"},
		{name: "claim standby is success", u: claim, section: "Service", key: "SuccessExitStatus", contains: "4"},
		{name: "claim no new privileges", u: claim, section: "Service", key: "NoNewPrivileges", want: "yes"},
		{name: "claim protects the system", u: claim, section: "Service", key: "ProtectSystem", want: "strict"},
		{name: "claim protects home", u: claim, section: "Service", key: "ProtectHome", want: "yes"},
		{name: "claim private tmp", u: claim, section: "Service", key: "PrivateTmp", want: "yes"},
		{name: "claim IPv4", u: claim, section: "Service", key: "RestrictAddressFamilies", contains: "AF_INET"},
		{name: "claim IPv6", u: claim, section: "Service", key: "RestrictAddressFamilies", contains: "AF_INET6"},
		{name: "claim reaches IMDS", u: claim, section: "Service", key: "IPAddressDeny", wantAbsent: true},
		{name: "claim private network", u: claim, section: "Service", key: "PrivateNetwork", wantAbsent: true},
		{name: "claim writes nothing", u: claim, section: "Service", key: "ReadWritePaths", wantAbsent: true},
		{name: "claim at boot", u: claim, section: "Install", key: "WantedBy", contains: "multi-user.target"},
		{name: "claim no release by default", u: claim, section: "Service", key: "ExecStop", wantAbsent: true},

		{name: "hosts oneshot", u: hostsSvc, section: "Service", key: "Type", want: "oneshot"},
		{name: "hosts after network", u: hostsSvc, section: "Unit", key: "After", contains: "network-online.target"},
		{name: "hosts command", u: hostsSvc, section: "Service", key: "ExecStart", wantAnyPrefix: "/usr/bin/eipclaim hosts"},
		{name: "hosts renames into /etc", u: hostsSvc, section: "Service", key: "ReadWritePaths", contains: "/etc"},
		{name: "hosts no new privileges", u: hostsSvc, section: "Service", key: "NoNewPrivileges", want: "yes"},
		{name: "hosts reaches IMDS", u: hostsSvc, section: "Service", key: "IPAddressDeny", wantAbsent: true},
		{name: "hosts only from the timer", u: hostsSvc, section: "Install", key: "WantedBy", wantAbsent: true},

		{name: "timer every minute", u: timer, section: "Timer", key: "OnUnitActiveSec", want: "1min"},
		{name: "timer starts without a first run", u: timer, section: "Timer", key: "OnActiveSec", wantAnyPrefix: ""},
		{name: "timer enabled with timers.target", u: timer, section: "Install", key: "WantedBy", contains: "timers.target"},

		{name: "drop-in releases", u: drop, section: "Service", key: "ExecStop", wantAnyPrefix: "-/usr/bin/eipclaim release"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			vals, ok := c.u[c.section][c.key]
			switch {
			case c.wantAbsent:
				if ok {
					t.Errorf("[%s] %s=%q: want it absent", c.section, c.key, vals)
				}
			case !ok:
				t.Errorf("[%s] %s: missing", c.section, c.key)
			case c.want != "":
				if got := c.u.get(c.section, c.key); got != c.want {
					t.Errorf("[%s] %s=%q, want %q", c.section, c.key, got, c.want)
				}
			case c.contains != "":
				if !slices.Contains(c.u.words(c.section, c.key), c.contains) {
					t.Errorf("[%s] %s=%q: want it to name %s", c.section, c.key, vals, c.contains)
				}
			default:
				if !strings.HasPrefix(c.u.get(c.section, c.key), c.wantAnyPrefix) {
					t.Errorf("[%s] %s=%q: want it to start with %q", c.section, c.key, vals, c.wantAnyPrefix)
				}
			}
		})
	}
}

// TestSystemdWatchUnit: the watch unit notifies, restarts, and has the
// claim unit's sandbox, key for key.
func TestSystemdWatchUnit(t *testing.T) {
	claim := parseUnit(t, readFile(t, "init/eipclaim.service"))
	watch := parseUnit(t, readFile(t, "init/eipclaim-watch.service"))
	for key, want := range map[string]string{"Type": "notify", "Restart": "always", "WatchdogSec": "5min", "NotifyAccess": "main", "EnvironmentFile": "-/etc/default/eipclaim",
		"RuntimeDirectory": "eipclaim", "RuntimeDirectoryPreserve": "yes"} { // the per-role lock: internal/watch.RuntimeDir
		if got := watch.get("Service", key); got != want {
			t.Errorf("[Service] %s=%q, want %q", key, got, want)
		}
	}
	if got := watch.get("Service", "ExecStart"); !strings.HasPrefix(got, "/usr/bin/eipclaim watch") {
		t.Errorf("ExecStart=%q, want /usr/bin/eipclaim watch", got)
	}
	if got := watch.get("Service", "ExecStop"); got != "" {
		t.Errorf("ExecStop=%q: the watcher does not release the EIP by default", got)
	}
	sandbox := []string{"NoNewPrivileges", "CapabilityBoundingSet", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
		"ProtectHostname", "ProtectClock", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
		"ProtectProc", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
		"MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber", "UMask", "ReadWritePaths", "IPAddressDeny", "PrivateNetwork"}
	for _, key := range sandbox {
		if c, w := strings.Join(claim["Service"][key], " | "), strings.Join(watch["Service"][key], " | "); c != w {
			t.Errorf("[Service] %s: claim unit %q, watch unit %q: want the same sandbox", key, c, w)
		}
	}
	// sd_notify needs AF_UNIX.
	if !slices.Contains(watch.words("Service", "RestrictAddressFamilies"), "AF_UNIX") {
		t.Error("RestrictAddressFamilies lacks AF_UNIX: READY=1 could not be sent")
	}
}

// execRE finds the variables a command line refers to: $VAR and ${VAR}.
var execRE = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// TestSystemdCommands runs every command the units start, with the real
// eipclaim and -h: the commands and flags exist.
func TestSystemdCommands(t *testing.T) {
	files := append(slices.Clone(units), dropIn)
	for _, f := range files {
		u := parseUnit(t, readFile(t, "init/"+f))
		for _, key := range []string{"ExecStart", "ExecStop", "ExecStartPre", "ExecStartPost", "ExecStopPost", "ExecReload"} {
			for _, line := range u["Service"][key] {
				// The variables are empty by default (Environment=VAR=).
				words := strings.Fields(execRE.ReplaceAllString(line, ""))
				bin := strings.TrimLeft(words[0], "-@:+!")
				if bin != "/usr/bin/eipclaim" {
					t.Errorf("%s: %s=%s: want /usr/bin/eipclaim, what the packages install", f, key, line)
					continue
				}
				t.Run(f+"/"+key, func(t *testing.T) { acceptsArgs(t, words[1:]) })
			}
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on copies of the
// units (and the drop-in) whose commands point at a real eipclaim binary.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed: scripts/tools.sh should install Debian's systemd package")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	bin := testenv.Eipclaim(t)
	dir := t.TempDir()
	copyUnit := func(src, dst string) {
		t.Helper()
		b := bytes.ReplaceAll(readFile(t, "init/"+src), []byte("/usr/bin/eipclaim"), []byte(bin))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, u := range units {
		p := filepath.Join(dir, u)
		copyUnit(u, p)
		paths = append(paths, p)
	}
	if err := os.Mkdir(filepath.Join(dir, "eipclaim.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyUnit(dropIn, filepath.Join(dir, "eipclaim.service.d", dropIn))

	args := []string{"verify", "--man=no"}
	if help, _ := exec.Command(analyze, "--help").Output(); bytes.Contains(help, []byte("--recursive-errors")) {
		// Only the units given, not the system's own that they name.
		args = append(args, "--recursive-errors=no")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, append(args, paths...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// verify exits 0 on warnings such as an unknown key: any line about
	// these units is a failure.
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, dir) || strings.Contains(line, "eipclaim") {
			t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
		} else if strings.TrimSpace(line) != "" {
			t.Logf("systemd-analyze verify (not about these units): %s", strings.TrimSpace(line))
		}
	}
}

// TestRCLocal runs the rc.local snippet with a stand-in eipclaim: it returns
// at once (boot goes on), and the claim runs in the background with the
// settings of /etc/default/eipclaim, its output in the log file.
func TestRCLocal(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	snippet := readFile(t, "init/rc.local")
	if out, err := exec.Command(sh, "-n", filepath.Join(root, "init/rc.local")).CombinedOutput(); err != nil {
		t.Fatalf("sh -n init/rc.local: %v\n%s", err, out)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "eipclaim")
	gate := filepath.Join(dir, "go")
	record := filepath.Join(dir, "record")
	logFile := filepath.Join(dir, "eipclaim.log")
	defaults := filepath.Join(dir, "default")
	// The stand-in waits for the test to open the gate, so that rc.local
	// returning proves it did not wait for eipclaim.
	script := "#!/bin/sh\n" +
		"i=0; while [ ! -e '" + gate + "' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n" +
		"{ echo \"args=$*\"; echo \"role=$EIPCLAIM_ROLE\"; echo \"region=$AWS_REGION\"; } >'" + record + ".tmp'\n" +
		"mv '" + record + ".tmp' '" + record + "'\n" +
		"echo 'eipclaim: to the log'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The shipped settings file (all comments), plus settings.
	settings := string(readFile(t, "packaging/default/eipclaim")) +
		"EIPCLAIM_ROLE=master-db\nEIPCLAIM_ARGS=\"--log-format json\"\nAWS_REGION=eu-west-1\n"
	if err := os.WriteFile(defaults, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("/usr/bin/eipclaim", fake, "/var/log/eipclaim.log", logFile, "/etc/default/eipclaim", defaults).Replace(string(snippet))
	rc := filepath.Join(dir, "rc.local")
	if err := os.WriteFile(rc, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, rc)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rc.local: %v (it must return while eipclaim runs)\n%s", err, out)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = os.ReadFile(record); err == nil {
			break
		}
	}
	want := "args=claim --timeout 5m --log-format json\nrole=master-db\nregion=eu-west-1\n"
	if string(got) != want {
		t.Errorf("eipclaim ran with:\n%s\nwant:\n%s", got, want)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logFile); bytes.Contains(b, []byte("to the log")) {
			break
		}
	}
	if b, _ := os.ReadFile(logFile); !bytes.Contains(b, []byte("eipclaim: to the log")) {
		t.Errorf("log file %s holds %q: want eipclaim's output", logFile, b)
	}
	// The flags rc.local passes exist.
	acceptsArgs(t, []string{"claim", "--timeout", "5m", "--log-format", "json"})
}

// unitDuration parses a systemd time span as the units write them: "5min",
// "45s", "90s", "2min 30s".
func unitDuration(t *testing.T, v string) time.Duration {
	t.Helper()
	r := strings.NewReplacer("min", "m", "sec", "s", " ", "")
	d, err := time.ParseDuration(r.Replace(v))
	if err != nil {
		t.Fatalf("time span %q: %v", v, err)
	}
	return d
}

// TestSystemdWatchUnitTimeouts: the watch unit's watchdog cannot kill a
// watcher that does what its limits allow (the loop pings it at least
// every watch.MaxSilence; hooks, up to an hour, ping it while they run),
// and its stop timeout leaves a move caught by the stop the time to
// finish, be published and run its on_holder hook (default timeout).
func TestSystemdWatchUnitTimeouts(t *testing.T) {
	u := parseUnit(t, readFile(t, "init/eipclaim-watch.service"))
	if wd := unitDuration(t, u.get("Service", "WatchdogSec")); wd <= watch.MaxSilence {
		t.Errorf("WatchdogSec=%s: the watch loop may go %s without a ping: want it longer", wd, watch.MaxSilence)
	}
	need := claim.DefaultFinishTimeout + config.DefaultHookTimeout
	if stop := unitDuration(t, u.get("Service", "TimeoutStopSec")); stop < need+10*time.Second {
		t.Errorf("TimeoutStopSec=%s: a move caught by the stop needs its finishing window (%s) and its on_holder hook (%s by default), and some margin", stop, claim.DefaultFinishTimeout, config.DefaultHookTimeout)
	}
	if config.DefaultHookTimeout > time.Hour || failover.DefaultStopGrace > config.DefaultHookTimeout {
		t.Errorf("hook defaults: timeout %s, stop grace %s", config.DefaultHookTimeout, failover.DefaultStopGrace)
	}
}

// TestSystemdClaimUnitTimeout: the boot claim's unit lets a claim run its
// whole --timeout, finish a move caught by it and run the move's on_holder
// hook (default timeout) before systemd kills it.
func TestSystemdClaimUnitTimeout(t *testing.T) {
	u := parseUnit(t, readFile(t, "init/eipclaim.service"))
	// eipclaim claim's --timeout default, as its -h says.
	help, _ := exec.Command(testenv.Eipclaim(t), "claim", "-h").CombinedOutput()
	m := regexp.MustCompile(`(?m)-timeout duration\n[^\n]*\(default ([0-9hms.]+)\)`).FindSubmatch(help)
	if m == nil {
		t.Fatalf("claim -h does not say --timeout's default:\n%s", help)
	}
	defaultTimeout, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	need := defaultTimeout + claim.DefaultFinishTimeout + config.DefaultHookTimeout
	if got := unitDuration(t, u.get("Service", "TimeoutStartSec")); got <= need {
		t.Errorf("TimeoutStartSec=%s: want more than --timeout (%s) + the finishing window (%s) + the on_holder hook (%s)", got, defaultTimeout, claim.DefaultFinishTimeout, config.DefaultHookTimeout)
	}
}
