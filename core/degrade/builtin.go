package degrade

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// ErrNoComponent is returned by a built-in action's Apply when it was built
// without the component it acts on (a nil Features, Transport, ...).
var ErrNoComponent = errors.New("built-in action has no component to act on")

// ReduceLoggingLevel returns reduce_logging_level: Apply raises logger's
// level to level (hclog.Warn when level is hclog.NoLevel) if it is more
// verbose than that, and Rollback restores the level it found, unless
// someone changed the level in between (their choice then stands). The
// level is shared with the loggers derived from logger by Named and With
// (hclog's default), so the whole tree quiets down.
func ReduceLoggingLevel(logger hclog.Logger, level hclog.Level) Action {
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	return &logLevelAction{logger: logger, level: level}
}

type logLevelAction struct {
	logger hclog.Logger
	level  hclog.Level

	mu      sync.Mutex
	applied bool
	saved   hclog.Level
}

func (a *logLevelAction) Name() string { return ActionReduceLoggingLevel }

func (a *logLevelAction) Apply(context.Context, Level) error {
	if a.logger == nil {
		return fmt.Errorf("%s: no logger: %w", a.Name(), ErrNoComponent)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied {
		return nil
	}
	cur := a.logger.GetLevel()
	a.saved = cur
	if cur < a.level {
		a.logger.SetLevel(a.level)
	}
	a.applied = true
	return nil
}

func (a *logLevelAction) Rollback(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.applied {
		return nil
	}
	if a.logger.GetLevel() == a.level && a.saved < a.level {
		a.logger.SetLevel(a.saved)
	}
	a.applied = false
	return nil
}

// DisableAnalytics returns disable_analytics: Apply switches ClassAnalytics
// off in f (lifeline's own optional statistics and every bot feature
// registered as analytics); Rollback switches it back on.
func DisableAnalytics(f *Features) Action {
	return &featuresAction{name: ActionDisableAnalytics, f: f, classes: []Class{ClassAnalytics}}
}

// DisableNonCriticalFeatures returns disable_non_critical_features: Apply
// switches ClassOptional and ClassAnalytics off in f, so
// f.Enabled("music") reports false for a feature registered as optional;
// Rollback switches them back on (analytics stays off while
// disable_analytics is active).
func DisableNonCriticalFeatures(f *Features) Action {
	return &featuresAction{name: ActionDisableNonCriticalFeatures, f: f, classes: []Class{ClassOptional, ClassAnalytics}}
}

type featuresAction struct {
	name    string
	f       *Features
	classes []Class
}

func (a *featuresAction) Name() string { return a.name }

func (a *featuresAction) Apply(context.Context, Level) error {
	if a.f == nil {
		return fmt.Errorf("%s: no Features: %w", a.name, ErrNoComponent)
	}
	a.f.Disable(a.name, a.classes...)
	return nil
}

func (a *featuresAction) Rollback(context.Context) error {
	if a.f != nil {
		a.f.Restore(a.name)
	}
	return nil
}

// DefaultTimeoutFactor is increase_timeouts' factor when none is given.
const DefaultTimeoutFactor = 2

// IncreaseTimeouts returns increase_timeouts: Apply multiplies t's
// timeouts by factor (DefaultTimeoutFactor when factor is not above 1),
// Rollback restores them.
func IncreaseTimeouts(t *Timeouts, factor float64) Action {
	if !(factor > 1) {
		factor = DefaultTimeoutFactor
	}
	return &timeoutsAction{t: t, factor: factor}
}

type timeoutsAction struct {
	t      *Timeouts
	factor float64
}

func (a *timeoutsAction) Name() string { return ActionIncreaseTimeouts }

func (a *timeoutsAction) Apply(context.Context, Level) error {
	if a.t == nil {
		return fmt.Errorf("%s: no Timeouts: %w", a.Name(), ErrNoComponent)
	}
	a.t.Raise(a.Name(), a.factor)
	return nil
}

func (a *timeoutsAction) Rollback(context.Context) error {
	if a.t != nil {
		a.t.Restore(a.Name())
	}
	return nil
}

// DefaultMaxConcurrentRequests is reduce_concurrent_requests' limit when
// none is given.
const DefaultMaxConcurrentRequests = 4

// ReduceConcurrentRequests returns reduce_concurrent_requests: Apply limits
// t to n requests at once (DefaultMaxConcurrentRequests when n <= 0),
// Rollback removes the limit.
func ReduceConcurrentRequests(t *Transport, n int) Action {
	if n <= 0 {
		n = DefaultMaxConcurrentRequests
	}
	return &transportAction{name: ActionReduceConcurrentRequests, t: t,
		set: func(t *Transport, on bool) {
			if on {
				t.SetConcurrencyLimit(n)
			} else {
				t.SetConcurrencyLimit(0)
			}
		}}
}

// EnableAggressiveCaching returns enable_aggressive_caching: Apply turns
// t's GET cache on, Rollback turns it off and empties it.
func EnableAggressiveCaching(t *Transport) Action {
	return &transportAction{name: ActionEnableAggressiveCaching, t: t, set: (*Transport).SetCaching}
}

// EnableReadOnlyMode returns enable_read_only_mode: Apply makes t refuse
// mutating requests not marked Essential (with ErrReadOnly), Rollback lets
// them through again.
func EnableReadOnlyMode(t *Transport) Action {
	return &transportAction{name: ActionEnableReadOnlyMode, t: t, set: (*Transport).SetReadOnly}
}

type transportAction struct {
	name string
	t    *Transport
	set  func(t *Transport, on bool)
}

func (a *transportAction) Name() string { return a.name }

func (a *transportAction) Apply(context.Context, Level) error {
	if a.t == nil {
		return fmt.Errorf("%s: no Transport: %w", a.name, ErrNoComponent)
	}
	a.set(a.t, true)
	return nil
}

func (a *transportAction) Rollback(context.Context) error {
	if a.t != nil {
		a.set(a.t, false)
	}
	return nil
}

// ShutdownNonEssentialServices returns shutdown_non_essential_services:
// Apply stops s's running non-essential services (Services.Shed), Rollback
// starts them again (Services.Unshed). A service that fails to stop or
// start fails the call, which the engine retries.
func ShutdownNonEssentialServices(s *Services) Action {
	return &servicesAction{s: s}
}

type servicesAction struct{ s *Services }

func (a *servicesAction) Name() string { return ActionShutdownNonEssentialServices }

func (a *servicesAction) Apply(ctx context.Context, _ Level) error {
	if a.s == nil {
		return fmt.Errorf("%s: no Services: %w", a.Name(), ErrNoComponent)
	}
	return a.s.Shed(ctx)
}

func (a *servicesAction) Rollback(ctx context.Context) error {
	if a.s == nil {
		return nil
	}
	return a.s.Unshed(ctx)
}

// KitSettings configures a Kit. The zero value is valid.
type KitSettings struct {
	// Logger is the logger reduce_logging_level quiets: give the root of
	// the process's logger tree. Default: a null logger (nothing to
	// quiet).
	Logger hclog.Logger
	// QuietLevel is the level reduce_logging_level raises Logger to.
	// Default: hclog.Warn.
	QuietLevel hclog.Level
	// TimeoutFactor multiplies timeouts under increase_timeouts. Default:
	// DefaultTimeoutFactor (2).
	TimeoutFactor float64
	// MaxConcurrentRequests is the REST concurrency limit under
	// reduce_concurrent_requests. Default: DefaultMaxConcurrentRequests
	// (4).
	MaxConcurrentRequests int
	// Transport configures the Kit's Transport; its Timeouts field is
	// replaced by the Kit's Timeouts.
	Transport TransportSettings
}

// Kit holds the components the eight built-in actions act on, and the
// actions themselves. The bot reaches the components through lifeline's
// root package (features, services, essential marking); the orchestrator
// puts Transport in the Session's HTTP client chain, scales its gateway
// timeouts with Timeouts, and registers Actions with the Engine.
type Kit struct {
	Features  *Features
	Services  *Services
	Timeouts  *Timeouts
	Transport *Transport
	actions   []Action
}

// NewKit builds the components and the eight built-in actions.
func NewKit(s KitSettings) *Kit {
	k := &Kit{Features: NewFeatures(), Services: NewServices(), Timeouts: NewTimeouts()}
	ts := s.Transport
	ts.Timeouts = k.Timeouts
	k.Transport = NewTransport(ts)
	logger := s.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	k.actions = []Action{
		ReduceLoggingLevel(logger, s.QuietLevel),
		DisableAnalytics(k.Features),
		IncreaseTimeouts(k.Timeouts, s.TimeoutFactor),
		DisableNonCriticalFeatures(k.Features),
		ReduceConcurrentRequests(k.Transport, s.MaxConcurrentRequests),
		EnableAggressiveCaching(k.Transport),
		EnableReadOnlyMode(k.Transport),
		ShutdownNonEssentialServices(k.Services),
	}
	return k
}

// Actions returns the eight built-in actions, in BuiltinActionNames order.
func (k *Kit) Actions() []Action {
	return append([]Action(nil), k.actions...)
}
