package shipped

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// taskNamespace is the Task Scheduler schema's namespace.
const taskNamespace = "http://schemas.microsoft.com/windows/2004/02/mit/task"

// The paths the tasks use, and that install.ps1 rewrites for the machine.
const (
	windowsExe     = `C:\Program Files\eipclaim\eipclaim.exe`
	windowsDataDir = `C:\ProgramData\eipclaim`
)

// task is the part of a Task Scheduler task that the tests check.
type task struct {
	XMLName  xml.Name
	Version  string `xml:"version,attr"`
	Triggers struct {
		Boot []struct {
			Enabled string `xml:"Enabled"`
			Delay   string `xml:"Delay"`
		} `xml:"BootTrigger"`
		Time []struct {
			Enabled       string `xml:"Enabled"`
			StartBoundary string `xml:"StartBoundary"`
			Repetition    *struct {
				Interval string `xml:"Interval"`
				Duration string `xml:"Duration"`
			} `xml:"Repetition"`
		} `xml:"TimeTrigger"`
	} `xml:"Triggers"`
	Principals struct {
		Principal []struct {
			ID        string `xml:"id,attr"`
			UserID    string `xml:"UserId"`
			RunLevel  string `xml:"RunLevel"`
			LogonType string `xml:"LogonType"`
		} `xml:"Principal"`
	} `xml:"Principals"`
	Settings struct {
		MultipleInstancesPolicy string `xml:"MultipleInstancesPolicy"`
		ExecutionTimeLimit      string `xml:"ExecutionTimeLimit"`
		Enabled                 string `xml:"Enabled"`
		RestartOnFailure        *struct {
			Interval string `xml:"Interval"`
			Count    int    `xml:"Count"`
		} `xml:"RestartOnFailure"`
	} `xml:"Settings"`
	Actions struct {
		Context string `xml:"Context,attr"`
		Exec    []struct {
			Command          string `xml:"Command"`
			Arguments        string `xml:"Arguments"`
			WorkingDirectory string `xml:"WorkingDirectory"`
		} `xml:"Exec"`
	} `xml:"Actions"`
}

func parseTask(t *testing.T, path string) *task {
	t.Helper()
	data := readFile(t, path)
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || bytes.HasPrefix(data, []byte("\xff\xfe")) {
		t.Errorf("%s starts with a byte order mark: keep it UTF-8 without one (install.ps1 reads it with Get-Content -Raw -Encoding UTF8)", path)
	}
	// Well-formed: every token decodes.
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", path, err)
		}
	}
	var tk task
	if err := xml.Unmarshal(data, &tk); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if tk.XMLName.Local != "Task" || tk.XMLName.Space != taskNamespace {
		t.Errorf("%s: root element {%s}%s, want {%s}Task", path, tk.XMLName.Space, tk.XMLName.Local, taskNamespace)
	}
	if v, err := strconv.ParseFloat(tk.Version, 64); err != nil || v < 1.2 {
		t.Errorf("%s: Task version=%q, want 1.2 or later", path, tk.Version)
	}
	return &tk
}

// isoDuration parses the durations of the Task Scheduler schema, such as
// PT30S, PT1M, P1DT2H.
func isoDuration(s string) (time.Duration, error) {
	re := regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)
	m := re.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		return 0, fmt.Errorf("%q: not a duration such as PT30S", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}

func TestWindowsTasks(t *testing.T) {
	cases := []struct {
		file        string
		command     string   // the first argument
		wantArgs    []string // arguments that must be there, in this order
		boot        bool     // a BootTrigger with a delay
		repeatEvery time.Duration
		restart     bool // RestartOnFailure PT1M x5
	}{
		{
			file:     "windows/eipclaim-task.xml",
			command:  "claim",
			wantArgs: []string{"--log-file", windowsDataDir + `\eipclaim.log`},
			boot:     true,
			restart:  true,
		},
		{
			file:        "windows/eipclaim-hosts-task.xml",
			command:     "hosts",
			wantArgs:    []string{"--log-file", windowsDataDir + `\hosts.log`},
			repeatEvery: time.Minute,
		},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			tk := parseTask(t, c.file)

			if c.boot {
				if len(tk.Triggers.Boot) != 1 {
					t.Fatalf("%d BootTriggers, want 1", len(tk.Triggers.Boot))
				}
				d, err := isoDuration(tk.Triggers.Boot[0].Delay)
				if err != nil || d < 10*time.Second || d > 5*time.Minute {
					t.Errorf("BootTrigger Delay %q: want a delay for the network, 10s to 5m (%v)", tk.Triggers.Boot[0].Delay, err)
				}
			}
			if c.repeatEvery > 0 {
				ok := false
				for _, tt := range tk.Triggers.Time {
					if tt.Repetition == nil {
						continue
					}
					d, err := isoDuration(tt.Repetition.Interval)
					if err != nil {
						t.Errorf("TimeTrigger Repetition Interval: %v", err)
					}
					if tt.StartBoundary == "" {
						t.Errorf("TimeTrigger without a StartBoundary: the schema requires one")
					}
					if tt.Repetition.Duration != "" {
						t.Errorf("TimeTrigger Repetition Duration %q: want none (repeat forever)", tt.Repetition.Duration)
					}
					ok = ok || d == c.repeatEvery && tt.Enabled != "false"
				}
				if !ok {
					t.Errorf("no enabled TimeTrigger repeating every %v", c.repeatEvery)
				}
			}

			if n := len(tk.Principals.Principal); n != 1 {
				t.Fatalf("%d Principals, want 1", n)
			}
			p := tk.Principals.Principal[0]
			if p.UserID != "S-1-5-18" {
				t.Errorf("Principal UserId %q, want S-1-5-18 (SYSTEM)", p.UserID)
			}
			if p.RunLevel != "HighestAvailable" {
				t.Errorf("Principal RunLevel %q, want HighestAvailable", p.RunLevel)
			}
			if tk.Actions.Context != p.ID {
				t.Errorf("Actions Context %q does not name the Principal %q", tk.Actions.Context, p.ID)
			}

			limit, err := isoDuration(tk.Settings.ExecutionTimeLimit)
			if err != nil || limit <= time.Minute {
				t.Errorf("ExecutionTimeLimit %q: want more than eipclaim's own --timeout (%v)", tk.Settings.ExecutionTimeLimit, err)
			}
			if c.command == "claim" && limit <= 5*time.Minute {
				t.Errorf("ExecutionTimeLimit %v: want more than claim's default --timeout of 5m", limit)
			}
			if tk.Settings.MultipleInstancesPolicy != "IgnoreNew" {
				t.Errorf("MultipleInstancesPolicy %q, want IgnoreNew", tk.Settings.MultipleInstancesPolicy)
			}
			if c.restart {
				r := tk.Settings.RestartOnFailure
				if r == nil || r.Interval != "PT1M" || r.Count != 5 {
					t.Errorf("RestartOnFailure %+v, want Interval PT1M and Count 5", r)
				}
			}

			if n := len(tk.Actions.Exec); n != 1 {
				t.Fatalf("%d Exec actions, want 1", n)
			}
			ex := tk.Actions.Exec[0]
			if got := strings.Trim(ex.Command, `"`); got != windowsExe {
				t.Errorf("Exec Command %q, want %q", ex.Command, windowsExe)
			}
			args, err := testenv.WindowsArgs(ex.Arguments)
			if err != nil {
				t.Fatal(err)
			}
			if len(args) == 0 || args[0] != c.command {
				t.Fatalf("Exec Arguments %q: want the %s command first", ex.Arguments, c.command)
			}
			if !containsInOrder(args, c.wantArgs) {
				t.Errorf("Exec Arguments %q: want %q", ex.Arguments, c.wantArgs)
			}
			// install.ps1 rewrites this path for the machine's ProgramData.
			if !strings.Contains(ex.Arguments, windowsDataDir) {
				t.Errorf("Exec Arguments %q: want the log under %s", ex.Arguments, windowsDataDir)
			}
			acceptsArgs(t, args)
		})
	}
}

// containsInOrder reports whether want appears in args as a contiguous run.
func containsInOrder(args, want []string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		match := true
		for j := range want {
			if args[i+j] != want[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// TestWindowsScripts checks what can be checked of the PowerShell scripts
// on any OS: ASCII only (Windows PowerShell 5.1 reads a script without a BOM
// in the ANSI code page), and install.ps1 names the task files and paths
// that exist.
func TestWindowsScripts(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(root, "windows"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b := readFile(t, "windows/"+e.Name())
		if line, ok := isASCII(b); !ok {
			t.Errorf("windows/%s line %d: not ASCII", e.Name(), line)
		}
	}
	install := string(readFile(t, "windows/install.ps1"))
	for _, want := range []string{
		"eipclaim-task.xml", "eipclaim-hosts-task.xml", // the files it registers
		"Register-ScheduledTask", "-Xml",
		"Get-Content -LiteralPath $path -Raw",
		"'" + windowsDataDir + "'", // the path it rewrites, as the tasks spell it
		"S-1-5-18", "S-1-5-32-544", // SYSTEM and Administrators on the log folder
		"SupportsShouldProcess",
	} {
		if !strings.Contains(install, want) {
			t.Errorf("windows/install.ps1 does not contain %q", want)
		}
	}
	uninstall := string(readFile(t, "windows/uninstall.ps1"))
	for _, want := range []string{"Unregister-ScheduledTask", "'claim', 'hosts'", "SupportsShouldProcess"} {
		if !strings.Contains(uninstall, want) {
			t.Errorf("windows/uninstall.ps1 does not contain %q", want)
		}
	}
}
