package sdktest

import (
	"context"
	"fmt"
	"sync"

	"github.com/lifeline-bot/lifeline/sdk"
)

// Recovery is one recovery a plugin requested from the Host.
type Recovery struct {
	Mode   sdk.RecoveryMode
	Reason string
}

// LogLine is one line a plugin logged through the Host.
type LogLine struct {
	Level   sdk.LogLevel
	Message string
	// Fields holds the line's key/value pairs, values as text.
	Fields map[string]string
}

// Host is a fake lifeline for plugin tests: it implements sdk.Host, serves a
// Snapshot the test sets, and records the recoveries, feature flags and log
// lines the plugin asks for. Its zero value is ready to use; all methods are
// safe for concurrent use.
type Host struct {
	mu         sync.Mutex
	snap       sdk.Snapshot
	recoveries []Recovery
	features   map[string]bool
	logs       []LogLine
	refuse     error
}

var _ sdk.Host = (*Host)(nil)

// SetSnapshot sets the Snapshot that Host.Snapshot returns.
func (h *Host) SetSnapshot(s sdk.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snap = s
}

// RefuseRecovery makes RequestRecovery fail with err (nil accepts again),
// to test how a strategy handles a host that says no.
func (h *Host) RefuseRecovery(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refuse = err
}

// Recoveries returns the recoveries requested so far, in order.
func (h *Host) Recoveries() []Recovery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Recovery(nil), h.recoveries...)
}

// Features returns the feature flags set so far.
func (h *Host) Features() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]bool, len(h.features))
	for k, v := range h.features {
		out[k] = v
	}
	return out
}

// Logs returns the lines logged so far, in order.
func (h *Host) Logs() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogLine(nil), h.logs...)
}

// Snapshot implements sdk.Host.
func (h *Host) Snapshot(context.Context) (sdk.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap, nil
}

// RequestRecovery implements sdk.Host: it records the request, or fails as
// RefuseRecovery said.
func (h *Host) RequestRecovery(_ context.Context, mode sdk.RecoveryMode, reason string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return h.refuse
	}
	h.recoveries = append(h.recoveries, Recovery{Mode: mode, Reason: reason})
	return nil
}

// SetFeature implements sdk.Host.
func (h *Host) SetFeature(_ context.Context, name string, enabled bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.features == nil {
		h.features = map[string]bool{}
	}
	h.features[name] = enabled
	return nil
}

// Log implements sdk.Host.
func (h *Host) Log(_ context.Context, level sdk.LogLevel, msg string, keyvals ...any) error {
	fields := map[string]string{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		fields[fmt.Sprint(keyvals[i])] = fmt.Sprint(keyvals[i+1])
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, LogLine{Level: level, Message: msg, Fields: fields})
	return nil
}
