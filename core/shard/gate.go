package shard

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
)

// Defaults of GateSettings.
const (
	// DefaultGateInterval is the mean time between two reconnects the
	// gate admits once its burst is spent: 20 a second, so a thousand
	// shards dropped at once are all back within about a minute, well
	// inside the few minutes Discord keeps a session resumable.
	DefaultGateInterval = 50 * time.Millisecond
	// DefaultGateBurst is how many reconnects go at once when the gate
	// is idle: a blip on a few shards is not slowed down.
	DefaultGateBurst = 4
	// DefaultGateJitter is the share of Interval each spacing varies by.
	DefaultGateJitter = 0.5
)

// GateSettings configures a Gate. The zero value is valid.
type GateSettings struct {
	// Interval is the mean spacing between two admitted reconnects once
	// the burst is spent (the refill time of one token). Default:
	// DefaultGateInterval (50ms).
	Interval time.Duration
	// Burst is how many reconnects the gate admits at once when it has
	// been idle (the bucket's size). Default: DefaultGateBurst (4).
	Burst int
	// Jitter spreads each spacing uniformly over
	// Interval × [1 − Jitter, 1 + Jitter), so several processes that lost
	// their shards in the same instant do not reconnect in lockstep.
	// Values are clamped to [0, 1]. Default: DefaultGateJitter (0.5); a
	// negative value means no jitter.
	Jitter float64
	// Clock times the spacing. Default: clock.Real.
	Clock clock.Clock
	// Rand returns numbers in [0, 1) for the jitter. It must be safe for
	// concurrent use. Default: math/rand/v2's Float64.
	Rand func() float64
	// OnAdmit, when set, is called (outside the gate's lock) each time an
	// attempt is let through, with how long it waited. Default: nothing.
	OnAdmit func(shard int, resume bool, waited time.Duration)
}

// GateStats counts what a Gate did.
type GateStats struct {
	// Resumes and Identifies count admitted attempts of each kind.
	Resumes    uint64 `json:"resumes"`
	Identifies uint64 `json:"identifies"`
	// Delayed counts admitted attempts that had to wait.
	Delayed uint64 `json:"delayed"`
	// Waiting is how many attempts wait now; MaxWaiting the most that
	// ever waited at once (the size of the largest correlated failure).
	Waiting    int `json:"waiting"`
	MaxWaiting int `json:"max_waiting"`
	// Canceled counts waits that ended because their connection stopped.
	Canceled uint64 `json:"canceled"`
	// LongestWait is the longest time an admitted attempt waited.
	LongestWait time.Duration `json:"longest_wait"`
}

// Gate is the reconnect gate the shards of a Manager share: a token
// bucket that lets Burst reconnects through at once and then one per
// Interval (with jitter), serving waiting RESUMEs before waiting
// IDENTIFYs and each kind in arrival order. It implements
// conn.ReconnectGate. A Gate has no goroutine: waiting happens in the
// callers' goroutines, and a wait ends with its context. Safe for
// concurrent use.
type Gate struct {
	s GateSettings

	mu     sync.Mutex
	tokens int
	next   time.Time // when the next token arrives (tokens < Burst)
	queue  []*gateWaiter
	seq    uint64
	stats  GateStats
}

type gateWaiter struct {
	shard  int
	resume bool
	seq    uint64
	since  time.Time
	// wake is signalled when the waiter may have become the head of the
	// queue; only the head ever needs to look at the clock.
	wake chan struct{}
}

var _ conn.ReconnectGate = (*Gate)(nil)

// NewGate returns a Gate with a full bucket.
func NewGate(s GateSettings) *Gate {
	if s.Interval <= 0 {
		s.Interval = DefaultGateInterval
	}
	if s.Burst <= 0 {
		s.Burst = DefaultGateBurst
	}
	switch {
	case s.Jitter == 0:
		s.Jitter = DefaultGateJitter
	case s.Jitter < 0:
		s.Jitter = 0
	case s.Jitter > 1:
		s.Jitter = 1
	}
	s.Clock = clock.Or(s.Clock)
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	return &Gate{s: s, tokens: s.Burst}
}

// spacing draws the time one token takes to arrive.
func (g *Gate) spacing() time.Duration {
	f := 1 + g.s.Jitter*(2*g.s.Rand()-1)
	return time.Duration(f * float64(g.s.Interval))
}

// refill adds the tokens that arrived up to now. Called with mu held.
func (g *Gate) refill(now time.Time) {
	for g.tokens < g.s.Burst && !now.Before(g.next) {
		g.tokens++
		if g.tokens < g.s.Burst {
			g.next = g.next.Add(g.spacing())
		}
	}
}

// take uses one token. Called with mu held and a token available.
func (g *Gate) take(now time.Time) {
	if g.tokens == g.s.Burst {
		g.next = now.Add(g.spacing()) // the bucket starts refilling now
	}
	g.tokens--
}

// before orders the queue: RESUMEs first, then arrival order.
func (a *gateWaiter) before(b *gateWaiter) bool {
	if a.resume != b.resume {
		return a.resume
	}
	return a.seq < b.seq
}

func (g *Gate) insert(w *gateWaiter) {
	i := len(g.queue)
	for i > 0 && w.before(g.queue[i-1]) {
		i--
	}
	g.queue = append(g.queue, nil)
	copy(g.queue[i+1:], g.queue[i:])
	g.queue[i] = w
	g.wakeHead()
}

func (g *Gate) remove(w *gateWaiter) {
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			g.wakeHead()
			return
		}
	}
}

// wakeHead tells the head of the queue to look again. Called with mu
// held; never blocks (wake holds at most one signal).
func (g *Gate) wakeHead() {
	if len(g.queue) == 0 {
		return
	}
	select {
	case g.queue[0].wake <- struct{}{}:
	default:
	}
}

// Wait implements conn.ReconnectGate: it returns at once while the
// bucket has a token and nobody waits, and otherwise when the attempt's
// turn comes (RESUMEs first) and a token has arrived, or with ctx's error.
func (g *Gate) Wait(ctx context.Context, shard int, resume bool) error {
	clk := g.s.Clock
	g.mu.Lock()
	g.seq++
	w := &gateWaiter{shard: shard, resume: resume, seq: g.seq, since: clk.Now(), wake: make(chan struct{}, 1)}
	g.insert(w)
	if len(g.queue) > g.stats.MaxWaiting {
		g.stats.MaxWaiting = len(g.queue)
	}
	for {
		now := clk.Now()
		g.refill(now)
		head := g.queue[0] == w
		if head && g.tokens > 0 {
			g.take(now)
			g.remove(w)
			waited := now.Sub(w.since)
			if resume {
				g.stats.Resumes++
			} else {
				g.stats.Identifies++
			}
			if waited > 0 {
				g.stats.Delayed++
			}
			g.stats.LongestWait = max(g.stats.LongestWait, waited)
			g.mu.Unlock()
			if g.s.OnAdmit != nil {
				g.s.OnAdmit(shard, resume, waited)
			}
			return nil
		}
		var timer clock.Timer
		var fire <-chan time.Time
		if head {
			timer = clk.NewTimer(g.next.Sub(now))
			fire = timer.C()
		}
		g.mu.Unlock()

		select {
		case <-fire:
		case <-w.wake:
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			g.mu.Lock()
			g.remove(w)
			g.stats.Canceled++
			g.mu.Unlock()
			return ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
		g.mu.Lock()
	}
}

// Stats returns the gate's counters.
func (g *Gate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Waiting = len(g.queue)
	return st
}
