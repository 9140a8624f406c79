package telemetry

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
)

// EventRecord is one event as /debug/lifeline, the event stream and the
// dashboard show it. Data is the event's payload as JSON (an events.StateChange,
// events.Error, ... by Type).
type EventRecord struct {
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Shard   int             `json:"shard"`
	Summary string          `json:"summary"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func record(e events.Event) EventRecord {
	r := EventRecord{Time: e.Time, Type: e.Type.String(), Shard: e.Shard}
	if e.Data != nil {
		r.Summary = e.Data.Summary()
		if b, err := json.Marshal(e.Data); err == nil {
			r.Data = b
		}
	}
	return r
}

// Sample is one point of the dashboard's plots: the state, health,
// latency and degradation level at one moment.
type Sample struct {
	Time       time.Time `json:"time"`
	State      string    `json:"state"`
	Verdict    Verdict   `json:"verdict"`
	Health     string    `json:"health"`
	Score      float64   `json:"score"`
	Breaker    string    `json:"breaker"`
	Level      int       `json:"level"`
	LevelName  string    `json:"level_name"`
	Actions    []string  `json:"actions,omitempty"`
	Heartbeat  float64   `json:"heartbeat_seconds"`
	RESTP95    float64   `json:"rest_p95_seconds"`
	ErrorRatio float64   `json:"error_ratio"`
}

func (t *Telemetry) sampleOf(s Status) Sample {
	return Sample{
		Time:       s.Time,
		State:      s.State,
		Verdict:    Assess(s).Status,
		Health:     s.Health.Status.String(),
		Score:      round2(s.Health.Score),
		Breaker:    s.Breaker.State.String(),
		Level:      LevelNumber(s.Degradation.Level),
		LevelName:  levelOrNone(s.Degradation.Level),
		Actions:    t.ActiveActions(),
		Heartbeat:  s.Snapshot.Latency.Heartbeat.Seconds(),
		RESTP95:    s.Snapshot.Latency.RESTP95.Seconds(),
		ErrorRatio: s.Snapshot.Errors.Rate,
	}
}

// ring keeps the last len(buf) values.
type ring[T any] struct {
	buf  []T
	next int
	n    int
}

func newRing[T any](size int) ring[T] { return ring[T]{buf: make([]T, size)} }

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// last returns up to k values, oldest first (all when k <= 0).
func (r *ring[T]) last(k int) []T {
	if k <= 0 || k > r.n {
		k = r.n
	}
	out := make([]T, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)])
	}
	return out
}

// streamBuffer is how many messages a live stream may fall behind before
// it loses some.
const streamBuffer = 256

// message is one server-sent event, its JSON marshalled once for every
// stream.
type message struct {
	kind string // "event" or "sample"
	data []byte
}

// stream is one live subscriber (an /events request).
type stream struct {
	ch   chan message
	done chan struct{} // closed when the feeds close
	lost uint64
}

// feeds keeps the recent events and samples and fans them out to streams.
type feeds struct {
	mu      sync.Mutex
	events  ring[EventRecord]
	samples ring[Sample]
	streams map[*stream]struct{}
	closed  bool
	done    chan struct{}
}

func newFeeds(eventHistory, sampleHistory int) *feeds {
	return &feeds{events: newRing[EventRecord](eventHistory), samples: newRing[Sample](sampleHistory),
		streams: map[*stream]struct{}{}, done: make(chan struct{})}
}

func (f *feeds) addEvent(r EventRecord) {
	b, err := json.Marshal(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events.add(r)
	if err == nil {
		f.broadcastLocked(message{kind: "event", data: b})
	}
}

func (f *feeds) addSample(s Sample) {
	b, err := json.Marshal(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples.add(s)
	if err == nil {
		f.broadcastLocked(message{kind: "sample", data: b})
	}
}

// broadcastLocked hands m to every stream without waiting: a stream whose
// buffer is full loses it.
func (f *feeds) broadcastLocked(m message) {
	for s := range f.streams {
		select {
		case s.ch <- m:
		default:
			s.lost++
		}
	}
}

// recent returns up to k recent events and samples, oldest first.
func (f *feeds) recent(events, samples int) ([]EventRecord, []Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ss []Sample
	if samples != 0 {
		ss = f.samples.last(samples)
	}
	return f.events.last(events), ss
}

// subscribe adds a stream; nil once the feeds are closed.
func (f *feeds) subscribe() *stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	s := &stream{ch: make(chan message, streamBuffer), done: f.done}
	f.streams[s] = struct{}{}
	return s
}

func (f *feeds) unsubscribe(s *stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.streams, s)
}

func (f *feeds) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}
