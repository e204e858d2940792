package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a configured length of time, written as Go writes one:
// "5s", "1m30s", "250ms". It is parsed once, when the configuration is
// decoded; an invalid value is an exit-2 configuration error naming the
// key and its line (like every validation problem). The zero value is
// unset: the consumer applies its default.
type Duration struct {
	D   time.Duration
	set bool   // a value was given (0s is a value)
	bad string // the value as written, when it is not valid
}

// durationRule says what a duration is, after what is wrong with one.
const durationRule = "want a duration such as 5s, 1m30s or 250ms (a number and a unit: ms, s, m, h)"

// ParseDuration parses a duration value; negative ones are refused.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return Duration{}, fmt.Errorf("%s", durationRule)
	}
	return Duration{D: d, set: true}, nil
}

// Set reports whether a duration was given ("0s" is given).
func (d Duration) Set() bool { return d.set }

// Or returns the duration, or def when it is unset.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.set {
		return d.D
	}
	return def
}

// String returns the duration as Go writes it, or "" when unset.
func (d Duration) String() string {
	switch {
	case d.bad != "":
		return d.bad
	case !d.set:
		return ""
	}
	return d.D.String()
}

// UnmarshalYAML parses the scalar; an invalid value is kept for
// validation to report with its key path and line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	*d = Duration{}
	if n.Value == "" {
		return nil
	}
	p, err := ParseDuration(n.Value)
	if err != nil {
		d.bad = n.Value
		return nil
	}
	*d = p
	return nil
}

// MarshalText writes the duration as Go writes it (JSON, YAML).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// duration reports an invalid duration at path: a block with durations
// (in its own file of this package) calls it from its validation, as
// v.duration(path+".interval", w.Interval).
func (v *validator) duration(path string, d Duration) {
	if d.bad != "" {
		v.add(path, d.bad, durationRule)
	}
}

// durationIn checks a duration against its bounds [lo, hi], when given.
func (v *validator) durationIn(path string, d Duration, lo, hi time.Duration, example string) {
	switch {
	case d.bad != "":
		v.add(path, d.bad, durationRule+", "+example)
	case d.set && (d.D < lo || d.D > hi):
		v.add(path, d.String(), fmt.Sprintf("want a duration from %s to %s, %s", lo, hi, example))
	}
}
