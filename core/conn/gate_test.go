package conn_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// holdGate records every Wait and holds each one until released.
type holdGate struct {
	mu      sync.Mutex
	calls   []gateCall
	called  chan gateCall
	release chan struct{}
}

type gateCall struct {
	shard  int
	resume bool
}

func newHoldGate() *holdGate {
	return &holdGate{called: make(chan gateCall, 16), release: make(chan struct{}, 16)}
}

func (g *holdGate) Wait(ctx context.Context, shard int, resume bool) error {
	g.mu.Lock()
	g.calls = append(g.calls, gateCall{shard, resume})
	g.mu.Unlock()
	g.called <- gateCall{shard, resume}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *holdGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

func (g *holdGate) waitCall(t *testing.T) gateCall {
	t.Helper()
	select {
	case c := <-g.called:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("the connection never waited at the reconnect gate")
	}
	return gateCall{}
}

// The gate is asked before each reconnect (not before the first
// connection), says whether the attempt resumes, and no connection is
// dialled until it lets the attempt through.
func TestReconnectGateHoldsReconnects(t *testing.T) {
	cases := []struct {
		name       string
		fault      func(srv *discordtest.Server) error
		wantResume bool
		strategy   string
	}{
		{"drop resumes", func(srv *discordtest.Server) error { return srv.DropConnections() }, true, "resume"},
		{"op 9 d=false identifies", func(srv *discordtest.Server) error { return srv.SendInvalidSession(false) }, false, "reidentify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, fakeOptions())
			gate := newHoldGate()
			h := newHarness(t, srv, func(c *conn.Config) { c.ReconnectGate = gate })
			h.start()
			defer h.stop()
			if n := gate.count(); n != 0 {
				t.Fatalf("the first connection waited at the gate %d times", n)
			}
			opened := len(srv.Ledger().Connections())
			if err := tc.fault(srv); err != nil {
				t.Fatal(err)
			}
			call := gate.waitCall(t)
			if call.shard != 0 || call.resume != tc.wantResume {
				t.Fatalf("gate asked for %+v, want shard 0 resume=%v", call, tc.wantResume)
			}
			// The gate is asked before anything is dialled.
			if n := len(srv.Ledger().Connections()); n != opened {
				t.Fatalf("%d connections opened while the gate held the attempt", n-opened)
			}
			gate.release <- struct{}{}
			h.waitEvent(recoveryDone(tc.strategy), tc.strategy+" completed")
			h.assertNoViolations()
		})
	}
}

// Stop while a reconnect waits at the gate ends the wait: Stop returns and
// no goroutine is left (TestMain checks leaks).
func TestStopWhileWaitingAtReconnectGate(t *testing.T) {
	srv := startFake(t, fakeOptions())
	gate := newHoldGate()
	h := newHarness(t, srv, func(c *conn.Config) { c.ReconnectGate = gate })
	h.start()
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	gate.waitCall(t)
	h.stop()
	if got := h.c.State(); got != conn.Stopped {
		t.Fatalf("state %v after Stop, want STOPPED", got)
	}
}
