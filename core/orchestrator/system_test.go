package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workerBuild.dir != "" {
		os.RemoveAll(workerBuild.dir)
	}
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("time.Sleep"), // discordgo's Close sleeps in its own goroutine
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// system is one Orchestrator against the fake Discord, with the events it
// published and the messages the bot's handler got.
type system struct {
	t    *testing.T
	srv  *discordtest.Server
	o    *orchestrator.Orchestrator
	mu   sync.Mutex
	evs  []events.Event
	msgs []string
	evCh chan events.Event
	// dropped counts the events that found evCh full.
	dropped atomic.Int64
}

func newSystem(t *testing.T, p *policy.Policy, fo discordtest.Options) *system {
	t.Helper()
	return newSystemWith(t, fo, func(c *orchestrator.Config) { c.Policy = p })
}

func newSystemWith(t *testing.T, fo discordtest.Options, mutate func(*orchestrator.Config)) *system {
	t.Helper()
	fo.Scale, fo.Guilds = 200, 2
	if fo.SessionExpiry == 0 {
		fo.SessionExpiry = 30 * time.Second
	}
	if fo.HeartbeatTimeout == 0 {
		fo.HeartbeatTimeout = 2 * time.Second
	}
	srv, err := discordtest.NewServer(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := fakeConfig(srv)
	mutate(&cfg)
	return newSystemFrom(t, srv, cfg)
}

// fakeConfig is an orchestrator.Config against the fake srv with the
// tests' timings: a 20ms tick, an 8192-event queue, and connection timings
// cut to the fake's scale (a 2s handshake, reconnects after 20-200ms, 20-60ms
// after an invalid session, 5s REST calls).
func fakeConfig(srv *discordtest.Server) orchestrator.Config {
	return orchestrator.Config{
		Token:          srv.Token(),
		RESTTransport:  srv.Transport(),
		GatewayDialer:  srv.Dialer(),
		IdentifyWindow: srv.IdentifyWindow(),
		TickInterval:   20 * time.Millisecond,
		EventQueueSize: 8192,
		Tune: func(c *conn.Config) {
			c.HandshakeTimeout = 2 * time.Second
			c.ReconnectDelay = 20 * time.Millisecond
			c.MaxReconnectDelay = 200 * time.Millisecond
			c.InvalidSessionDelay = [2]time.Duration{20 * time.Millisecond, 60 * time.Millisecond}
			c.CallTimeout = 5 * time.Second
		},
	}
}

// newSystemFrom builds the Orchestrator of cfg, against srv, and records
// every event it publishes: all in s.evs, and in s.evCh for waitEvent (an
// event that finds evCh full is counted in s.dropped instead of holding up
// the bus).
func newSystemFrom(t *testing.T, srv *discordtest.Server, cfg orchestrator.Config) *system {
	t.Helper()
	o, err := orchestrator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, srv: srv, o: o, evCh: make(chan events.Event, 8192)}
	o.AddEventListener(events.All, func(e events.Event) {
		s.mu.Lock()
		s.evs = append(s.evs, e)
		s.mu.Unlock()
		select {
		case s.evCh <- e:
		default:
			s.dropped.Add(1)
		}
	})
	return s
}

func (s *system) start() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.o.Start(ctx); err != nil {
		s.t.Fatalf("Start: %v", err)
	}
	s.o.Session().AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		s.mu.Lock()
		s.msgs = append(s.msgs, m.Content)
		s.mu.Unlock()
	})
}

func (s *system) stop() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.o.Stop(ctx); err != nil {
		s.t.Errorf("Stop: %v", err)
	}
}

func (s *system) waitEvent(what string, match func(events.Event) bool) events.Event {
	s.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-s.evCh:
			if match(e) {
				return e
			}
		case <-deadline:
			s.t.Fatalf("no %s event (%d events found the queue full and were dropped)", what, s.dropped.Load())
		}
	}
}

// eventually polls cond (bounded by real time) for states the tick
// publishes no event for.
func (s *system) eventually(what string, cond func() bool) {
	s.t.Helper()
	for i := 0; i < 1500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("never: %s", what)
}

func (s *system) waitMessages(want []string) {
	s.t.Helper()
	s.eventually("the handler got every message", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		got := map[string]bool{}
		for _, m := range s.msgs {
			got[m] = true
		}
		for _, w := range want {
			if !got[w] {
				return false
			}
		}
		return true
	})
}

func TestSystemConnectsAndReportsThroughDiagnostics(t *testing.T) {
	s := newSystem(t, nil, discordtest.Options{})
	s.start()
	defer s.stop()

	d := s.o.Diagnostics()
	if d.State != conn.Ready.String() {
		t.Fatalf("state after Start = %s, want READY", d.State)
	}
	if d.Gateway == nil || !strings.HasPrefix(d.Gateway.URL, "ws://127.0.0.1:") {
		t.Fatalf("gateway from /gateway/bot = %+v", d.Gateway)
	}
	if d.SessionStartsRemaining != d.Gateway.Limit.Remaining-1 {
		t.Fatalf("session starts remaining = %d, /gateway/bot said %d before our IDENTIFY",
			d.SessionStartsRemaining, d.Gateway.Limit.Remaining)
	}
	if _, err := s.srv.EmitMessage(s.srv.Guilds()[0].ChannelID, "hello"); err != nil {
		t.Fatal(err)
	}
	s.waitMessages([]string{"hello"})
	// A REST call through the Session is observed by the Recorder.
	if _, err := s.o.Session().User("@me"); err != nil {
		t.Fatalf("REST through the Session: %v", err)
	}
	s.eventually("the Snapshot shows the session", func() bool {
		snap := s.o.Snapshot()
		return snap.Gateway.Connected && snap.Gateway.Identifies == 1 && snap.Gateway.HeartbeatInterval > 0 &&
			snap.REST.Requests >= 2 && snap.Health.Status != ""
	})
	b, err := json.Marshal(s.o.Diagnostics())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), s.srv.Token()) {
		t.Fatal("diagnostics carry the token")
	}
}

func TestSystemResumesAZombieWithoutLoss(t *testing.T) {
	s := newSystem(t, nil, discordtest.Options{})
	s.start()
	defer s.stop()

	if err := s.srv.StallACKs(time.Hour); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range []string{"during-1", "during-2"} {
		if _, err := s.srv.EmitMessage(s.srv.Guilds()[0].ChannelID, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	s.waitEvent("resume completed", func(e events.Event) bool {
		d, ok := e.Data.(events.Recovery)
		return ok && d.Completed && d.Success && d.Strategy == "resume"
	})
	s.srv.ClearFaults()
	s.waitMessages(want)
	s.eventually("the Snapshot counts the resume", func() bool {
		g := s.o.Snapshot().Gateway
		return g.Resumes >= 1 && g.Identifies == 1 && g.Connected
	})
	if v := s.srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
	if lost := s.srv.Ledger().Lost(s.o.Connection().Stats().SessionID); len(lost) > 0 {
		t.Fatalf("dispatches lost: %+v", lost)
	}
}

// An outage trips the breaker; lifeline waits while it is open, probes when
// it half-opens, and closes it once the fake is back.
func TestSystemOutageTripsBreakerAndRecovers(t *testing.T) {
	p, err := policy.LoadSource("breaker.hcl", []byte(`
circuit_breaker {
  failure_threshold  = 2
  recovery_threshold = 2 # READY, then one answered heartbeat
  open_timeout       = "100ms"
  half_open_max_calls = 1
  monitoring_period  = "10s"
  max_open_timeout   = "300ms"
}
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSystem(t, p, discordtest.Options{})
	s.start()
	defer s.stop()

	if err := s.srv.Outage(discordtest.OutageRefuse, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	transition := func(from, to string) func(events.Event) bool {
		return func(e events.Event) bool {
			d, ok := e.Data.(events.BreakerTransition)
			return ok && d.From == from && d.To == to
		}
	}
	s.waitEvent("breaker CLOSED→OPEN", transition("CLOSED", "OPEN"))
	s.waitEvent("breaker OPEN→HALF_OPEN", transition("OPEN", "HALF_OPEN"))
	s.waitEvent("breaker HALF_OPEN→CLOSED", transition("HALF_OPEN", "CLOSED"))
	s.eventually("READY again", func() bool { return s.o.Diagnostics().State == conn.Ready.String() })
	if m := s.o.CircuitBreaker().Metrics(); m.Rejections == 0 {
		t.Fatalf("the open breaker refused no attempt: %+v", m)
	}
	if v := s.srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
}

func TestSystemFatalTokenStopsWithClearError(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	o, err := orchestrator.New(orchestrator.Config{Token: "not-the-token", RESTTransport: srv.Transport(), GatewayDialer: srv.Dialer()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = o.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Start with a bad token = %v, want the 401 from /gateway/bot", err)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Fatal("the error carries the token")
	}
	if err := o.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for name, cfg := range map[string]orchestrator.Config{
		"no token":      {},
		"bad intent":    {Token: "t", Intents: []string{"GuildMesages"}},
		"shard too big": {Token: "t", ShardID: 2, ShardCount: 2},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := orchestrator.New(cfg); err == nil {
				t.Fatal("New accepted it")
			} else {
				t.Log(err)
			}
		})
	}
}

// With few session starts left, lifeline says so (ERROR_OCCURRED
// budget_low with the reset time) before it spends the last ones, and the
// diagnostics show the budget.
func TestSystemWarnsWhenTheSessionStartBudgetRunsLow(t *testing.T) {
	s := newSystem(t, nil, discordtest.Options{SessionStartTotal: 3})
	s.start()
	defer s.stop()
	if err := s.o.Connection().Recover(conn.RecoverReidentify, "test: spend a start"); err != nil {
		t.Fatal(err)
	}
	e := s.waitEvent("budget_low", func(e events.Event) bool {
		d, ok := e.Data.(events.Error)
		return ok && d.Kind == "budget_low"
	})
	if msg := e.Data.(events.Error).Message; !strings.Contains(msg, "session starts left until") {
		t.Fatalf("warning = %q, want the count and the reset time", msg)
	}
	s.eventually("READY after the re-identify", func() bool { return s.o.Diagnostics().State == conn.Ready.String() })
	if d := s.o.Diagnostics(); d.SessionStartsRemaining != 1 {
		t.Fatalf("diagnostics: %d session starts remaining, want 1 of 3", d.SessionStartsRemaining)
	}
}

// Editing the policy file retunes the live breaker without resetting it;
// a broken edit keeps the running policy and says where it is broken.
func TestSystemPolicyEditRetunesLiveBreaker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.hcl")
	write := func(body string) {
		t.Helper()
		// Write-then-rename, as editors do.
		tmp := filepath.Join(dir, ".policy.hcl.tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	breakerPolicy := func(threshold int) string {
		return fmt.Sprintf("circuit_breaker {\n  failure_threshold = %d\n  open_timeout = \"1m\"\n}\n", threshold)
	}
	write(breakerPolicy(5))
	s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) {
		c.PolicyFile = path
		c.PolicyDebounce = 20 * time.Millisecond
	})
	s.start()
	defer s.stop()

	brk := s.o.CircuitBreaker()
	fail := func() {
		_ = brk.Execute(context.Background(), func(context.Context) error { return errors.New("boom") })
	}
	fail()
	fail()
	if st := brk.State().String(); st != "CLOSED" {
		t.Fatalf("state after 2 of 5 failures = %s", st)
	}

	write(breakerPolicy(3))
	s.waitEvent("POLICY_RELOADED", func(e events.Event) bool { return e.Type == events.PolicyReloaded })
	if got := s.o.Policy().CircuitBreaker.FailureThreshold; got != 3 {
		t.Fatalf("policy in force has failure_threshold %d, want 3", got)
	}
	fail()
	if st := brk.State().String(); st != "OPEN" {
		t.Fatalf("state after a 3rd failure under the new threshold of 3 = %s (the old failures were forgotten?)", st)
	}
	if m := brk.Metrics(); m.Failures != 3 {
		t.Fatalf("failures = %d, want the 3 counted across the reload", m.Failures)
	}

	write("circuit_breaker {\n  failure_threshold = \"many\"\n}\n")
	e := s.waitEvent("POLICY_RELOAD_FAILED", func(e events.Event) bool { return e.Type == events.PolicyReloadFailed })
	diags := strings.Join(e.Data.(events.PolicyReload).Diagnostics, "\n")
	if !strings.Contains(diags, "policy.hcl:2") {
		t.Fatalf("diagnostics %q do not point at policy.hcl line 2", diags)
	}
	if got := s.o.Policy().CircuitBreaker.FailureThreshold; got != 3 {
		t.Fatalf("a broken edit changed the policy in force (failure_threshold %d)", got)
	}
	if err := s.o.ReloadPolicy(); err == nil {
		t.Fatal("ReloadPolicy of the broken file reported success")
	}
}

// Every intent name core/policy accepts is one the connection accepts.
func TestPolicyIntentNamesParseInConn(t *testing.T) {
	for _, in := range policy.Intents() {
		mask, err := conn.ParseIntents([]string{in.Name})
		if err != nil {
			t.Errorf("policy intent %q: %v", in.Name, err)
		} else if int(mask) != in.Bit {
			t.Errorf("policy intent %q is %d, conn gives %d", in.Name, in.Bit, mask)
		}
	}
}

// Diagnostics list the degradation actions in force.
func TestDiagnosticsListActiveDegradationActions(t *testing.T) {
	s := newSystem(t, nil, discordtest.Options{})
	s.start()
	defer s.stop()
	if _, err := s.o.Degradation().Activate(context.Background(), policy.Moderate,
		[]string{"disable_analytics", "enable_read_only_mode"}, "test"); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.o.Diagnostics())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"disable_analytics"`, `"enable_read_only_mode"`, `"degradation_state"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("diagnostics lack %s: %s", want, b)
		}
	}
}
