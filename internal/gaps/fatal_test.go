package gaps

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// retries is how many attempts after a fatal close make a loop: one retry
// could be a policy, three in a row after the same fatal answer are not.
const retries = 3

// TestAuthenticationFailedRetriedForever: a bot that exceeds its daily
// session-start budget gets its token reset, and every connection closes
// with 4004 (authentication failed), as Discord does. 4004 is fatal: no
// retry can succeed until a person puts a new token in. discordgo v0.29.0's
// listen() answers the close like any read error, with Close and
// reconnect(), and reconnect() loops forever: each attempt RESUMEs with
// the dead token and gets 4004 again, after waits of 1 s, 2 s, 4 s ... up to
// 600 s, without jitter and without a way for the bot to stop it (discordgo
// issue #1544). Each attempt is an invalid request that counts toward
// Discord's Cloudflare ban.
//
// The second IDENTIFY that spends the budget comes from discordgo's answer
// to op 9 (see TestInvalidSession*), so the story is discordgo's own doing.
// Nothing a bot can call stops the loop; the test ends it the only way
// there is, by making the token work again.
//
// lifeline: TestFatalCloseCodesStopWithoutRetry/4004_bad_token and
// TestSessionStartBudgetSpentStops (core/conn/integration2_test.go) stop
// with an error that names the token and make no further attempt.
func TestAuthenticationFailedRetriedForever(t *testing.T) {
	t.Parallel()
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatInterval: 1500 * time.Millisecond,
		HeartbeatTimeout: 10 * time.Second, SessionExpiry: 30 * time.Second,
		SessionStartTotal: 1, IdentifyWindow: time.Nanosecond})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	afterHeartbeat(t, srv, 1)

	// op 9 d=false: discordgo IDENTIFYs again at once, which spends the
	// budget; the fake resets the token and closes with 4004.
	if err := srv.SendInvalidSession(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the 4004", func() bool {
		c, _ := srv.Ledger().Connection(1)
		return c.Closed
	})
	first, _ := srv.Ledger().Connection(1)
	if first.CloseKind != discordtest.ClosedByServer || first.CloseCode != discordtest.CloseAuthenticationFailed {
		t.Fatalf("first connection ended %s %d, want the fake's 4004", first.CloseKind, first.CloseCode)
	}
	refused := func() []discordtest.ConnRecord {
		var out []discordtest.ConnRecord
		for _, c := range connsAfter(srv, 1) {
			if c.Closed && c.CloseCode == discordtest.CloseAuthenticationFailed {
				out = append(out, c)
			}
		}
		return out
	}
	eventually(t, fmt.Sprintf("%d attempts after the 4004", retries), func() bool { return len(refused()) >= retries })

	prev := first.ClosedAt
	for i, c := range refused() {
		var ops []int
		for _, f := range c.Frames {
			if f.Dir == discordtest.Received {
				ops = append(ops, f.Op)
			}
		}
		t.Logf("attempt %d: connection %d opened %v after the previous 4004, client sent ops %v, closed %s %d",
			i+1, c.ID, c.OpenedAt.Sub(prev).Round(10*time.Millisecond), ops, c.CloseKind, c.CloseCode)
		prev = c.ClosedAt
	}
	n := len(refused())
	t.Logf("discordgo retried a fatal 4004 %d times (lifeline: 0)", n)

	// Nothing the bot can call stops the loop; only a working token does.
	// Give the fake its token back so the loop ends, then close.
	srv.ResetSessionStartLimit()
	ev.waitFor(t, "READY once the token works again", 2, isReady)
	last := srv.Ledger().Connections()
	t.Logf("the loop ended only when the token worked again: %d attempts in all, the last one %v after the 4004",
		len(last)-1, last[len(last)-1].OpenedAt.Sub(first.ClosedAt).Round(100*time.Millisecond))
	afterHeartbeat(t, srv, last[len(last)-1].ID)
	_ = s.Close()
}

// TestFatalCloseCodesRetried: 4010 (invalid shard), 4011 (sharding
// required), 4012 (invalid API version), 4013 (invalid intents) and 4014
// (disallowed intents) tell the bot to change its configuration; retrying
// unchanged cannot help. A scripted gateway closes the session with the
// code after READY and, like Discord, answers the RESUME of the ended
// session with op 9 d=false and the new IDENTIFY with the same code.
// discordgo v0.29.0 retries each without end. Worse than for 4004: its Open
// takes the op 9 for a successful handshake (it only logs that READY did
// not come), so the reconnect loop counts every attempt as a success and
// never even backs off: one IDENTIFY about every second (the second is
// the sleep in CloseWithCode), each one spent against the identify rate
// limit.
//
// The fake cannot stage this one: it checks shards and intents only on
// IDENTIFY, so after a close it would accept the same IDENTIFY again.
//
// lifeline: TestFatalCloseCodesStopWithoutRetry (core/conn/integration2_test.go)
// stops on each of 4004 and 4010-4014 with an error that says what to
// fix, and makes no further attempt.
func TestFatalCloseCodesRetried(t *testing.T) {
	t.Parallel()
	codes := []int{
		discordtest.CloseInvalidShard, discordtest.CloseShardingRequired, discordtest.CloseInvalidAPIVersion,
		discordtest.CloseInvalidIntents, discordtest.CloseDisallowedIntents,
	}
	type run struct {
		code   int
		accept atomic.Bool
		g      *scripted
		s      *discordgo.Session
		start  time.Time
	}
	var runs []*run
	// All codes run at once: discordgo's loop paces itself in real time.
	for _, code := range codes {
		r := &run{code: code}
		r.g = newScripted(t, fatalScript(code, &r.accept))
		r.s = r.g.session(t)
		if err := r.s.Open(); err != nil {
			t.Fatalf("%d: Open: %v", code, err)
		}
		r.start = time.Now()
		runs = append(runs, r)
	}
	// retried counts the connections after the first that IDENTIFYed and
	// got the fatal code again.
	retried := func(code int, conns []connSummary) int {
		n := 0
		for i, c := range conns {
			if i > 0 && c.has(discordtest.OpIdentify) && c.closeCode == code {
				n++
			}
		}
		return n
	}
	eventually(t, fmt.Sprintf("%d retries of every code", retries), func() bool {
		for _, r := range runs {
			if retried(r.code, r.g.connections()) < retries {
				return false
			}
		}
		return true
	})
	// Stop the loops: the next RESUME is accepted, discordgo's Open
	// succeeds, and the Session can be closed while its heartbeat
	// goroutine is idle. (Left running, the loops would meet the closed
	// server and race inside discordgo.)
	snapshot := make([][]connSummary, len(runs))
	elapsed := make([]time.Duration, len(runs))
	for i, r := range runs {
		snapshot[i] = r.g.connections()
		elapsed[i] = time.Since(r.start)
		r.accept.Store(true)
	}
	var closing sync.WaitGroup
	for _, r := range runs {
		eventually(t, fmt.Sprintf("%d: discordgo back on an accepted connection", r.code), func() bool {
			conns := r.g.connections()
			last := conns[len(conns)-1]
			return last.accepted && last.has(discordtest.OpHeartbeat) && !last.ended
		})
		closing.Go(func() { _ = r.s.Close() }) // a second each, all at once
	}
	closing.Wait()
	for i, r := range runs {
		t.Run(fmt.Sprint(r.code), func(t *testing.T) {
			conns := snapshot[i]
			var b strings.Builder
			for i, c := range conns {
				fmt.Fprintf(&b, "\n  connection %d: client sent ops %v, server closed with %d", i+1, c.ops, c.closeCode)
			}
			n := retried(r.code, conns)
			t.Logf("close %d after READY: discordgo IDENTIFYed again %d times in %v, each answered with %d:%s",
				r.code, n, elapsed[i].Round(10*time.Millisecond), r.code, b.String())
			if n < retries {
				t.Fatalf("%d retries, want at least %d", n, retries)
			}
		})
	}
}

// fatalScript plays Discord for a bot whose configuration Discord refuses
// with code: the first connection gets READY and then the close (the
// session ends); every later one gets op 9 d=false for its RESUME and the
// close for its IDENTIFY. Each close waits for discordgo's first heartbeat
// on the connection, so its heartbeat goroutine is idle (the interval is
// Discord's 41.25 s). Once accept is set, a RESUME gets RESUMED, which ends
// discordgo's loop so the test can close the Session cleanly.
func fatalScript(code int, accept *atomic.Bool) func(n int, c *scriptConn) {
	return func(n int, c *scriptConn) {
		c.hello(41250)
		op := c.readOp()
		switch {
		case n == 0 && op == discordtest.OpIdentify:
			c.send(`{"op":0,"s":1,"t":"READY","d":{"v":9,"session_id":"scripted","user":{"id":"1","username":"bot","bot":true},"guilds":[],"resume_gateway_url":"ws://127.0.0.1:1/resume"}}`)
		case accept.Load() && op == discordtest.OpResume:
			c.markAccepted()
			c.send(`{"op":0,"s":2,"t":"RESUMED","d":{}}`)
			c.hold()
			return
		case op == discordtest.OpResume:
			c.send(`{"op":9,"d":false}`)
			if c.readOp() != discordtest.OpIdentify {
				return
			}
		default:
			return
		}
		if c.awaitHeartbeat() {
			c.closeWith(code)
		}
	}
}
