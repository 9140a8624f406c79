package breaker

import (
	"errors"
	"strconv"
)

// ErrOpen is returned by Execute and Allow when the circuit is OPEN, because
// failures tripped it or ForceOpen holds it, and the call was therefore not
// made. The error returned wraps ErrOpen with the breaker's name; test for it
// with errors.Is.
var ErrOpen = errors.New("circuit open")

// ErrTooManyProbes is returned by Execute and Allow when the circuit is
// HALF_OPEN and Settings.HalfOpenMaxCalls probe calls are already running,
// so this call was not made. The error returned wraps ErrTooManyProbes with
// the breaker's name; test for it with errors.Is.
var ErrTooManyProbes = errors.New("circuit half-open and its probe calls are all in flight")

// errPanicked stands for a call that panicked; it counts as a failure
// without consulting the classifier.
var errPanicked = errors.New("call panicked")

// rejection is the error a rejected call gets: the sentinel plus the name
// of the breaker that said no. One of each kind is made by New, so a
// rejection allocates nothing.
type rejection struct {
	msg      string
	sentinel error
}

func newRejection(name string, sentinel error) *rejection {
	msg := "breaker: " + sentinel.Error()
	if name != "" {
		msg = "breaker " + strconv.Quote(name) + ": " + sentinel.Error()
	}
	return &rejection{msg: msg, sentinel: sentinel}
}

func (r *rejection) Error() string { return r.msg }
func (r *rejection) Unwrap() error { return r.sentinel }
