package events

import (
	"sync"
	"testing"
	"time"
)

func stateEvent(i int) Event {
	return New(time.Unix(int64(i), 0), StateChange{From: "A", To: "B", Cause: "test"})
}

func TestSlowSubscriberDoesNotBlockPublisherAndDropsAreCounted(t *testing.T) {
	b := NewBus(Options{QueueSize: 4})
	defer b.Close()
	block := make(chan struct{})
	slow := b.SubscribeAll(func(Event) { <-block }) // never returns until the test ends
	defer close(block)

	var mu sync.Mutex
	var fast []int
	fastDone := make(chan struct{})
	const n = 1000
	fastSub := b.Subscribe(StateChanged, func(e Event) {
		mu.Lock()
		fast = append(fast, int(e.Time.Unix()))
		if len(fast) == n {
			close(fastDone)
		}
		mu.Unlock()
	})
	_ = fastSub

	// The publisher must finish 1000 publishes although one subscriber
	// never reads; if Publish blocked, this would hang on the 6th event.
	published := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			b.Publish(stateEvent(i))
			// Give the fast subscriber room so it loses nothing; the
			// slow one gets no such courtesy.
			for len(fastSub.queue) == cap(fastSub.queue) {
				time.Sleep(time.Microsecond)
			}
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked behind a subscriber that never reads")
	}
	select {
	case <-fastDone:
	case <-time.After(10 * time.Second):
		t.Fatal("fast subscriber did not get every event")
	}
	// slow holds QueueSize events in its queue and at most one in its
	// Listener; every other event is dropped and counted.
	if got := slow.Dropped(); got != n-4 && got != n-5 {
		t.Fatalf("slow.Dropped() = %d, want %d or %d", got, n-4, n-5)
	}
	if fastSub.Dropped() != 0 {
		t.Fatalf("fast subscriber dropped %d", fastSub.Dropped())
	}
	if got := b.Stats().Dropped; got != slow.Dropped()+fastSub.Dropped() {
		t.Fatalf("bus dropped %d != sum of subscriptions", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range fast {
		if v != i {
			t.Fatalf("order broken at %d: got %d", i, v)
		}
	}
}

func TestSubscribeFiltersByType(t *testing.T) {
	b := NewBus(Options{})
	var mu sync.Mutex
	var got []Type
	b.Subscribe(HealthChanged, func(e Event) { mu.Lock(); got = append(got, e.Type); mu.Unlock() })
	b.Publish(stateEvent(1))
	b.Publish(New(time.Unix(2, 0), HealthChange{From: "HEALTHY", To: "DEGRADED"}))
	b.Publish(New(time.Unix(3, 0), Error{Source: "conn", Kind: "close"}))
	b.Close()
	if len(got) != 1 || got[0] != HealthChanged {
		t.Fatalf("got %v, want [HEALTH_CHANGED]", got)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	b := NewBus(Options{})
	defer b.Close()
	got := make(chan Event, 10)
	s := b.SubscribeAll(func(e Event) { got <- e })
	b.Publish(stateEvent(1))
	<-got
	s.Unsubscribe()
	s.Unsubscribe() // idempotent
	b.Publish(stateEvent(2))
	if b.Stats().Subscribers != 0 {
		t.Fatalf("subscribers = %d after Unsubscribe", b.Stats().Subscribers)
	}
	select {
	case e := <-got:
		t.Fatalf("received %v after Unsubscribe", e)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestUnsubscribeFromListener(t *testing.T) {
	b := NewBus(Options{})
	defer b.Close()
	done := make(chan struct{})
	var s *Subscription
	var once sync.Once
	s = b.SubscribeAll(func(Event) { s.Unsubscribe(); once.Do(func() { close(done) }) })
	b.Publish(stateEvent(1))
	<-done
}

func TestCloseDrainsQueuedEventsAndIsIdempotent(t *testing.T) {
	b := NewBus(Options{QueueSize: 100})
	gate := make(chan struct{})
	var n int
	s := b.SubscribeAll(func(Event) { <-gate; n++ })
	for i := 0; i < 10; i++ {
		b.Publish(stateEvent(i))
	}
	close(gate)
	b.Close()
	b.Close()
	if n != 10 || s.Delivered() != 10 {
		t.Fatalf("delivered %d (counter %d), want 10", n, s.Delivered())
	}
	b.Publish(stateEvent(11)) // no panic, no delivery
	late := b.SubscribeAll(func(Event) { t.Error("delivered after Close") })
	b.Publish(stateEvent(12))
	late.Unsubscribe()
}

func TestListenerPanicIsRecovered(t *testing.T) {
	b := NewBus(Options{})
	got := make(chan int, 2)
	s := b.SubscribeAll(func(e Event) {
		if e.Time.Unix() == 1 {
			panic("boom")
		}
		got <- int(e.Time.Unix())
	})
	b.Publish(stateEvent(1))
	b.Publish(stateEvent(2))
	if v := <-got; v != 2 {
		t.Fatalf("got %d", v)
	}
	b.Close()
	if s.Panics() != 1 {
		t.Fatalf("Panics() = %d, want 1", s.Panics())
	}
}

func TestNilBusAndDiscard(t *testing.T) {
	var b *Bus
	b.Publish(stateEvent(1))
	OrDiscard(nil).Publish(stateEvent(1))
}

func TestTypeNames(t *testing.T) {
	want := []string{"STATE_CHANGED", "HEALTH_CHANGED", "CIRCUIT_BREAKER_TRIGGERED",
		"DEGRADATION_ACTIVATED", "DEGRADATION_DEACTIVATED", "ERROR_OCCURRED",
		"RECOVERY_ATTEMPTED", "RECOVERY_COMPLETED", "POLICY_RELOADED",
		"POLICY_RELOAD_FAILED", "PLUGIN_STARTED", "PLUGIN_EXITED", "PLUGIN_LOGS_DROPPED"}
	types := Types()
	if len(types) != len(want) {
		t.Fatalf("%d types, want %d", len(types), len(want))
	}
	for i, ty := range types {
		if ty.String() != want[i] {
			t.Errorf("type %d = %s, want %s", i, ty, want[i])
		}
		var back Type
		if err := back.UnmarshalText([]byte(ty.String())); err != nil || back != ty {
			t.Errorf("round trip of %s gave %v, %v", ty, back, err)
		}
	}
	if _, err := ParseType("NOPE"); err == nil {
		t.Error("ParseType accepted an unknown name")
	}
}

func TestDataEventTypes(t *testing.T) {
	cases := []struct {
		d    Data
		want Type
	}{
		{StateChange{}, StateChanged},
		{HealthChange{}, HealthChanged},
		{BreakerTransition{}, CircuitBreakerTriggered},
		{Degradation{Activated: true}, DegradationActivated},
		{Degradation{}, DegradationDeactivated},
		{Error{}, ErrorOccurred},
		{Recovery{}, RecoveryAttempted},
		{Recovery{Completed: true}, RecoveryCompleted},
		{PolicyReload{}, PolicyReloaded},
		{PolicyReload{Failed: true}, PolicyReloadFailed},
		{Plugin{}, PluginStarted},
		{Plugin{Exited: true}, PluginExited},
		{PluginLogs{Name: "p", Dropped: 3}, PluginLogsDropped},
	}
	for _, c := range cases {
		e := ForShard(time.Unix(0, 0), 3, c.d)
		if e.Type != c.want || e.Shard != 3 {
			t.Errorf("%T: type %v shard %d, want %v shard 3", c.d, e.Type, e.Shard, c.want)
		}
		if e.String() == "" || c.d.Summary() == "" {
			t.Errorf("%T: empty summary", c.d)
		}
	}
	if New(time.Unix(0, 0), StateChange{}).Shard != NoShard {
		t.Error("New did not set NoShard")
	}
}
