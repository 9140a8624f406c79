package conn

import (
	"sync"
	"sync/atomic"
)

// AsyncObserver hands observations to another Observer on its own
// goroutine, through a bounded queue, so a slow observer never holds up
// the connection: when the queue is full, Observe drops the observation
// and counts it. Observations are delivered in the order Observe was
// called. Call Close to stop the goroutine.
type AsyncObserver struct {
	next    Observer
	mu      sync.RWMutex
	closed  bool
	ch      chan Observation
	done    chan struct{}
	dropped atomic.Uint64
}

// NewAsyncObserver starts an AsyncObserver delivering to next with a
// queue of size observations (at least 1; 0 means 1024).
func NewAsyncObserver(next Observer, size int) *AsyncObserver {
	if size <= 0 {
		size = 1024
	}
	a := &AsyncObserver{next: next, ch: make(chan Observation, size), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *AsyncObserver) run() {
	defer close(a.done)
	for o := range a.ch {
		a.next.Observe(o)
	}
}

// Observe queues o, or drops it when the queue is full or the observer
// is closed. It never blocks.
func (a *AsyncObserver) Observe(o Observation) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.dropped.Add(1)
		return
	}
	select {
	case a.ch <- o:
	default:
		a.dropped.Add(1)
	}
}

// Dropped returns how many observations were dropped.
func (a *AsyncObserver) Dropped() uint64 { return a.dropped.Load() }

// Close stops accepting observations, delivers those already queued, and
// returns when the goroutine has ended. Calling it again does nothing.
func (a *AsyncObserver) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
	a.mu.Unlock()
	<-a.done
}

// MultiObserver sends each observation to every observer in order; nil
// entries are skipped.
type MultiObserver []Observer

// Observe calls Observe on each observer.
func (m MultiObserver) Observe(o Observation) {
	for _, x := range m {
		if x != nil {
			x.Observe(o)
		}
	}
}
