package degrade

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Class says how much a feature matters when the bot is degraded.
type Class uint8

// The feature classes.
const (
	// Optional features (music, games, fun commands) are turned off by
	// disable_non_critical_features. It is the zero Class, and the class
	// of a name that was never registered.
	ClassOptional Class = iota
	// Critical features (moderation, the bot's core commands) are never
	// turned off by degradation.
	ClassCritical
	// Analytics features (statistics, usage tracking, lifeline's own
	// optional stats) are turned off by disable_analytics, and by
	// disable_non_critical_features too, since they are not critical.
	ClassAnalytics
)

// String returns "optional", "critical" or "analytics".
func (c Class) String() string {
	switch c {
	case ClassOptional:
		return "optional"
	case ClassCritical:
		return "critical"
	case ClassAnalytics:
		return "analytics"
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// Features is the registry of the bot's features: the bot registers each
// with its Class and asks Enabled before doing the work; degradation actions
// switch whole classes off and back on. The zero value is ready to use and
// every method is safe for concurrent use; Enabled takes a read lock and
// does not allocate.
type Features struct {
	mu       sync.RWMutex
	classes  map[string]Class
	disabled map[string][]Class // owner -> classes it switched off
	off      [3]int             // per class, how many owners switched it off
	flagged  map[string]bool    // features switched off by name (SetFlag)
}

// NewFeatures returns an empty registry.
func NewFeatures() *Features { return &Features{} }

// Register declares a feature and its class; registering a name again
// changes its class.
func (f *Features) Register(name string, c Class) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.classes == nil {
		f.classes = map[string]Class{}
	}
	f.classes[name] = c
}

// Enabled reports whether the feature may run now: false while an action
// has switched its class off. A name never registered counts as
// ClassOptional.
func (f *Features) Enabled(name string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c := f.classes[name] // ClassOptional when absent
	return !f.isOff(c) && !f.flagged[name]
}

// SetFlag switches one feature off by name (on false), whatever its class,
// or lifts that switch (on true); degradation may still keep its class
// off. It is how a plugin sets or clears a feature flag through the host.
func (f *Features) SetFlag(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		delete(f.flagged, name)
		return
	}
	if f.flagged == nil {
		f.flagged = map[string]bool{}
	}
	f.flagged[name] = true
}

// ClassEnabled reports whether features of class c may run now. lifeline's
// own optional statistics ask ClassEnabled(ClassAnalytics).
func (f *Features) ClassEnabled(c Class) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.isOff(c)
}

func (f *Features) isOff(c Class) bool {
	return int(c) < len(f.off) && f.off[c] > 0
}

// Disable switches the classes off on behalf of owner (an action's name)
// until Restore(owner). ClassCritical is never switched off; a repeated call
// by the same owner replaces its earlier one.
func (f *Features) Disable(owner string, classes ...Class) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restoreLocked(owner)
	var cs []Class
	for _, c := range classes {
		if c == ClassCritical || int(c) >= len(f.off) || slices.Contains(cs, c) {
			continue
		}
		cs = append(cs, c)
		f.off[c]++
	}
	if f.disabled == nil {
		f.disabled = map[string][]Class{}
	}
	f.disabled[owner] = cs
}

// Restore undoes owner's Disable. A class stays off while another owner
// keeps it off. Restoring an owner that disabled nothing does nothing.
func (f *Features) Restore(owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restoreLocked(owner)
}

func (f *Features) restoreLocked(owner string) {
	for _, c := range f.disabled[owner] {
		f.off[c]--
	}
	delete(f.disabled, owner)
}

// FeatureState describes one registered feature.
type FeatureState struct {
	Name    string `json:"name"`
	Class   Class  `json:"class"`
	Enabled bool   `json:"enabled"`
}

// List returns the registered features, sorted by name.
func (f *Features) List() []FeatureState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]FeatureState, 0, len(f.classes))
	for n, c := range f.classes {
		out = append(out, FeatureState{Name: n, Class: c, Enabled: !f.isOff(c) && !f.flagged[n]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MarshalText implements encoding.TextMarshaler.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
