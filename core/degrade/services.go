package degrade

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Service is a background job of the bot (a stats reporter, a cache
// warmer, a scheduled announcement) that lifeline can stop while degraded
// and start again afterwards. Start must return once the service is
// running (run the work in a goroutine); Stop must return once it has
// stopped or ctx is done. Both should be idempotent.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// ErrDuplicateService is returned by Services.Register when the name is
// already registered.
var ErrDuplicateService = errors.New("duplicate service")

// Services is the registry of the bot's background services. Essential
// services run whenever the registry runs; non-essential ones are stopped
// by shutdown_non_essential_services (Shed) and started again when it is
// rolled back (Unshed). The zero value is ready to use and every method is
// safe for concurrent use; lifecycle calls are serialised, and List never
// waits for a service's Start or Stop.
type Services struct {
	opMu    sync.Mutex // serialises calls into services
	mu      sync.Mutex // guards the fields below
	entries []*serviceEntry
	started bool
	shed    bool
}

type serviceEntry struct {
	name      string
	svc       Service
	essential bool
	running   bool
	err       error // last Start or Stop error
}

// NewServices returns an empty registry.
func NewServices() *Services { return &Services{} }

// Register adds a service. If the registry is running, the service is
// started now, unless it is non-essential and services are shed, in which
// case Unshed starts it. The error is ErrDuplicateService (wrapped) or the
// service's Start error; a service that failed to start stays registered.
func (s *Services) Register(ctx context.Context, name string, svc Service, essential bool) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	for _, e := range s.entries {
		if e.name == name {
			s.mu.Unlock()
			return fmt.Errorf("degrade: register service %q: %w", name, ErrDuplicateService)
		}
	}
	e := &serviceEntry{name: name, svc: svc, essential: essential}
	s.entries = append(s.entries, e)
	run := s.started && (essential || !s.shed)
	s.mu.Unlock()
	if !run {
		return nil
	}
	return s.start(ctx, e)
}

// Start starts every registered service that should run (all of them, or
// only the essential ones while shed), in registration order, and marks
// the registry running. It returns the Start errors joined.
func (s *Services) Start(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.started = true
	todo := s.matching(func(e *serviceEntry) bool { return !e.running && (e.essential || !s.shed) })
	s.mu.Unlock()
	var errs []error
	for _, e := range todo {
		errs = append(errs, s.start(ctx, e))
	}
	return errors.Join(errs...)
}

// Stop stops every running service, in reverse registration order, and
// marks the registry stopped. It returns the Stop errors joined.
func (s *Services) Stop(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.started = false
	todo := s.matching(func(e *serviceEntry) bool { return e.running })
	s.mu.Unlock()
	return s.stopAll(ctx, todo)
}

// Shed stops the running non-essential services, in reverse registration
// order, and keeps them stopped until Unshed. It is what
// shutdown_non_essential_services applies; calling it again stops those a
// failed call left running.
func (s *Services) Shed(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.shed = true
	todo := s.matching(func(e *serviceEntry) bool { return e.running && !e.essential })
	s.mu.Unlock()
	return s.stopAll(ctx, todo)
}

// Unshed ends Shed: if the registry is running, the non-essential services
// that are not running are started, in registration order. Calling it
// again starts those a failed call could not.
func (s *Services) Unshed(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.shed = false
	var todo []*serviceEntry
	if s.started {
		todo = s.matching(func(e *serviceEntry) bool { return !e.running && !e.essential })
	}
	s.mu.Unlock()
	var errs []error
	for _, e := range todo {
		errs = append(errs, s.start(ctx, e))
	}
	return errors.Join(errs...)
}

// Running reports whether the named service is running.
func (s *Services) Running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.name == name {
			return e.running
		}
	}
	return false
}

// ServiceState describes one registered service.
type ServiceState struct {
	Name      string `json:"name"`
	Essential bool   `json:"essential"`
	Running   bool   `json:"running"`
	// LastError is the error of the last Start or Stop, if it failed.
	LastError string `json:"last_error,omitempty"`
}

// List returns the registered services in registration order.
func (s *Services) List() []ServiceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceState, len(s.entries))
	for i, e := range s.entries {
		out[i] = ServiceState{Name: e.name, Essential: e.essential, Running: e.running}
		if e.err != nil {
			out[i].LastError = e.err.Error()
		}
	}
	return out
}

// matching returns the entries matching keep, in registration order. s.mu
// is held.
func (s *Services) matching(keep func(*serviceEntry) bool) []*serviceEntry {
	var out []*serviceEntry
	for _, e := range s.entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func (s *Services) start(ctx context.Context, e *serviceEntry) error {
	err := safeCall(func() error { return e.svc.Start(ctx) })
	if err != nil {
		err = fmt.Errorf("degrade: start service %q: %w", e.name, err)
	}
	s.mu.Lock()
	e.running, e.err = err == nil, err
	s.mu.Unlock()
	return err
}

func (s *Services) stopAll(ctx context.Context, todo []*serviceEntry) error {
	var errs []error
	for i := len(todo) - 1; i >= 0; i-- {
		e := todo[i]
		err := safeCall(func() error { return e.svc.Stop(ctx) })
		if err != nil {
			err = fmt.Errorf("degrade: stop service %q: %w", e.name, err)
			errs = append(errs, err)
		}
		s.mu.Lock()
		e.running = err != nil // a service that failed to stop may still run
		e.err = err
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Background returns a Service that runs run in its own goroutine: Start
// launches it with a context that Stop cancels, and Stop waits for run to
// return (or for its own ctx). Start while running and Stop while stopped
// do nothing; a stopped service can start again. The context given to run
// carries the values of Start's context but not its cancellation.
func Background(run func(ctx context.Context)) Service {
	return &background{run: run}
}

type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	run    func(ctx context.Context)
}

func (b *background) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		select {
		case <-b.done: // ended by itself: start again
		default:
			return nil
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	b.cancel, b.done = cancel, done
	go func() {
		defer close(done)
		b.run(runCtx)
	}()
	return nil
}

func (b *background) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		b.mu.Lock()
		if b.done == done {
			b.cancel, b.done = nil, nil
		}
		b.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("degrade: background service still running: %w", ctx.Err())
	}
}
