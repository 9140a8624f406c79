package degrade

import (
	"sort"
	"time"
)

// Record is one stay at a level above None: the engine's history is a
// bounded list of them, oldest first.
type Record struct {
	// Level is the level reached.
	Level Level `json:"level"`
	// Reason says why the engine reached it (climbing or stepping down).
	Reason string `json:"reason"`
	// Manual is true when Activate or Deactivate caused it.
	Manual bool `json:"manual,omitempty"`
	// Actions are the actions in effect when the level was reached, in the
	// order they were applied.
	Actions []string `json:"actions"`
	// Start is when the level was reached.
	Start time.Time `json:"start"`
	// End is when the engine left it; zero while it lasts.
	End time.Time `json:"end,omitzero"`
	// Duration is End-Start, or the time spent so far while it lasts.
	Duration time.Duration `json:"duration"`
}

// ActiveAction is an action in effect.
type ActiveAction struct {
	// Name is the action's name.
	Name string `json:"name"`
	// Level is the level it was applied for.
	Level Level `json:"level"`
	// Since is when it was applied.
	Since time.Time `json:"since"`
	// Manual is true when a manual activation applied it.
	Manual bool `json:"manual,omitempty"`

	seq uint64
}

// PendingAction is an apply or rollback that failed and waits for its
// retry.
type PendingAction struct {
	// Name is the action's name.
	Name string `json:"name"`
	// Op is what failed: OpApply or OpRollback.
	Op Op `json:"op"`
	// Level is the level the action is applied for (or was).
	Level Level `json:"level"`
	// Attempts counts the consecutive failed attempts.
	Attempts int `json:"attempts"`
	// LastError is the error of the last attempt.
	LastError string `json:"last_error"`
	// NextAttempt is the earliest time of the next attempt.
	NextAttempt time.Time `json:"next_attempt"`
}

// Diagnostics is the engine's state for the diagnostics endpoint.
type Diagnostics struct {
	// Level is the current level and Since when it was reached.
	Level Level     `json:"level"`
	Since time.Time `json:"since"`
	// Target is the level the engine is heading for: the highest level
	// entered and not being left.
	Target Level `json:"target"`
	// PolicyLevel and PolicyReason are the level and reason of the last
	// Target Apply received.
	PolicyLevel  Level  `json:"policy_level"`
	PolicyReason string `json:"policy_reason,omitempty"`
	// Manual is true while a manual activation holds; ManualReason is the
	// reason it was given.
	Manual       bool   `json:"manual"`
	ManualReason string `json:"manual_reason,omitempty"`
	// RecoverSince is when the recover condition started holding with the
	// policy below the current level; zero when it does not.
	RecoverSince time.Time `json:"recover_since,omitzero"`
	// Active lists the actions in effect, in the order they were applied.
	Active []ActiveAction `json:"active"`
	// Pending lists failed applies and rollbacks awaiting a retry.
	Pending []PendingAction `json:"pending"`
	// Registered lists the registered action names, sorted.
	Registered []string `json:"registered"`
	// History is the bounded history of levels reached, oldest first.
	History []Record `json:"history"`
}

// Diagnostics returns a copy of the engine's state.
func (e *Engine) Diagnostics() Diagnostics {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	d := Diagnostics{
		Level: e.level, Since: e.since, Target: e.topLevel(),
		PolicyLevel: e.last.Level, PolicyReason: e.last.Reason,
		Manual: e.held, ManualReason: e.heldReason,
		RecoverSince: e.recoverSince,
		Active:       []ActiveAction{},
		Pending:      []PendingAction{},
		Registered:   make([]string, 0, len(e.registry)),
		History:      e.historyLocked(now),
	}
	for name, st := range e.states {
		if st.applied {
			d.Active = append(d.Active, ActiveAction{Name: name, Level: st.level, Since: st.since, Manual: st.manual, seq: st.seq})
		}
		if st.failOp != "" {
			p := PendingAction{Name: name, Op: st.failOp, Level: st.level, Attempts: st.attempts, NextAttempt: st.next}
			if st.err != nil {
				p.LastError = st.err.Error()
			}
			d.Pending = append(d.Pending, p)
		}
	}
	sort.Slice(d.Active, func(i, j int) bool { return d.Active[i].seq < d.Active[j].seq })
	sort.Slice(d.Pending, func(i, j int) bool { return d.Pending[i].Name < d.Pending[j].Name })
	for n := range e.registry {
		d.Registered = append(d.Registered, n)
	}
	sort.Strings(d.Registered)
	return d
}

// History returns the levels reached, oldest first, at most
// Settings.HistorySize of them; the last one lasts still when its End is
// zero.
func (e *Engine) History() []Record {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.historyLocked(now)
}

func (e *Engine) historyLocked(now time.Time) []Record {
	out := make([]Record, len(e.history))
	for i, r := range e.history {
		r.Actions = append([]string(nil), r.Actions...)
		if r.End.IsZero() {
			r.Duration = now.Sub(r.Start)
		}
		out[i] = r
	}
	return out
}

// recordLevel makes level the current one: it closes the running history
// record and opens one for level unless it is None. e.mu is held.
func (e *Engine) recordLevel(level Level, reason string, manual bool, now time.Time) {
	if n := len(e.history); n > 0 && e.history[n-1].End.IsZero() {
		r := &e.history[n-1]
		r.End, r.Duration = now, now.Sub(r.Start)
	}
	e.level, e.since = level, now
	if level == None {
		return
	}
	names := e.activeLocked()
	if len(e.history) == e.histSize {
		copy(e.history, e.history[1:])
		e.history = e.history[:len(e.history)-1]
	}
	e.history = append(e.history, Record{Level: level, Reason: reason, Manual: manual, Actions: names, Start: now})
}

// activeLocked returns the applied actions' names in application order.
// e.mu is held.
func (e *Engine) activeLocked() []string {
	var act []ActiveAction
	for name, st := range e.states {
		if st.applied {
			act = append(act, ActiveAction{Name: name, seq: st.seq})
		}
	}
	sort.Slice(act, func(i, j int) bool { return act[i].seq < act[j].seq })
	names := make([]string, len(act))
	for i, a := range act {
		names[i] = a.Name
	}
	return names
}
