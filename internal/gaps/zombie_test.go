package gaps

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// TestZombieKeptForFiveIntervals: the fake stops answering heartbeats (a
// zombie connection: the TCP connection is up, Discord no longer listens).
// discordgo v0.29.0 checks the ACK's age only when it sends the next
// heartbeat and gives up after 5 intervals (FailedHeartbeatAcks), so it
// stays on the dead connection for more than 5 intervals after the last
// ACK (about 206 s with Discord's 41.25 s interval). It then closes with
// 1000, which ends the session: its reconnect cannot RESUME and falls back
// to a fresh IDENTIFY.
//
// The assertion is a lower bound measured on the fake's ledger (last ACK
// sent, the client's close received), which a slow machine can only make
// larger. discordgo's own check guarantees more than 5 intervals; the test
// asks for more than 4 to leave room for the ledger's timestamps.
//
// lifeline: TestResumableFaultsResumeWithoutLoss/zombie_(ACKs_stall)
// (core/conn/integration_test.go) RESUMEs with nothing lost and one
// IDENTIFY; TestConnZombieDetectedAfterFactorIntervals (core/gateway)
// declares the zombie 1.4 intervals after the last sign of life (there,
// HELLO: no ACK ever comes), on a fake clock.
func TestZombieKeptForFiveIntervals(t *testing.T) {
	t.Parallel()
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatTimeout: -1, SessionExpiry: 30 * time.Second})
	interval := srv.HeartbeatInterval()
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	eventually(t, "a heartbeat ACK", func() bool {
		return len(frames(srv, 1, discordtest.Sent, discordtest.OpHeartbeatACK)) > 0
	})
	if err := srv.StallACKs(0); err != nil { // until ClearFaults
		t.Fatal(err)
	}
	eventually(t, "discordgo to leave the zombie connection", func() bool {
		c, _ := srv.Ledger().Connection(1)
		return c.Closed
	})
	srv.ClearFaults() // so the next connection is healthy

	acks := frames(srv, 1, discordtest.Sent, discordtest.OpHeartbeatACK)
	lastAck := acks[len(acks)-1].At
	unanswered := 0
	for _, f := range frames(srv, 1, discordtest.Received, discordtest.OpHeartbeat) {
		if f.At.After(lastAck) {
			unanswered++
		}
	}
	zombie, _ := srv.Ledger().Connection(1)
	kept := zombie.ClosedAt.Sub(lastAck)
	t.Logf("heartbeat interval %v; last ACK at +%v; discordgo sent %d more heartbeats with no ACK and left the connection %v (%.2f intervals) after the last ACK, closing it with %s %d",
		interval, lastAck.Sub(zombie.OpenedAt).Round(time.Millisecond), unanswered,
		kept.Round(time.Millisecond), intervals(kept, interval), zombie.CloseKind, zombie.CloseCode)
	if kept <= 4*interval {
		t.Fatalf("discordgo left the zombie connection %.2f intervals after the last ACK; v0.29.0 waits more than 5", intervals(kept, interval))
	}

	// The 1000 close ended the session, so the reconnect IDENTIFYs anew.
	if zombie.CloseKind != discordtest.ClosedByClient || zombie.CloseCode != 1000 {
		t.Fatalf("zombie connection ended %s %d, want the client's 1000", zombie.CloseKind, zombie.CloseCode)
	}
	ev.waitFor(t, "a second READY", 2, isReady)
	first := srv.Ledger().Sessions()[0]
	var accepted int
	for _, r := range srv.Ledger().Identifies() {
		if r.Outcome == discordtest.IdentifyAccepted {
			accepted++
		}
	}
	t.Logf("session %s ended (%q) with %d RESUMEs; %d IDENTIFYs accepted in all (lifeline: 1)", first.ID, first.EndReason, len(first.Resumes), accepted)
	if !first.Ended || len(first.Resumes) != 0 || accepted != 2 {
		t.Fatalf("first session ended=%v with %d RESUMEs, %d IDENTIFYs: want it ended unresumed and a second IDENTIFY", first.Ended, len(first.Resumes), accepted)
	}
	last := srv.Ledger().Connections()
	afterHeartbeat(t, srv, last[len(last)-1].ID)
	_ = s.Close()
}
