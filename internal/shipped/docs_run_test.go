package shipped

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The placeholder ids of the documentation's examples, replaced by the
// emulated world's.
const docAllocationID = "eipalloc-0123456789abcdef0"

// eipWhere is where the minimal user-data's EIP is before a command runs.
type eipWhere int

const (
	onNobody eipWhere = iota // free
	onSelf                   // on the instance the command runs as
	onOther                  // on another instance, running and healthy
)

// docCommand is what a documented command must do: its exit code, from
// where the EIP is before it, and what its output must say. {self},
// {other}, {ip}, {selfip} stand for the world's instance ids, the EIP
// and the private IP of the instance the command runs as.
type docCommand struct {
	before eipWhere
	exit   int
	says   []string
	after  eipWhere // where the EIP must be after it
	// watch: the command stays running; it is stopped with SIGTERM once
	// the EIP is on after.
	watch bool
}

// docCommands holds every command of an example=run block, by its text
// (without its comment). A command the documentation shows that is not
// here fails TestDocCommands, and so does one here that it no longer shows.
var docCommands = map[string]docCommand{
	"eipclaim check":                      {before: onNobody, exit: 0, says: []string{"ok      master-db  ec2:AssociateAddress"}, after: onNobody},
	"eipclaim claim --dry-run":            {before: onNobody, exit: 0, says: []string{"master-db: would be claimed {ip}"}, after: onNobody},
	"eipclaim":                            {before: onNobody, exit: 0, says: []string{"master-db: claimed {ip}"}, after: onSelf},
	"eipclaim status":                     {before: onSelf, exit: 0, says: []string{"{ip}", "{self}"}, after: onSelf},
	"eipclaim status --role master-db":    {before: onOther, exit: 0, says: []string{"{ip}", "{other}"}, after: onOther},
	"eipclaim --role master-db --dry-run": {before: onOther, exit: 4, says: []string{"{other}"}, after: onOther},
	"eipclaim --role master-db":           {before: onOther, exit: 4, says: []string{"held by", "{other}"}, after: onOther},
	"eipclaim --role master-db --force":   {before: onOther, exit: 0, says: []string{"master-db: taken over {ip}", "{other}"}, after: onSelf},
	"eipclaim watch":                      {before: onNobody, exit: 0, watch: true, says: []string{"holder"}, after: onSelf},
	"eipclaim hosts --dry-run":            {before: onSelf, exit: 0, says: []string{"{selfip}  master-db", "# BEGIN eipclaim"}, after: onSelf},
}

// TestDocCommands runs every command of README.md's and docs/'s
// example=run blocks with sh, the built eipclaim first on PATH, as the
// instance whose user-data is the README's minimal one (its placeholder
// allocation id replaced by a real EIP of the emulators), against moto
// behind the IAM gate and the IMDS emulator: one world for every command,
// the EIP put where docCommands says before each. It also checks every
// example=usage line against the flags the binary takes.
func TestDocCommands(t *testing.T) {
	blocks := docBlocks(t)
	bin := testenv.Eipclaim(t)
	checkUsage(t, bin, blocks)

	var minimal []docBlock
	for _, b := range blocks {
		if b.kind == "user-data" && b.attrs["id"] == "minimal" {
			minimal = append(minimal, b)
		}
	}
	if len(minimal) != 1 || minimal[0].file != "README.md" {
		t.Fatalf("want one example=user-data id=minimal block, in README.md: the commands run with it; got %v", minimal)
	}
	if !strings.Contains(minimal[0].body, docAllocationID) {
		t.Fatalf("%s: the minimal user-data does not name %s, which the test replaces with the emulators' EIP", minimal[0], docAllocationID)
	}

	moto := testenv.SharedMoto(t)
	tw := testenv.NewTestWorld(t, moto.Config())
	insts := tw.NewInstances(2)
	self, other := insts[0], insts[1]
	eip := tw.NewEIP(nil)
	md := tw.IMDSFor(self, strings.ReplaceAll(minimal[0].body, docAllocationID, eip.AllocationID))

	// The binary as "eipclaim", first on PATH.
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "eipclaim")); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "PATH" && !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "EIPCLAIM_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	env = append(append(env, moto.Env()...), md.Env()...)
	expand := strings.NewReplacer("{self}", self.ID, "{other}", other.ID, "{ip}", eip.PublicIP, "{selfip}", self.PrivateIP).Replace

	ctx := context.Background()
	where := func() eipWhere {
		a := tw.Address(eip.AllocationID)
		switch eni, inst := aws.ToString(a.NetworkInterfaceId), aws.ToString(a.InstanceId); {
		case eni == "" && inst == "":
			return onNobody
		case eni == self.ENI || eni == "" && inst == self.ID:
			return onSelf
		case eni == other.ENI || eni == "" && inst == other.ID:
			return onOther
		}
		t.Fatalf("the EIP is on %s %s, which the test did not make", aws.ToString(a.InstanceId), aws.ToString(a.NetworkInterfaceId))
		return onNobody
	}
	put := func(w eipWhere) {
		t.Helper()
		if where() == w {
			return
		}
		if assoc := aws.ToString(tw.Address(eip.AllocationID).AssociationId); assoc != "" {
			if _, err := tw.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(assoc)}); err != nil {
				t.Fatal(err)
			}
		}
		switch w {
		case onSelf:
			tw.Associate(eip.AllocationID, self.ID)
		case onOther:
			tw.Associate(eip.AllocationID, other.ID)
		}
	}

	seen := map[string]bool{}
	ran := 0
	for _, b := range blocks {
		if b.kind != "run" {
			continue
		}
		for line := range strings.Lines(b.body) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			command, _, _ := strings.Cut(line, "#")
			command = strings.Join(strings.Fields(command), " ")
			want, ok := docCommands[command]
			if !ok {
				t.Errorf("%s: %q is not in docCommands: add what it must do (exit code, where the EIP is before and after, what it says)", b, command)
				continue
			}
			seen[command] = true
			t.Run(strings.ReplaceAll(command, " ", "_"), func(t *testing.T) {
				put(want.before)
				out, code := runDocLine(t, line, env, want, where)
				ran++
				if code != want.exit {
					t.Errorf("%s: %s: exit %d, want %d\n%s", b, line, code, want.exit, out)
				}
				for _, s := range want.says {
					if !strings.Contains(out, expand(s)) {
						t.Errorf("%s: %s: the output does not say %q\n%s", b, line, expand(s), out)
					}
				}
				if got := where(); got != want.after {
					t.Errorf("%s: %s: the EIP is on %v after it, want %v", b, line, got, want.after)
				}
			})
		}
	}
	for _, c := range slices.Sorted(func(yield func(string) bool) {
		for c := range docCommands {
			if !yield(c) {
				return
			}
		}
	}) {
		if !seen[c] {
			t.Errorf("docCommands has %q, which no example=run block shows: take it out", c)
		}
	}
	t.Logf("ran %d documented commands", ran)
}

// runDocLine runs one documented line with sh and returns its output
// (stdout and stderr) and exit code. A watch is stopped with SIGTERM once
// the EIP is where want says.
func runDocLine(t *testing.T, line string, env []string, want docCommand, where func() eipWhere) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "exec "+line)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if !want.watch {
		err := cmd.Run()
		return out.String(), exitCode(t, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for where() != want.after && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	return out.String(), exitCode(t, err)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("the command did not exit by itself: %v", err)
	return -1
}

var (
	usageCommandRE = regexp.MustCompile(`^eipclaim\s+\[?([a-z]+)\]?`)
	usageFlagRE    = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
)

// checkUsage: every command of an example=usage line exists, and each of
// its --flags is one that command takes (`eipclaim COMMAND -h` lists it).
func checkUsage(t *testing.T, bin string, blocks []docBlock) {
	t.Helper()
	for _, b := range blocks {
		if b.kind != "usage" {
			continue
		}
		for line := range strings.Lines(b.body) {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			m := usageCommandRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: %q: want eipclaim COMMAND (or [claim]) and its flags", b, line)
				continue
			}
			help, err := exec.Command(bin, m[1], "-h").CombinedOutput()
			if err != nil && !bytes.Contains(help, []byte("Usage of "+m[1])) {
				t.Errorf("%s: eipclaim %s -h: %v\n%s", b, m[1], err, help)
				continue
			}
			for _, f := range usageFlagRE.FindAllStringSubmatch(line, -1) {
				if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(f[1]) + `\b`).Match(help) {
					t.Errorf("%s: eipclaim %s takes no --%s (eipclaim %s -h):\n%s", b, m[1], f[1], m[1], help)
				}
			}
		}
	}
}
