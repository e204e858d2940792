// Package exitcode gives errors the process exit code that eipclaim documents,
// so that only main decides how the process ends.
package exitcode

import "errors"

// The documented exit codes.
const (
	OK        = 0 // done, or nothing to do
	Failed    = 1 // failed after retries
	Usage     = 2 // bad configuration or usage
	Denied    = 3 // not permitted
	Refused   = 4 // refused: held by a healthy instance
	DNSFailed = 5 // claimed, but DNS publication failed
)

// Error is an error that carries an exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// With attaches code to err. It returns nil when err is nil, and keeps the
// code outermost: Of reports the first code found from the outside in.
func With(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Of returns the exit code for err: OK for nil, the outermost code attached
// with With, else Failed.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}
