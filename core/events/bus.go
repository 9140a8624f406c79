package events

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Publisher is what a core component needs to report events. *Bus
// implements it; so does Discard.
type Publisher interface {
	Publish(Event)
}

// Discard is a Publisher that drops every event, for components built
// without a bus.
var Discard Publisher = discard{}

type discard struct{}

func (discard) Publish(Event) {}

// OrDiscard returns p, or Discard when p is nil.
func OrDiscard(p Publisher) Publisher {
	if p == nil {
		return Discard
	}
	return p
}

// Listener receives events in its subscription's own goroutine, one at a
// time, in publish order. A Listener that panics does not kill the
// process: the panic is recovered and counted (Subscription.Panics).
type Listener func(Event)

// DefaultQueueSize is the per-subscriber queue length when Options leaves
// it zero.
const DefaultQueueSize = 256

// Options configures a Bus. The zero value is valid.
type Options struct {
	// QueueSize bounds each subscriber's queue. Default: DefaultQueueSize.
	QueueSize int
}

// Bus fans events out to subscribers without ever blocking the publisher.
// The zero value is not usable; call NewBus.
type Bus struct {
	queueSize int

	mu     sync.Mutex // serialises changes to subs
	subs   atomic.Pointer[[]*Subscription]
	closed atomic.Bool
	wg     sync.WaitGroup
	nextID atomic.Uint64

	published atomic.Uint64
	dropped   atomic.Uint64 // summed over all subscriptions, including removed ones
}

// NewBus returns a running Bus.
func NewBus(opts Options) *Bus {
	n := opts.QueueSize
	if n <= 0 {
		n = DefaultQueueSize
	}
	b := &Bus{queueSize: n}
	empty := []*Subscription{}
	b.subs.Store(&empty)
	return b
}

// Subscription is one listener's registration. Remove it with Unsubscribe.
type Subscription struct {
	id       uint64
	bus      *Bus
	typ      Type
	listener Listener
	queue    chan Event
	stop     chan struct{} // closed by Unsubscribe: exit now
	drain    chan struct{} // closed by Bus.Close: deliver what is queued, then exit
	once     sync.Once

	delivered atomic.Uint64
	dropped   atomic.Uint64
	panics    atomic.Uint64
}

// Subscribe registers l for events of type t, or for every type when t is
// All. It panics if l is nil. After Close it returns a Subscription that
// receives nothing.
func (b *Bus) Subscribe(t Type, l Listener) *Subscription {
	if l == nil {
		panic("events: nil Listener")
	}
	if t >= numTypes {
		panic(fmt.Sprintf("events: Subscribe to unknown %v", t))
	}
	s := &Subscription{
		id:       b.nextID.Add(1),
		bus:      b,
		typ:      t,
		listener: l,
		queue:    make(chan Event, b.queueSize),
		stop:     make(chan struct{}),
		drain:    make(chan struct{}),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		s.once.Do(func() { close(s.stop) })
		return s
	}
	old := *b.subs.Load()
	next := make([]*Subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	b.subs.Store(&next)
	b.wg.Add(1)
	go s.run()
	return s
}

// SubscribeAll registers l for every event type.
func (b *Bus) SubscribeAll(l Listener) *Subscription { return b.Subscribe(All, l) }

// Publish offers e to every matching subscriber and returns at once. A
// subscriber whose queue is full loses e, and the loss is counted. Publish
// on a nil *Bus does nothing.
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	b.published.Add(1)
	for _, s := range *b.subs.Load() {
		if s.typ != All && s.typ != e.Type {
			continue
		}
		select {
		case s.queue <- e:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
}

// Close delivers what is already queued, stops every subscriber's
// goroutine and waits for them. Publish after Close does nothing. Close
// must not be called from a Listener.
func (b *Bus) Close() {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		b.wg.Wait()
		return
	}
	subs := *b.subs.Load()
	empty := []*Subscription{}
	b.subs.Store(&empty)
	b.mu.Unlock()
	for _, s := range subs {
		close(s.drain)
	}
	b.wg.Wait()
}

// Stats is a point-in-time view of a Bus.
type Stats struct {
	Published   uint64 `json:"published"`
	Dropped     uint64 `json:"dropped"`
	Subscribers int    `json:"subscribers"`
}

// Stats returns counters over the bus's whole life.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:   b.published.Load(),
		Dropped:     b.dropped.Load(),
		Subscribers: len(*b.subs.Load()),
	}
}

// Unsubscribe removes the subscription; events still queued for it are
// discarded. It is safe to call more than once and from the Listener itself.
func (s *Subscription) Unsubscribe() {
	b := s.bus
	b.mu.Lock()
	old := *b.subs.Load()
	next := make([]*Subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	b.subs.Store(&next)
	b.mu.Unlock()
	s.once.Do(func() { close(s.stop) })
}

// Delivered counts events handed to the Listener.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Dropped counts events this subscriber lost because its queue was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Panics counts Listener panics that were recovered.
func (s *Subscription) Panics() uint64 { return s.panics.Load() }

func (s *Subscription) run() {
	defer s.bus.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case e := <-s.queue:
			s.deliver(e)
		case <-s.drain:
			for {
				select {
				case e := <-s.queue:
					s.deliver(e)
				default:
					return
				}
			}
		}
	}
}

func (s *Subscription) deliver(e Event) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
		}
	}()
	s.listener(e)
	s.delivered.Add(1)
}
