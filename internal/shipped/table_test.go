package shipped

import (
	"strings"
	"testing"
)

// TestHostsFromShipped: the hosts timer unit and the Windows hosts task can
// run hosts --from (the role table alone): the unit documents the
// EIPCLAIM_HOSTS_ARGS that does it, install.ps1 passes -HostsFrom as
// --from instead of --config, and the binary accepts the commands they
// make.
func TestHostsFromShipped(t *testing.T) {
	unit := parseUnit(t, readFile(t, "init/eipclaim-hosts.service"))
	exec := unit["Service"]["ExecStart"]
	if len(exec) != 1 || !strings.Contains(exec[0], "$EIPCLAIM_HOSTS_ARGS") {
		t.Fatalf("eipclaim-hosts.service ExecStart %v: want the EIPCLAIM_HOSTS_ARGS that --from goes in", exec)
	}
	doc := string(readFile(t, "init/eipclaim-hosts.service"))
	const args = "--from s3://fleet-config/roles.json"
	// Quoted: /etc/default/eipclaim is read by sh too, which would run
	// the word after an unquoted space as a command.
	if !strings.Contains(doc, `EIPCLAIM_HOSTS_ARGS="`+args+`"`) {
		t.Errorf(`eipclaim-hosts.service does not show EIPCLAIM_HOSTS_ARGS="%s"`, args)
	}
	words := strings.Fields(strings.ReplaceAll(exec[0], "$EIPCLAIM_HOSTS_ARGS", args))
	acceptsArgs(t, words[1:])

	install := string(readFile(t, "windows/install.ps1"))
	for _, want := range []string{"[string] $HostsFrom", `$hostsArguments = " --from ` + "`\"$HostsFrom`\"\"", "$hostsArguments += ' --public'", "-ExtraArguments $hostsArguments"} {
		if !strings.Contains(install, want) {
			t.Errorf("windows/install.ps1 does not contain %q", want)
		}
	}
	acceptsArgs(t, []string{"hosts", "--log-level", "warn", "--log-file", `C:\ProgramData\eipclaim\hosts.log`, "--from", "https://fleet.example.com/roles.json", "--public"})
}
