package conn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// Fatal close codes stop lifeline with an error that says what to fix,
// and it never tries again.
func TestFatalCloseCodesStopWithoutRetry(t *testing.T) {
	cases := []struct {
		name     string
		opts     func(*discordtest.Options)
		cfg      func(*conn.Config)
		afterUp  int // close live connections with this code instead
		sentinel error
		hint     string
	}{
		{name: "4004 bad token", cfg: func(c *conn.Config) { c.Token = "not-the-token" },
			sentinel: conn.ErrAuthenticationFailed, hint: "token"},
		{name: "4011 sharding required", opts: func(o *discordtest.Options) { o.Guilds = 5; o.MaxGuildsPerShard = 2 },
			sentinel: conn.ErrShardingRequired, hint: "shard count"},
		{name: "4013 invalid intents", cfg: func(c *conn.Config) { c.Intents = 1 << 30 },
			sentinel: conn.ErrInvalidIntents, hint: "intent"},
		{name: "4014 disallowed intents", cfg: func(c *conn.Config) { c.Intents = discordgo.IntentMessageContent | discordgo.IntentGuilds },
			sentinel: conn.ErrDisallowedIntents, hint: "Developer Portal"},
		{name: "4010 invalid shard", afterUp: 4010, sentinel: conn.ErrInvalidShard, hint: "shard"},
		{name: "4012 invalid API version", afterUp: 4012, sentinel: conn.ErrInvalidAPIVersion, hint: "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fakeOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			srv := startFake(t, o)
			h := newHarness(t, srv, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err := h.c.Start(ctx)
			if tc.afterUp != 0 {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				if err := srv.CloseConnections(tc.afterUp); err != nil {
					t.Fatal(err)
				}
				select {
				case <-h.c.Done():
				case <-ctx.Done():
					t.Fatal("connection did not stop")
				}
				err = h.c.Err()
			}
			if !errors.Is(err, tc.sentinel) || !errors.Is(err, conn.ErrFatalClose) {
				t.Fatalf("error %v, want %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error %q does not say what to fix (%q)", err, tc.hint)
			}
			if strings.Contains(err.Error(), srv.Token()) {
				t.Fatalf("error leaks the token")
			}
			if got := h.c.State(); got != conn.Failed {
				t.Fatalf("state %v, want FAILED", got)
			}
			// No further attempt: wait a few backoff steps and count.
			n := len(srv.Ledger().Connections())
			time.Sleep(300 * time.Millisecond)
			if m := len(srv.Ledger().Connections()); m != n {
				t.Fatalf("%d more connections after a fatal close", m-n)
			}
			h.stop()
		})
	}
}

// op 9 with d=false: lifeline waits as Discord asks, then IDENTIFYs anew;
// the bot's handlers keep working on the same Session.
func TestInvalidSessionNotResumableReidentifies(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, nil)
	h.start()
	defer h.stop()
	before := h.emit("before", 5)
	h.waitMessages(before)
	session := h.c.Session()
	if err := srv.SendInvalidSession(false); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(recoveryDone("reidentify"), "re-identify completed")
	if h.c.Session() != session {
		t.Fatal("the Session changed: handlers would be lost")
	}
	after := h.emit("after", 5)
	h.waitMessages(append(before, after...))
	if n := h.identifies(); n != 2 {
		t.Fatalf("%d IDENTIFYs, want 2", n)
	}
	h.assertNoViolations()
}

// A session that expired while the connection was down (4009 on RESUME, or
// op 9 d=false) gets a fresh IDENTIFY and the handlers still fire.
func TestExpiredSessionReidentifies(t *testing.T) {
	cases := map[string]func(*discordtest.Server) error{
		"close 4009":           func(s *discordtest.Server) error { return s.CloseConnections(4009) },
		"sessions invalidated": func(s *discordtest.Server) error { return s.InvalidateAllSessions() },
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			srv := startFake(t, fakeOptions())
			h := newHarness(t, srv, nil)
			h.start()
			defer h.stop()
			first := h.c.Stats().SessionID
			if err := fault(srv); err != nil {
				t.Fatal(err)
			}
			h.waitEvent(recoveryDone("reidentify"), "re-identify completed")
			if got := h.c.Stats().SessionID; got == first || got == "" {
				t.Fatalf("session %q after re-identify (was %q)", got, first)
			}
			h.waitMessages(h.emit("after", 5))
			h.assertNoViolations()
		})
	}
}

// HELLO withheld: the handshake deadline ends the attempt, lifeline tries
// again, and recovers once HELLO comes back.
func TestHelloWithheldDoesNotHang(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, func(c *conn.Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	h.start()
	defer h.stop()
	if err := srv.WithholdHello(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(func(e events.Event) bool {
		d, ok := e.Data.(events.Error)
		return ok && d.Kind == "handshake_timeout"
	}, "handshake timeout")
	h.waitEvent(recoveryDone("resume"), "resume completed")
	h.waitMessages(h.emit("after", 3))
	h.assertNoViolations()
}

// Repeated IDENTIFY failures (load shedding answers every IDENTIFY with op
// 9 d=false) never break the identify window or the daily budget.
func TestIdentifyLimitsHoldAcrossRepeatedFailures(t *testing.T) {
	o := fakeOptions()
	srv := startFake(t, o)
	h := newHarness(t, srv, func(c *conn.Config) {
		c.InvalidSessionDelay = [2]time.Duration{0, time.Millisecond} // push the queue as hard as possible
	})
	h.start()
	defer h.stop()
	if err := srv.ShedIdentify(400 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := srv.InvalidateAllSessions(); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(recoveryDone("reidentify"), "re-identify completed after the shedding")
	ids := srv.Ledger().Identifies()
	if len(ids) < 4 {
		t.Fatalf("only %d IDENTIFYs: the shedding was not exercised", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if gap := ids[i].At.Sub(ids[i-1].At); gap < srv.IdentifyWindow() {
			t.Fatalf("IDENTIFY %d came %v after the previous one (window %v)", i, gap, srv.IdentifyWindow())
		}
	}
	h.assertNoViolations()
}

// With the daily budget spent, lifeline refuses to IDENTIFY, stops with a
// clear error naming the reset time, and never exceeds the budget.
func TestSessionStartBudgetSpentStops(t *testing.T) {
	srv := startFake(t, fakeOptions())
	q := conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 0, ResetAfter: time.Hour, MaxConcurrency: 1},
		conn.IdentifyQueueOptions{Window: srv.IdentifyWindow(), Margin: srv.IdentifyWindow() / 2})
	h := newHarness(t, srv, func(c *conn.Config) { c.IdentifyQueue = q })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.c.Start(ctx)
	if !errors.Is(err, conn.ErrSessionStartLimit) || !strings.Contains(err.Error(), "resets at") {
		t.Fatalf("Start = %v", err)
	}
	if n := h.identifies(); n != 0 {
		t.Fatalf("%d IDENTIFYs with no budget", n)
	}
	h.stop()
}

// An outage refuses every connection for a while: lifeline backs off with
// jitter, every wait within the backoff envelope, and is back after it.
func TestOutageBacksOffAndRecovers(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, func(c *conn.Config) {
		c.ReconnectDelay = 20 * time.Millisecond
		c.MaxReconnectDelay = 200 * time.Millisecond
		c.Rand = func() float64 { return 0.5 }
	})
	h.start()
	defer h.stop()
	if err := srv.Outage(discordtest.OutageRefuse, 600*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	during := h.emit("during", 3)
	h.waitEvent(recoveryDone("resume"), "resume after the outage")
	h.waitMessages(during)

	// Every BACKING_OFF wait is three quarters of the ceiling of its
	// attempt (Rand 0.5 over equal jitter's [ceiling/2, ceiling)), so the
	// attempts can never come faster than the envelope allows.
	b := conn.NewBackoff(conn.BackoffSettings{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond})
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.evs {
		d, ok := e.Data.(events.StateChange)
		if !ok || d.To != conn.BackingOff.String() {
			continue
		}
		_, hi := b.Envelope(n)
		want := "waiting " + (hi * 3 / 4).Round(time.Millisecond).String()
		if !strings.HasPrefix(d.Cause, want) {
			t.Errorf("backoff %d: cause %q, want prefix %q", n, d.Cause, want)
		}
		n++
	}
	if n < 3 {
		t.Fatalf("%d backoff steps during a 600ms outage", n)
	}
}
