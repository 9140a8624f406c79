package shard_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// discordgo's Session.Close sleeps a second; the relay's pipe
		// goroutines end with it. Idle HTTP keep-alive connections of the
		// fake's REST client end with the fake.
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// fakeOptions scales Discord's timings by 50 (a 100 ms identify window,
// an 825 ms heartbeat) with sessions that stay resumable for 30 s and a
// generous heartbeat timeout for a loaded CI machine.
func fakeOptions(shards, maxConcurrency int) discordtest.Options {
	return discordtest.Options{
		Scale:             50,
		Guilds:            4 * shards,
		RecommendedShards: shards,
		MaxConcurrency:    maxConcurrency,
		SessionExpiry:     30 * time.Second,
		HeartbeatTimeout:  5 * time.Second,
	}
}

func startFake(t testing.TB, o discordtest.Options) *discordtest.Server {
	t.Helper()
	srv, err := discordtest.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// config points a manager at the fake. The identify margin is half a
// window: the fake measures arrivals on a machine shared with other
// tests, so the spacing lifeline keeps must absorb scheduling delays.
func config(srv *discordtest.Server) shard.Config {
	return shard.Config{
		Token:          srv.Token(),
		RESTTransport:  srv.Transport(),
		IdentifyWindow: srv.IdentifyWindow(),
		IdentifyMargin: srv.IdentifyWindow() / 2,
		Conn: conn.Config{
			GatewayDialer:       srv.Dialer(),
			HandshakeTimeout:    5 * time.Second,
			ReconnectDelay:      20 * time.Millisecond,
			MaxReconnectDelay:   300 * time.Millisecond,
			InvalidSessionDelay: [2]time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
			CallTimeout:         5 * time.Second,
		},
	}
}

func start(t testing.TB, m *shard.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func stop(t testing.TB, m *shard.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func assertNoViolations(t testing.TB, srv *discordtest.Server) {
	t.Helper()
	if v := srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
}

func TestStartBringsShardsUpInBucketOrder(t *testing.T) {
	const shards, mc = 8, 2
	srv := startFake(t, fakeOptions(shards, mc))
	cfg := config(srv)
	var progress []shard.Progress
	cfg.OnProgress = func(p shard.Progress) { progress = append(progress, p) }
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)

	if got := m.Count(); got != shards {
		t.Fatalf("Count = %d, want %d (auto from /gateway/bot)", got, shards)
	}
	for _, s := range m.Shards() {
		if st := s.State(); st != conn.Ready {
			t.Fatalf("shard %d is %v after Start", s.ID(), st)
		}
	}
	if len(progress) != shards || progress[shards-1].Ready != shards || progress[shards-1].String() != "8 of 8 shards READY" {
		t.Fatalf("progress = %v", progress)
	}
	ids := srv.Ledger().Identifies()
	if len(ids) != shards {
		t.Fatalf("%d IDENTIFYs, want %d: %+v\nviolations %+v", len(ids), shards, ids, srv.Ledger().Violations())
	}
	// In order within each bucket, every shard once, all accepted.
	last := map[int]int{}
	seen := map[int]bool{}
	for _, id := range ids {
		if id.Outcome != discordtest.IdentifyAccepted {
			t.Fatalf("IDENTIFY %+v not accepted", id)
		}
		if id.Bucket != id.Shard[0]%mc || id.Shard[1] != shards {
			t.Fatalf("IDENTIFY %+v: bucket or count wrong", id)
		}
		if p, ok := last[id.Bucket]; ok && id.Shard[0] < p {
			t.Fatalf("bucket %d identified shard %d after shard %d: %+v", id.Bucket, id.Shard[0], p, ids)
		}
		last[id.Bucket] = id.Shard[0]
		seen[id.Shard[0]] = true
	}
	if len(seen) != shards {
		t.Fatalf("shards identified: %v", seen)
	}
	for b, n := range srv.Ledger().MaxIdentifiesPerWindow(srv.IdentifyWindow()) {
		if n > 1 {
			t.Fatalf("bucket %d: %d IDENTIFYs within one window", b, n)
		}
	}
	assertNoViolations(t, srv)
}

// A budget smaller than the range is refused before anything connects,
// with the reset time in the message.
func TestStartRefusesWhenBudgetTooSmall(t *testing.T) {
	o := fakeOptions(8, 2)
	o.SessionStartTotal = 5
	srv := startFake(t, o)
	m, err := shard.New(config(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, m)
	err = m.Start(context.Background())
	if !errors.Is(err, conn.ErrSessionStartLimit) {
		t.Fatalf("Start = %v, want an error wrapping conn.ErrSessionStartLimit", err)
	}
	var sl *conn.SessionStartLimitError
	if !errors.As(err, &sl) || sl.ResetAt.IsZero() || sl.Total != 5 {
		t.Fatalf("Start = %v, want a *conn.SessionStartLimitError with the reset time and total 5", err)
	}
	reset := sl.ResetAt.UTC().Format(time.RFC3339)
	for _, want := range []string{"needs 8 session starts", "only 5 are left", reset} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), srv.Token()) {
		t.Fatal("the error holds the token")
	}
	if n := len(srv.Ledger().Identifies()); n != 0 {
		t.Fatalf("%d IDENTIFYs sent, want none", n)
	}
	if n := len(srv.Ledger().Connections()); n != 0 {
		t.Fatalf("%d gateway connections opened, want none", n)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("a second Start succeeded")
	}
}

// A range runs only its shards, with the bot's full count in IDENTIFY.
func TestRangeRunsOnlyItsShards(t *testing.T) {
	srv := startFake(t, fakeOptions(8, 2))
	cfg := config(srv)
	cfg.ShardCount = 8
	cfg.Range = &shard.Range{First: 2, Last: 5}
	var tuned []int
	cfg.TuneShard = func(id int, c *conn.Config) {
		tuned = append(tuned, id)
		c.Intents = tunedIntents(id)
	}
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)
	if got := len(m.Shards()); got != 4 {
		t.Fatalf("%d shards, want 4", got)
	}
	if fmt.Sprint(tuned) != "[2 3 4 5]" {
		t.Fatalf("TuneShard called for %v", tuned)
	}
	for _, s := range m.Shards() {
		if want := tunedIntents(s.ID()); s.Session().Identify.Intents != want {
			t.Fatalf("shard %d intents %v, want TuneShard's %v", s.ID(), s.Session().Identify.Intents, want)
		}
	}
	if m.Shard(1) != nil || m.Shard(6) != nil || m.Shard(2) == nil || m.Shard(5).ID() != 5 {
		t.Fatal("Shard(id) does not follow the range")
	}
	var got []int
	for _, id := range srv.Ledger().Identifies() {
		if id.Shard[1] != 8 {
			t.Fatalf("IDENTIFY with count %d, want 8", id.Shard[1])
		}
		got = append(got, id.Shard[0])
	}
	sort.Ints(got)
	if fmt.Sprint(got) != "[2 3 4 5]" {
		t.Fatalf("identified shards %v, want [2 3 4 5]", got)
	}
	assertNoViolations(t, srv)
}

// tunedIntents differ between even and odd shards.
func tunedIntents(id int) discordgo.Intent {
	if id%2 == 0 {
		return discordgo.IntentGuilds | discordgo.IntentGuildMessages
	}
	return discordgo.IntentGuilds | discordgo.IntentDirectMessages
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  shard.Config
		want error
	}{
		{"no token", shard.Config{}, shard.ErrNoToken},
		{"range past count", shard.Config{Token: "t", ShardCount: 4, Range: &shard.Range{First: 2, Last: 4}}, shard.ErrInvalidRange},
		{"range backwards", shard.Config{Token: "t", Range: &shard.Range{First: 3, Last: 2}}, shard.ErrInvalidRange},
		{"negative first", shard.Config{Token: "t", ShardCount: 4, Range: &shard.Range{First: -1, Last: 2}}, shard.ErrInvalidRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := shard.New(tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
}

// botView records the messages each shard's Session delivers.
type botView struct {
	mu   sync.Mutex
	got  map[string]int // content -> deliveries
	bad  []string       // messages that arrived on the wrong shard
	seen int
}

func watchMessages(m *shard.Manager, count int) *botView {
	v := &botView{got: map[string]int{}}
	m.AddHandler(func(s *discordgo.Session, msg *discordgo.MessageCreate) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.got[msg.Content]++
		v.seen++
		if want := discordtest.ShardForGuild(msg.GuildID, count); want != s.ShardID {
			v.bad = append(v.bad, fmt.Sprintf("%q of guild %s on shard %d, want %d", msg.Content, msg.GuildID, s.ShardID, want))
		}
	})
	return v
}

// emit posts one message in every guild's channel.
func emit(t *testing.T, srv *discordtest.Server, prefix string) []string {
	t.Helper()
	var out []string
	for i, g := range srv.Guilds() {
		c := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := srv.EmitMessage(g.ChannelID, c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// wait checks that every message arrived exactly once, on its guild's
// shard.
func (v *botView) wait(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		n := v.seen
		v.mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.bad) > 0 {
		t.Fatalf("messages on the wrong shard: %v", v.bad)
	}
	for _, w := range want {
		if v.got[w] != 1 {
			t.Fatalf("message %q delivered %d times", w, v.got[w])
		}
	}
	if v.seen != len(want) {
		t.Fatalf("%d deliveries, want %d", v.seen, len(want))
	}
}

// waitAllReady waits until every shard is READY again after a fault.
func waitAllReady(t *testing.T, m *shard.Manager, resumes uint64) shard.View {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := m.View()
		if v.Aggregate.Ready == v.Aggregate.Total && v.Aggregate.Resumes >= resumes {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("shards not all READY again: %+v", v.Aggregate)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A mass disconnect of every shard: each one RESUMEs (no new IDENTIFY),
// the reconnects are spread by the gate, nothing is lost, every message
// arrives once on its guild's shard, and events carry the shard.
func TestMassDisconnectResumesEveryShardSpreadOut(t *testing.T) {
	const shards, mc = 16, 4
	srv := startFake(t, fakeOptions(shards, mc))
	cfg := config(srv)
	// A fixed Rand makes the gate's spacing exactly Interval; the burst
	// lets 2 go at once, the other 14 wait their turn.
	cfg.Gate = shard.GateSettings{Interval: 10 * time.Millisecond, Burst: 2, Rand: func() float64 { return 0.5 }}
	evs := &eventLog{}
	cfg.Events = evs
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	view := watchMessages(m, shards)
	start(t, m)
	defer stop(t, m)

	before := emit(t, srv, "before")
	view.wait(t, before)
	opened := len(srv.Ledger().Connections())

	cut := time.Now()
	if err := srv.MassDisconnect(0); err != nil {
		t.Fatal(err)
	}
	during := emit(t, srv, "during")
	v := waitAllReady(t, m, shards)
	after := emit(t, srv, "after")
	view.wait(t, append(append(before, during...), after...))

	if n := len(srv.Ledger().Identifies()); n != shards {
		t.Fatalf("%d IDENTIFYs, want %d: every shard must RESUME", n, shards)
	}
	if v.Aggregate.Resumes != shards || v.Aggregate.Identifies != shards {
		t.Fatalf("aggregate resumes %d identifies %d, want %d and %d", v.Aggregate.Resumes, v.Aggregate.Identifies, shards, shards)
	}
	// How many waited depends on how fast the shards noticed the cut (a
	// loaded machine spreads that too), so only the kinds are checked.
	gs := m.Gate().Stats()
	if gs.Resumes != shards || gs.Identifies != 0 {
		t.Fatalf("gate stats %+v: want %d resumes let through and no identify", gs, shards)
	}
	// The reconnects are spread over time, not all in one instant.
	var times []time.Time
	for _, c := range srv.Ledger().Connections()[opened:] {
		times = append(times, c.OpenedAt)
	}
	if len(times) != shards {
		t.Fatalf("%d new connections, want %d", len(times), shards)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	distinct := 1
	for i := 1; i < len(times); i++ {
		if times[i].After(times[i-1]) {
			distinct++
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span <= 0 || distinct < shards-2 {
		t.Fatalf("reconnects not spread: span %v, %d distinct times of %d", span, distinct, shards)
	}
	// The gate let 2 through at once and then one per 10ms, so the last
	// reconnect cannot come before 14 spacings after the cut. This is a
	// lower bound the gate guarantees, which a slow machine only makes
	// easier to meet: it cannot flake.
	if last := times[len(times)-1].Sub(cut); last < (shards-2)*10*time.Millisecond {
		t.Fatalf("the last reconnect came %v after the cut, sooner than the gate allows", last)
	}
	for _, s := range srv.Ledger().Sessions() {
		if lost := srv.Ledger().Lost(s.ID); len(lost) > 0 {
			t.Fatalf("session %s (shard %v) lost %v", s.ID, s.Shard, lost)
		}
		if len(s.Resumes) != 1 {
			t.Fatalf("session %s (shard %v) resumed %d times, want 1", s.ID, s.Shard, len(s.Resumes))
		}
	}
	assertNoViolations(t, srv)
	evs.assertShards(t, shards)
}

// eventLog keeps every event published.
type eventLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *eventLog) Publish(e events.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *eventLog) has(match func(events.Event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if match(e) {
			return true
		}
	}
	return false
}

// assertShards checks that every event names a shard, and that each
// shard's RESUME completed.
func (l *eventLog) assertShards(t *testing.T, shards int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	resumed := map[int]bool{}
	for _, e := range l.evs {
		if e.Shard < 0 || e.Shard >= shards {
			t.Fatalf("event without a valid shard: %v", e)
		}
		if r, ok := e.Data.(events.Recovery); ok && r.Completed && r.Success && r.Strategy == "resume" {
			resumed[e.Shard] = true
		}
	}
	if len(resumed) != shards {
		t.Fatalf("RESUME completed on %d shards, want %d", len(resumed), shards)
	}
}

// Tick runs each shard's monitor; the aggregate counts the shards by
// condition, and the monitors' events carry their shard.
func TestTickAggregatesShardHealth(t *testing.T) {
	const shards = 8
	srv := startFake(t, fakeOptions(shards, 4))
	cfg := config(srv)
	evs := &eventLog{}
	cfg.Events = evs
	// Shards 0 and 1 fail a critical check (CRITICAL: unhealthy); shard 2
	// fails one of two plain checks (score 50: DEGRADED).
	cfg.NewMonitor = func(id int, source func() metrics.Snapshot) (*health.Monitor, error) {
		mon := health.NewMonitor(health.Options{Shard: id, Events: evs, Source: source, Retries: -1})
		pass := func(ok bool) health.Checker {
			return health.CheckFunc(func(context.Context, metrics.Snapshot) health.Result { return health.Result{Passed: ok} })
		}
		if err := mon.Add("critical", pass(id > 1), health.CheckConfig{Critical: true}); err != nil {
			return nil, err
		}
		if err := mon.Add("plain", pass(id != 2), health.CheckConfig{}); err != nil {
			return nil, err
		}
		return mon, nil
	}
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)

	v := m.Tick(context.Background())
	a := v.Aggregate
	if a.Total != shards || a.Ready != shards || a.Unhealthy != 2 || a.Degraded != 1 || a.Healthy != 5 {
		t.Fatalf("aggregate %+v", a)
	}
	if a.UnhealthyRatio != 0.25 || a.DegradedRatio != 0.375 || a.ReadyRatio != 1 {
		t.Fatalf("ratios: unhealthy %v degraded %v ready %v", a.UnhealthyRatio, a.DegradedRatio, a.ReadyRatio)
	}
	// Shard 0's critical check weighs 2, its passing plain check 1.
	if a.WorstAckShard < 0 || a.Identifies != shards || math.Abs(a.MinHealthScore-100.0/3) > 1e-9 {
		t.Fatalf("aggregate %+v", a)
	}
	for _, sv := range v.Shards {
		want := map[int]shard.Condition{0: shard.Unhealthy, 1: shard.Unhealthy, 2: shard.Degraded}[sv.ID]
		if _, special := map[int]bool{0: true, 1: true, 2: true}[sv.ID]; !special {
			want = shard.Healthy
		}
		if sv.Condition != want || sv.Snapshot.Shard.ID != sv.ID || sv.Snapshot.Shard.Count != shards || sv.Connection.SessionID == "" {
			t.Fatalf("shard view %+v, want condition %v", sv, want)
		}
	}
	if v.SessionStartsRemaining != discordtest.DefaultSessionStartTotal-shards {
		t.Fatalf("session starts remaining %d", v.SessionStartsRemaining)
	}
	evs.mu.Lock()
	defer evs.mu.Unlock()
	changed := map[int]bool{}
	for _, e := range evs.evs {
		if e.Type == events.HealthChanged {
			changed[e.Shard] = true
		}
	}
	if len(changed) != shards {
		t.Fatalf("HEALTH_CHANGED from shards %v, want all %d", changed, shards)
	}
}

// Stop while Start is bringing shards up: Start returns an error, Stop
// returns once everything ended, and nothing runs afterwards (TestMain
// checks for leaked goroutines).
func TestStopDuringStart(t *testing.T) {
	srv := startFake(t, fakeOptions(6, 1))
	cfg := config(srv)
	stopped := make(chan error, 1)
	var m *shard.Manager
	var once sync.Once
	cfg.OnProgress = func(p shard.Progress) {
		once.Do(func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				stopped <- m.Stop(ctx)
			}()
		})
	}
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded although Stop was called during it")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, s := range m.Shards() {
		if st := s.State(); st != conn.Stopped {
			t.Fatalf("shard %d is %v after Stop", s.ID(), st)
		}
	}
	if err := m.Start(context.Background()); !errors.Is(err, shard.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	assertNoViolations(t, srv)
}

// A context that ends during Start ends it; everything started is stopped.
func TestStartContextCanceled(t *testing.T) {
	srv := startFake(t, fakeOptions(6, 1))
	cfg := config(srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.OnProgress = func(shard.Progress) { cancel() }
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, m)
	err = m.Start(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted with 1 of 6 shards READY") {
		t.Fatalf("Start = %v, want the context's error after 1 READY", err)
	}
	for _, s := range m.Shards() {
		if st := s.State(); st != conn.Stopped {
			t.Fatalf("shard %d is %v after a canceled Start", s.ID(), st)
		}
	}
}

// AddHandler reaches the Sessions of shards made later and earlier, and
// its remover takes the handler off all of them.
func TestAddHandlerReachesEveryShard(t *testing.T) {
	srv := startFake(t, fakeOptions(4, 4))
	m, err := shard.New(config(srv))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	readies := map[int]int{}
	m.AddHandler(func(s *discordgo.Session, _ *discordgo.Ready) {
		mu.Lock()
		readies[s.ShardID]++
		mu.Unlock()
	})
	removed := m.AddHandler(func(*discordgo.Session, *discordgo.MessageCreate) { t.Error("a removed handler ran") })
	start(t, m)
	defer stop(t, m)
	late := watchMessages(m, 4)
	removed()
	late.wait(t, emit(t, srv, "m"))
	// discordgo runs handlers on goroutines of their own: wait for them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(readies)
		mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("READY seen by shards %v, want all 4", readies)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, s := range m.Shards() {
		if s.Session().Ratelimiter != m.Shards()[0].Session().Ratelimiter {
			t.Fatal("the shards do not share one rate limiter")
		}
	}
}

// With Auto, a 4011 at start (too many guilds per shard) makes the manager
// re-shard: it stops what it started, takes the next count and starts
// again; every guild's events then arrive on the right shard.
func TestAutoReshardsOn4011AtStart(t *testing.T) {
	o := fakeOptions(2, 2)
	o.Guilds, o.MaxGuildsPerShard = 40, 10 // 2 shards hold 20 each: 4011
	srv := startFake(t, o)
	cfg := config(srv)
	evs := &eventLog{}
	cfg.Events = evs
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)
	// /gateway/bot still says 2, so the count doubles.
	if got := m.Count(); got != 4 || len(m.Shards()) != 4 {
		t.Fatalf("count %d with %d shards after re-sharding, want 4", got, len(m.Shards()))
	}
	view := watchMessages(m, 4)
	view.wait(t, emit(t, srv, "m"))
	for _, id := range srv.Ledger().Identifies() {
		if id.Shard[1] == 4 && id.Outcome != discordtest.IdentifyAccepted {
			t.Fatalf("IDENTIFY %+v after re-sharding", id)
		}
	}
	if !evs.has(func(e events.Event) bool {
		d, ok := e.Data.(events.Error)
		return ok && d.Kind == "resharding" && strings.Contains(d.Message, "restarting 2 shards as 4")
	}) {
		t.Fatal("no resharding event")
	}
	assertNoViolations(t, srv)
}

// A running shard closed with 4011 (the bot grew) makes the manager
// re-shard every shard: to what /gateway/bot recommends when that is more,
// else (as here, where the fake still says 2) to twice the count.
func TestAutoReshardsWhenARunningShardGets4011(t *testing.T) {
	o := fakeOptions(2, 2)
	o.Guilds, o.RecommendedShards = 16, 2
	srv := startFake(t, o)
	cfg := config(srv)
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	view := watchMessages(m, 4)
	start(t, m)
	defer stop(t, m)
	if got := m.Count(); got != 2 {
		t.Fatalf("count %d, want 2", got)
	}
	if err := srv.CloseConnections(discordtest.CloseShardingRequired, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := m.View()
		if m.Count() == 4 && v.Aggregate.Total == 4 && v.Aggregate.Ready == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not re-sharded: count %d, %+v", m.Count(), v.Aggregate)
		}
		time.Sleep(10 * time.Millisecond)
	}
	view.wait(t, emit(t, srv, "m"))
	assertNoViolations(t, srv)
}

// With a range, the process cannot re-shard alone: 4011 is an error.
func TestRangeDoesNotReshard(t *testing.T) {
	o := fakeOptions(2, 2)
	o.Guilds, o.MaxGuildsPerShard = 40, 10
	srv := startFake(t, o)
	cfg := config(srv)
	cfg.Range = &shard.Range{First: 0, Last: 1}
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, m)
	if err := m.Start(context.Background()); !errors.Is(err, conn.ErrShardingRequired) {
		t.Fatalf("Start = %v, want sharding required", err)
	}
}
