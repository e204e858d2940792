package epoch

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		problem string // "" when an epoch
	}{
		{"", 0, ""},
		{"0", 0, ""},
		{"7", 7, ""},
		{"007", 7, ""},
		{strconv.FormatInt(Max, 10), Max, ""},
		{strconv.FormatInt(Max+1, 10), 0, "above the greatest epoch"},
		{"9223372036854775807", 0, "above the greatest epoch"},
		{"18446744073709551616", 0, "above the greatest epoch"},
		{"99999999999999999999999999", 0, "not a decimal integer"},
		{"garbage", 0, "not a decimal integer"},
		{"-1", 0, "negative"},
		{"+5", 0, "not a decimal integer"},
		{" 5", 0, "not a decimal integer"},
		{"5\n", 0, "not a decimal integer"},
		{"1e3", 0, "not a decimal integer"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			var pe *Error
			switch {
			case tc.problem == "" && (err != nil || got != tc.want):
				t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			case tc.problem != "" && (!errors.As(err, &pe) || !strings.Contains(err.Error(), tc.problem) || got != 0):
				t.Errorf("Parse(%q) = %d, %v; want 0 and an *Error saying %q", tc.in, got, err, tc.problem)
			}
		})
	}
}

func TestCheckAndNext(t *testing.T) {
	for _, n := range []int64{-1, -9223372036854775808, Max + 1, 9223372036854775807} {
		if Check(n) == nil {
			t.Errorf("Check(%d) = nil, want an error", n)
		}
	}
	for _, n := range []int64{0, 1, Max} {
		if err := Check(n); err != nil {
			t.Errorf("Check(%d) = %v", n, err)
		}
	}
	if n, err := Next(3, 9, 1); n != 10 || err != nil {
		t.Errorf("Next(3, 9, 1) = %d, %v; want 10", n, err)
	}
	if n, err := Next(-9223372036854775808); n != 1 || err != nil {
		t.Errorf("Next(negative) = %d, %v; want 1 (a negative epoch counts for nothing)", n, err)
	}
	if n, err := Next(Max - 1); n != Max || err != nil {
		t.Errorf("Next(Max-1) = %d, %v; want Max", n, err)
	}
	if n, err := Next(Max); n != Max || err == nil {
		t.Errorf("Next(Max) = %d, %v; want Max and an error: it cannot advance, never wraps", n, err)
	}
}

// TestDecide: the epoch of a claim, from the EIP's tag, whether the claim
// moves the EIP, and the role table's record.
func TestDecide(t *testing.T) {
	const self, other = "i-self", "i-other"
	maxTag := strconv.FormatInt(Max, 10)
	for _, tc := range []struct {
		name    string
		tag     string
		moved   bool
		rec     *Recorded
		want    int64
		retag   bool
		problem string
	}{
		{"a fresh EIP, no table", "", true, nil, 1, true, ""},
		{"a move", "41", true, nil, 42, true, ""},
		{"stays", "41", false, nil, 41, false, ""},
		{"stays, table agrees", "41", false, &Recorded{41, self}, 41, false, ""},
		{"stays, table older", "41", false, &Recorded{12, other}, 41, false, ""},
		{"tag deleted, moved: above the table", "", true, &Recorded{7, other}, 8, true, ""},
		{"new EIP for a role in the table", "", true, &Recorded{30, other}, 31, true, ""},
		{"table greater than tag, moved", "3", true, &Recorded{20, other}, 21, true, ""},
		{"table greater than tag, stays, entry is self's", "3", false, &Recorded{20, self}, 20, true, ""},
		{"table greater than tag, stays, entry is another's", "3", false, &Recorded{20, "register@host"}, 21, true, ""},
		{"tag garbage, moved, table", "garbage", true, &Recorded{8, other}, 9, true, "not a decimal integer"},
		{"tag garbage, stays: rewritten", "garbage", false, &Recorded{8, self}, 9, true, "not a decimal integer"},
		{"tag garbage, no table", "garbage", true, nil, 1, true, "not a decimal integer"},
		{"tag max int64, moved", "9223372036854775807", true, &Recorded{9, other}, 10, true, "above the greatest epoch"},
		{"tag max int64, no table", "9223372036854775807", true, nil, 1, true, "above the greatest epoch"},
		{"tag negative", "-4", false, nil, 1, true, "negative"},
		{"tag at Max, moved: stays at Max, reported", maxTag, true, nil, Max, true, "cannot advance"},
		{"table at Max, moved", "5", true, &Recorded{Max, other}, Max, true, "cannot advance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.tag, tc.moved, tc.rec, self)
			if d.Epoch != tc.want || d.Retag != tc.retag {
				t.Errorf("Decide(%q, moved %v, %+v) = epoch %d retag %v; want %d, %v", tc.tag, tc.moved, tc.rec, d.Epoch, d.Retag, tc.want, tc.retag)
			}
			if d.Epoch < 0 || d.Epoch > Max {
				t.Errorf("epoch %d out of range", d.Epoch)
			}
			var all []string
			for _, p := range d.Problems {
				all = append(all, p.Error())
			}
			switch {
			case tc.problem == "" && len(all) > 0:
				t.Errorf("problems %q, want none", all)
			case tc.problem != "" && !strings.Contains(strings.Join(all, "; "), tc.problem):
				t.Errorf("problems %q, want one saying %q", all, tc.problem)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "0", "7", "garbage", "-1", "9223372036854775807", "9007199254740991", "9007199254740992"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if n != 0 {
				t.Errorf("Parse(%q) = %d with an error", s, n)
			}
			return
		}
		if Check(n) != nil {
			t.Errorf("Parse(%q) = %d, not an epoch", s, n)
		}
		if s != "" && strings.TrimLeft(strconv.FormatInt(n, 10), "0") != strings.TrimLeft(s, "0") {
			t.Errorf("Parse(%q) = %d", s, n)
		}
	})
}
