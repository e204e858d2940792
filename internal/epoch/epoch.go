// Package epoch is the one home of the epoch's rules: how a stored epoch
// (the EIP's eipclaim:epoch tag, a role table entry) is read, which values
// are epochs, and which epoch a claim gets. The claim engine, the watcher,
// the role table and `eipclaim status` ask it; none keeps a copy.
//
// An epoch counts eipclaim's moves of a role's EIP: every move takes an
// epoch above every epoch seen for the role (the tag's, the role table's),
// so that a service fencing writes by epoch never accepts a deposed
// holder's. It is an integer from 0 (never moved by eipclaim) to Max.
package epoch

import (
	"fmt"
	"strconv"
)

// Max is the greatest epoch: 2^53-1, the greatest integer that every
// reader holds exactly (a Prometheus gauge is a float64, and so is a JSON
// number in JavaScript and many JSON libraries). At one move a second it
// lasts 285 million years: a value near it was written by hand.
const Max int64 = 1<<53 - 1

// Error says why a stored value is not an epoch this eipclaim can continue
// from.
type Error struct {
	Value  string // as stored
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%q is not an epoch (%s)", e.Value, e.Reason)
}

// Parse reads an epoch as stored (a tag's value): "" (no tag) is 0. A value
// that is not a decimal integer from 0 to Max is an *Error, never read as
// something else.
func Parse(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 20 {
		return 0, &Error{Value: s[:20] + "…", Reason: "not a decimal integer"}
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			reason := "not a decimal integer"
			if s[0] == '-' {
				reason = "negative"
			}
			return 0, &Error{Value: s, Reason: reason}
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > uint64(Max) {
		return 0, &Error{Value: s, Reason: fmt.Sprintf("above the greatest epoch, %d", Max)}
	}
	return int64(n), nil
}

// Check reports whether n is an epoch (from 0 to Max).
func Check(n int64) error {
	switch {
	case n < 0:
		return &Error{Value: strconv.FormatInt(n, 10), Reason: "negative"}
	case n > Max:
		return &Error{Value: strconv.FormatInt(n, 10), Reason: fmt.Sprintf("above the greatest epoch, %d", Max)}
	}
	return nil
}

// Next returns the epoch of a move: one above every epoch seen. At Max it
// cannot advance: it returns Max and an error saying so.
func Next(seen ...int64) (int64, error) {
	var top int64
	for _, n := range seen {
		top = max(top, n)
	}
	if top >= Max {
		return Max, fmt.Errorf("the epoch is at its greatest value, %d, and cannot advance: two holders get the same epoch until it is set back by hand", Max)
	}
	return top + 1, nil
}

// Recorded is what the role table records for a role: the epoch of its
// entry and who wrote it.
type Recorded struct {
	Epoch  int64
	Holder string
}

// Decision is the epoch of a claim.
type Decision struct {
	Epoch int64
	// Retag says that the EIP's tag must be rewritten with Epoch.
	Retag bool
	// TableAhead says that the role table records a greater epoch than
	// the tag: the tag was set back, deleted, or is of a new EIP.
	TableAhead bool
	// Problems are what was wrong with the epochs seen (a tag that is not
	// an epoch, an epoch that cannot advance): to be reported, never
	// silently mended.
	Problems []error
}

// Decide is the epoch of a claim by self. tag is the EIP's eipclaim:epoch
// as stored; moved says that the claim moves the EIP (or records a move
// that was never tagged); rec is the role table's record for the role, nil
// when there is no table or no entry.
//
//   - A move takes an epoch above the tag's and the table's.
//   - A tag that is not an epoch is reported and disregarded: the claim
//     takes an epoch above the table's (1 without one) and rewrites the tag.
//   - An EIP that stays keeps its tag's epoch, unless the table records a
//     greater one: then the tag was set back, and the claim takes the
//     table's when the entry is self's (the epoch this holder was given),
//     else one above it.
func Decide(tag string, moved bool, rec *Recorded, self string) Decision {
	var d Decision
	cur, err := Parse(tag)
	if err != nil {
		d.Problems = append(d.Problems, fmt.Errorf("the EIP's epoch tag: %w: disregarded, a new epoch is taken", err))
		moved = true
	}
	var floor int64
	if rec != nil {
		floor = rec.Epoch
	}
	d.TableAhead = floor > cur
	switch {
	case moved:
		n, err := Next(cur, floor)
		if err != nil {
			d.Problems = append(d.Problems, err)
		}
		d.Epoch, d.Retag = n, true
	case floor > cur && rec.Holder == self:
		d.Epoch, d.Retag = floor, true
	case floor > cur:
		n, err := Next(cur, floor)
		if err != nil {
			d.Problems = append(d.Problems, err)
		}
		d.Epoch, d.Retag = n, true
	default:
		d.Epoch = cur
	}
	return d
}
