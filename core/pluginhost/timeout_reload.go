package pluginhost

import (
	"sync/atomic"
	"time"
)

// callTimeout is the bound SetCallTimeout set, in nanoseconds; 0 until
// then (Options.CallTimeout applies).
type callTimeout struct{ ns atomic.Int64 }

// SetCallTimeout changes the bound on each call to a plugin
// (Options.CallTimeout) while the host runs: calls that begin afterwards
// are bounded by d; a call in progress keeps the bound it began with. d <=
// 0 means DefaultCallTimeout. A policy reload that changes the health
// timeout calls it, so that a plugin's check call still ends (with
// ErrCallTimeout, which its breaker counts) before the monitor gives up on
// the check.
func (h *Host) SetCallTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultCallTimeout
	}
	h.timeout.ns.Store(int64(d))
}

// CallTimeout returns the bound on each call to a plugin in force: the
// last SetCallTimeout's, else Options.CallTimeout (default
// DefaultCallTimeout).
func (h *Host) CallTimeout() time.Duration {
	if ns := h.timeout.ns.Load(); ns > 0 {
		return time.Duration(ns)
	}
	return h.o.CallTimeout
}
