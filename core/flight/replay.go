package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// ErrNoPolicy is returned by Replay when the policy is nil.
var ErrNoPolicy = errors.New("flight: replay needs a policy")

// ErrTimeBackwards is returned by Replay when a line's time is before the
// previous line's.
var ErrTimeBackwards = errors.New("flight: recording goes back in time")

// Timeline is what a policy would have done over a recording.
type Timeline struct {
	// Policy is the policy's file name.
	Policy string `json:"policy"`
	// Start and End are the times of the first and last lines.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Ticks has one entry per line, in order.
	Ticks []Tick `json:"ticks"`
	// Changes are the level changes, in order.
	Changes []Change `json:"changes"`
	// Recoveries are the strategies the policy chooses for each recorded
	// ERROR_OCCURRED event.
	Recoveries []RecoveryChoice `json:"recoveries,omitempty"`
	// Summary sums the timeline up.
	Summary Summary `json:"summary"`
}

// Tick is the replay of one line.
type Tick struct {
	Time time.Time `json:"time"`
	// Target is the level the policy's conditions called for.
	Target policy.Level `json:"target"`
	// Level is the engine's level after the tick.
	Level policy.Level `json:"level"`
	// Recover reports whether the recover condition held.
	Recover bool `json:"recover"`
	// Held is true when Target was below the level before the tick and
	// the engine stayed (hysteresis: a flap avoided).
	Held bool `json:"held,omitempty"`
	// Reason is the Decision's reason.
	Reason string `json:"reason,omitempty"`
	// Line is the recorded line, for assertion messages.
	Line *Line `json:"-"`
}

// Change is one level change.
type Change struct {
	Time       time.Time    `json:"time"`
	From       policy.Level `json:"from"`
	To         policy.Level `json:"to"`
	Applied    []string     `json:"applied,omitempty"`
	RolledBack []string     `json:"rolled_back,omitempty"`
	Reason     string       `json:"reason,omitempty"`
}

// RecoveryChoice is the recovery plan for one recorded error.
type RecoveryChoice struct {
	Time       time.Time `json:"time"`
	Error      string    `json:"error"`
	Strategies []string  `json:"strategies"`
}

// LevelTime is the time spent at one level.
type LevelTime struct {
	Level    policy.Level  `json:"level"`
	Duration time.Duration `json:"duration"`
}

// Summary sums a Timeline up. A tick's level lasts until the next line, so
// the last line adds no time.
type Summary struct {
	Duration     time.Duration `json:"duration"`
	TimeAt       []LevelTime   `json:"time_at"` // every level, None first
	Degraded     time.Duration `json:"degraded"`
	MaxLevel     policy.Level  `json:"max_level"`
	Transitions  int           `json:"transitions"`
	FlapsAvoided int           `json:"flaps_avoided"`
}

// Replay plays rec's lines through p with a fresh degrade.Engine whose
// clock is set to each line's time: see the package doc.
func Replay(rec *Recording, p *policy.Policy) (Timeline, error) {
	if p == nil {
		return Timeline{}, ErrNoPolicy
	}
	if rec == nil || len(rec.Lines) == 0 {
		return Timeline{}, fmt.Errorf("flight: replay: %w", ErrEmpty)
	}
	clk := clock.NewFake(rec.Lines[0].Time)
	var acts []degrade.Action
	seen := map[string]bool{}
	for _, lv := range p.Degradation.Levels {
		for _, a := range lv.Actions {
			if !seen[a] {
				seen[a] = true
				acts = append(acts, degrade.NewAction(a, nil, nil))
			}
		}
	}
	eng, err := degrade.New(degrade.Settings{Clock: clk, Policy: func() *policy.Policy { return p }, Actions: acts})
	if err != nil {
		return Timeline{}, fmt.Errorf("flight: replay engine: %w", err)
	}
	ctx := context.Background()
	tl := Timeline{Policy: p.Filename, Start: rec.Lines[0].Time, End: rec.Lines[len(rec.Lines)-1].Time}
	at := make([]time.Duration, policy.Critical+1)
	for i := range rec.Lines {
		l := &rec.Lines[i]
		if l.Time.Before(clk.Now()) {
			return Timeline{}, fmt.Errorf("flight: replay line %d (%s): %w", i+1, l.Time.Format(time.RFC3339Nano), ErrTimeBackwards)
		}
		clk.Set(l.Time)
		s := l.Snapshot
		s.Degradation = eng.View()
		d := p.Evaluate(&s)
		res := eng.ApplyDecision(ctx, p, d)
		t := Tick{Time: l.Time, Target: d.Level, Level: res.Level, Recover: d.Recover, Reason: d.Reason, Line: l}
		if d.Level < res.From && res.Level == res.From {
			t.Held = true
			tl.Summary.FlapsAvoided++
		}
		if res.Level != res.From {
			tl.Changes = append(tl.Changes, Change{Time: l.Time, From: res.From, To: res.Level,
				Applied: res.Applied, RolledBack: res.RolledBack, Reason: d.Reason})
		}
		if res.Level > tl.Summary.MaxLevel {
			tl.Summary.MaxLevel = res.Level
		}
		if i+1 < len(rec.Lines) {
			at[res.Level] += rec.Lines[i+1].Time.Sub(l.Time)
		}
		tl.Ticks = append(tl.Ticks, t)
		tl.Recoveries = append(tl.Recoveries, recoveries(p, l)...)
	}
	tl.Summary.Duration = tl.End.Sub(tl.Start)
	tl.Summary.Transitions = len(tl.Changes)
	for lv := policy.None; lv <= policy.Critical; lv++ {
		tl.Summary.TimeAt = append(tl.Summary.TimeAt, LevelTime{Level: lv, Duration: at[lv]})
		if lv > policy.None {
			tl.Summary.Degraded += at[lv]
		}
	}
	return tl, nil
}

// recoveries returns the recovery plans of l's ERROR_OCCURRED events.
func recoveries(p *policy.Policy, l *Line) []RecoveryChoice {
	var out []RecoveryChoice
	for _, e := range l.Events {
		if e.Type != events.ErrorOccurred.String() || len(e.Data) == 0 {
			continue
		}
		var ed events.Error
		if json.Unmarshal(e.Data, &ed) != nil {
			continue
		}
		snap := l.Snapshot
		rules, _ := p.ChooseRecovery(policy.ErrorFromEvent(ed), &snap)
		c := RecoveryChoice{Time: e.Time, Error: ed.Summary()}
		for _, r := range rules {
			c.Strategies = append(c.Strategies, r.Use)
		}
		out = append(out, c)
	}
	return out
}
