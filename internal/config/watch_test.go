package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWatchDefaultsAndValues(t *testing.T) {
	c, err := Parse([]byte("roles:\n  db:\n    public_ip: 203.0.113.3\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Roles["db"].WatchSettings()
	want := WatchSettings{Interval: 5 * time.Second, Fall: 3, HoldDown: 60 * time.Second, HookTimeout: 30 * time.Second}
	if got.Interval != want.Interval || got.Fall != want.Fall || got.HoldDown != want.HoldDown || got.HookTimeout != want.HookTimeout || got.OnHolder != nil {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	c, err = Parse([]byte(`roles:
  db:
    public_ip: 203.0.113.3
    watch: {interval: 1s, fall: 2, hold_down: 1s, references: ["10.0.0.5:22", "gw.example.internal:53"]}
    hooks:
      on_holder: ["/usr/local/bin/promote", "--fast"]
      on_standby: [/usr/local/bin/demote]
      timeout: 10s
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	got = c.Roles["db"].WatchSettings()
	if got.Interval != time.Second || got.Fall != 2 || got.HoldDown != time.Second || !slices.Equal(got.References, []string{"10.0.0.5:22", "gw.example.internal:53"}) || got.HookTimeout != 10*time.Second ||
		!slices.Equal(got.OnHolder, []string{"/usr/local/bin/promote", "--fast"}) || !slices.Equal(got.OnStandby, []string{"/usr/local/bin/demote"}) {
		t.Errorf("settings = %+v", got)
	}
}

func TestWatchInvalid(t *testing.T) {
	role := "roles:\n  db:\n    public_ip: 203.0.113.3\n"
	cases := []struct{ name, doc, want string }{
		{"bare number interval", role + "    watch: {interval: 5}\n", `roles.db.watch.interval "5" (line 4): want a duration such as 5s, 1m30s or 250ms (a number and a unit`},
		{"interval too short", role + "    watch: {interval: 1ms}\n", `roles.db.watch.interval "1ms" (line 4): want a duration from 100ms to 1h0m0s`},
		{"fall zero", role + "    watch: {fall: 0}\n", `roles.db.watch.fall "0" (line 4): want a whole number of looks from 1 to 100`},
		{"fall float", role + "    watch: {fall: 2.5}\n", `roles.db.watch.fall "2.5" (line 4): want a whole number`},
		{"negative hold_down", role + "    watch: {hold_down: -1s}\n", `roles.db.watch.hold_down "-1s" (line 4)`},
		{"hold_down zero", role + "    watch: {hold_down: 0s}\n", `roles.db.watch.hold_down "0s" (line 4): want a duration from 1s to 24h0m0s, such as 60s: after a move the new holder keeps the EIP at least this long, so 0 (no hold-down) is refused`},
		{"hold_down below the floor", role + "    watch: {hold_down: 500ms}\n", `roles.db.watch.hold_down "500ms" (line 4): want a duration from 1s`},
		{"reference without a port", role + "    watch: {references: [10.0.0.5]}\n", `roles.db.watch.references[0] "10.0.0.5" (line 4): want HOST:PORT`},
		{"reference port 0", role + "    watch: {references: [\"10.0.0.5:22\", \"10.0.0.6:0\"]}\n", `roles.db.watch.references[1] "10.0.0.6:0" (line 4): want HOST:PORT`},
		{"unknown watch key", role + "    watch: {intervall: 5s}\n", "roles.db.watch.intervall (line 4): unknown key"},
		{"relative hook", role + "    hooks:\n      on_holder: [promote]\n", `roles.db.hooks.on_holder "promote" (line 5): want the program's absolute path`},
		{"hook as a string", role + "    hooks:\n      on_holder: /usr/local/bin/promote --fast\n", `roles.db.hooks.on_holder (line 5): want a list, got "/usr/local/bin/promote --fast"`},
		{"empty hook", role + "    hooks:\n      on_standby: []\n", "roles.db.hooks.on_standby (line 5): want a command as a list"},
		{"hook timeout", role + "    hooks:\n      timeout: 30\n", `roles.db.hooks.timeout "30" (line 5): want a duration such as 5s, 1m30s or 250ms (a number and a unit`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "test")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}
