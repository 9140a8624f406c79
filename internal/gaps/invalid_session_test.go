package gaps

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// TestInvalidSessionResumableReidentifies: op 9 with d=true says the
// session may be resumed. discordgo v0.29.0's onEvent answers every op 9
// with an immediate IDENTIFY on the same connection, without reading d
// (discordgo issues #544, #819). The resumable session is abandoned with
// whatever it still held for the bot, a session start is spent, and the
// guilds arrive again as if the bot had restarted.
//
// To make "what it still held" exact rather than timing-dependent, the
// fake holds the shard's dispatches back (stall_dispatches) while three
// messages are posted and op 9 d=true is sent; a RESUME would have
// replayed them. discordgo's fresh session never sees them: the ledger
// shows them never written on any connection, then lost when the
// abandoned session expires, and the bot's handler never gets them.
//
// lifeline: TestResumableFaultsResumeWithoutLoss/op_9_resumable
// (core/conn/integration_test.go) RESUMEs with one IDENTIFY in all and
// every message delivered exactly once.
func TestInvalidSessionResumableReidentifies(t *testing.T) {
	t.Parallel()
	// No identify window: this test is about the RESUME that never comes
	// (TestInvalidSessionNotResumableIgnoresWait is about the window).
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatTimeout: 10 * time.Second,
		SessionExpiry: 500 * time.Millisecond, IdentifyWindow: time.Nanosecond})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	first := srv.Sessions()[0].ID
	eventually(t, "READY and the guilds written", func() bool { return len(srv.Ledger().Undelivered(first)) == 0 })

	if err := srv.StallDispatches(0); err != nil { // until ClearFaults
		t.Fatal(err)
	}
	ch := srv.Guilds()[0].ChannelID
	var held []string
	for i := 0; i < 3; i++ {
		content := fmt.Sprintf("held-%d", i)
		if _, err := srv.EmitMessage(ch, content); err != nil {
			t.Fatal(err)
		}
		held = append(held, content)
	}
	heldSeqs := srv.Ledger().Undelivered(first)
	if len(heldSeqs) != len(held) {
		t.Fatalf("the fake holds %v, want %d messages", heldSeqs, len(held))
	}
	if err := srv.SendInvalidSession(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "discordgo's answer to op 9", func() bool { return len(srv.Ledger().Identifies()) >= 2 })
	srv.ClearFaults()
	ev.waitFor(t, "the second READY", 2, isReady)
	eventually(t, "the abandoned session to expire", func() bool {
		r, _ := srv.Ledger().Session(first)
		return r.Ended
	})

	op9 := frames(srv, 1, discordtest.Sent, discordtest.OpInvalidSession)
	ids := srv.Ledger().Identifies()
	rec, _ := srv.Ledger().Session(first)
	t.Logf("op 9 d=true at +%v; discordgo answered on connection %d with IDENTIFY %v later (%s, new session %s); resumable session %s: %d RESUMEs, ended %q",
		op9[0].At.Sub(ids[0].At).Round(time.Millisecond), ids[1].ConnID, ids[1].At.Sub(op9[0].At).Round(time.Microsecond),
		ids[1].Outcome, ids[1].SessionID, first, len(rec.Resumes), rec.EndReason)
	if ids[1].ConnID != 1 || ids[1].Outcome != discordtest.IdentifyAccepted {
		t.Fatalf("second IDENTIFY %+v, want an accepted one on connection 1", ids[1])
	}
	if len(rec.Resumes) != 0 || len(connsAfter(srv, 1)) != 0 {
		t.Fatalf("discordgo RESUMEd (%d) or reconnected (%d connections): the gap is gone", len(rec.Resumes), len(connsAfter(srv, 1)))
	}

	// The held messages: never written, now lost, never seen by the bot.
	// A message posted now reaches the bot through the new session.
	if und := srv.Ledger().Undelivered(first); !slices.Equal(und, heldSeqs) {
		t.Fatalf("undelivered %v, want the held %v", und, heldSeqs)
	}
	lost := srv.Ledger().Lost(first)
	for _, q := range heldSeqs {
		if !slices.Contains(lost, q) {
			t.Fatalf("lost %v does not include held sequence %d", lost, q)
		}
	}
	if _, err := srv.EmitMessage(ch, "after"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message posted after", func() bool { return slices.Contains(ev.messages(), "after") })
	got := ev.messages()
	for _, h := range held {
		if slices.Contains(got, h) {
			t.Fatalf("the bot got %q: it was replayed after all", h)
		}
	}
	t.Logf("the bot's handler got %v; %v (sequences %v of the abandoned session) are lost: a RESUME would have replayed them", got, held, heldSeqs)
	afterHeartbeat(t, srv, 1)
	_ = s.Close()
}

// TestInvalidSessionNotResumableIgnoresWait: op 9 with d=false asks the
// client to wait a random 1-5 s and then IDENTIFY. discordgo v0.29.0
// IDENTIFYs at once, on the same connection. Right after a session start
// that breaks the identify rate limit (max_concurrency 1: one IDENTIFY per
// window; the fake's window is 2 s here), Discord answers with another op 9
// d=false, which discordgo answers at once again: an IDENTIFY storm, as
// fast as the round trip allows, until the window has passed.
//
// The assertion is on the fake's ledger: rate-limited IDENTIFYs and
// identify-concurrency violations, which need discordgo to answer within
// 2 s of its first IDENTIFY; it does within milliseconds.
//
// lifeline: TestInvalidSessionNotResumableReidentifies and
// TestIdentifyLimitsHoldAcrossRepeatedFailures (core/conn/integration2_test.go)
// wait before IDENTIFY, keep every IDENTIFY at least one window apart, and
// leave the ledger without violations.
func TestInvalidSessionNotResumableIgnoresWait(t *testing.T) {
	t.Parallel()
	const window = 2 * time.Second
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatTimeout: 10 * time.Second,
		SessionExpiry: 30 * time.Second, IdentifyWindow: window})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	if err := srv.SendInvalidSession(false); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY of a new session", 2, isReady)

	l := srv.Ledger()
	ids := l.Identifies()
	op9 := frames(srv, 1, discordtest.Sent, discordtest.OpInvalidSession)
	outcomes := map[discordtest.IdentifyOutcome]int{}
	for _, r := range ids[1:] {
		outcomes[r.Outcome]++
	}
	violations := map[discordtest.ViolationKind]int{}
	for _, v := range l.Violations() {
		violations[v.Kind]++
	}
	t.Logf("op 9 d=false at +%v after the first IDENTIFY; discordgo's next IDENTIFY came %v after it, on connection %d (Discord asks for 1-5 s)",
		op9[0].At.Sub(ids[0].At).Round(time.Millisecond), ids[1].At.Sub(op9[0].At).Round(time.Microsecond), ids[1].ConnID)
	t.Logf("until a new session started %v after the first: %d more IDENTIFYs %v over %d connections; ledger violations %v",
		ids[len(ids)-1].At.Sub(ids[0].At).Round(time.Millisecond), len(ids)-1, outcomes, len(l.Connections()), violations)
	if ids[1].ConnID != 1 {
		t.Fatalf("the IDENTIFY after op 9 came on connection %d, want 1 (discordgo answers on the same connection)", ids[1].ConnID)
	}
	if outcomes[discordtest.IdentifyRateLimited] < retries || violations[discordtest.ViolationIdentifyConcurrency] < retries {
		t.Fatalf("%d rate-limited IDENTIFYs, %d identify-concurrency violations; want at least %d of each",
			outcomes[discordtest.IdentifyRateLimited], violations[discordtest.ViolationIdentifyConcurrency], retries)
	}
	last := l.Connections()
	afterHeartbeat(t, srv, last[len(last)-1].ID)
	_ = s.Close()
}
