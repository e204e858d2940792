package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain", base, Failed},
		{"usage", With(Usage, base), Usage},
		{"wrapped", fmt.Errorf("claim: %w", With(Denied, base)), Denied},
		{"outermost wins", With(DNSFailed, With(Usage, base)), DNSFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Of(tc.err); got != tc.want {
				t.Errorf("Of(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
	if With(Usage, nil) != nil {
		t.Error("With(Usage, nil) != nil")
	}
	if !errors.Is(With(Usage, base), base) {
		t.Error("With does not unwrap to its error")
	}
}
