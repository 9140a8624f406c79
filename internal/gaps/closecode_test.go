package gaps

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// TestCloseCodesInvisibleToHandlers: what ended a connection matters to a
// bot (4008: it sends too much; 4009: its session timed out; 4000: Discord
// had a problem). With discordgo v0.29.0 a bot cannot tell: the event that
// announces the loss, Disconnect, is an empty struct; close frames, op 7
// and op 9 never reach any handler (the raw *discordgo.Event handler only
// gets dispatches); Open returned long ago. Three close codes, each
// recovered by discordgo's own reconnect, give the bot's catch-all handler
// the very same view.
//
// The ledger shows one more thing on the way: discordgo answers the
// server's close with a close of its own with code 1000 (listen() calls
// Close), and the fake, like Discord, ends a session its client closes
// with 1000. So even after 4000 and 4008, which Discord documents as
// resumable, discordgo cannot RESUME and IDENTIFYs a new session.
//
// lifeline: every close code, op 7 and op 9 reaches the event bus with its
// code and cause (core/conn's gateway tap, TestTapWithDiscordgoSession);
// a fatal code becomes an error that names it and says what to fix
// (TestFatalCloseCodesStopWithoutRetry), and close 4000 RESUMEs with nothing
// lost (TestResumableFaultsResumeWithoutLoss/close_4000).
func TestCloseCodesInvisibleToHandlers(t *testing.T) {
	t.Parallel()
	if n := reflect.TypeOf(discordgo.Disconnect{}).NumField(); n != 0 {
		t.Fatalf("discordgo.Disconnect has %d fields now: check what they tell", n)
	}
	cases := []struct {
		code      int
		meaning   string
		resumable bool // Discord: reconnect and RESUME
	}{
		{discordtest.CloseUnknownError, "unknown error", true},
		{discordtest.CloseRateLimited, "rate limited", true},
		{discordtest.CloseSessionTimedOut, "session timed out", false},
	}
	views := make([]string, len(cases))
	t.Run("codes", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
				t.Parallel()
				views[i] = handlerView(t, tc.code, tc.resumable)
			})
		}
	})
	if t.Failed() {
		return
	}
	for i, tc := range cases {
		t.Logf("close %d (%s) -> the bot's handlers got: %s", tc.code, tc.meaning, views[i])
		if views[i] != views[0] {
			t.Errorf("close %d gives the handlers a different view than close %d: discordgo tells them something now", tc.code, cases[0].code)
		}
	}
}

// handlerView connects a plain discordgo Session to a fake, has the fake
// close the connection with code, waits for discordgo's own recovery, and
// describes what the bot's catch-all handler got from the close on: the
// connection events (sorted, without repeats) and the fields of each
// Disconnect. It also checks the ledger: the session ended, by the
// client's own 1000 when the code was resumable, and a new one started.
func handlerView(t *testing.T, code int, resumable bool) string {
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatInterval: time.Second,
		HeartbeatTimeout: 10 * time.Second, SessionExpiry: 30 * time.Second})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	afterHeartbeat(t, srv, 1)
	mark := ev.len()
	if err := srv.CloseConnections(code); err != nil {
		t.Fatal(err)
	}
	// Handlers run in goroutines of their own: wait for the three.
	eventually(t, "Disconnect, Connect and READY", func() bool {
		got := ev.since(mark)
		return slices.ContainsFunc(got, isDisconnect) && slices.ContainsFunc(got, isConnect) && slices.ContainsFunc(got, isReady)
	})

	l := srv.Ledger()
	sessions := l.Sessions()
	first := sessions[0]
	t.Logf("ledger: connection 1 closed by the fake with %d; session %s ended %q after %d RESUMEs; %d sessions in all",
		code, first.ID, first.EndReason, len(first.Resumes), len(sessions))
	if !first.Ended || len(first.Resumes) != 0 || len(sessions) != 2 {
		t.Fatalf("first session ended=%v, %d RESUMEs, %d sessions: want it ended and a new one", first.Ended, len(first.Resumes), len(sessions))
	}
	if resumable && first.EndReason != "client closed with 1000" {
		t.Fatalf("close %d is resumable, yet the session ended %q", code, first.EndReason)
	}

	var names, details []string
	for _, e := range ev.since(mark) {
		switch e := e.(type) {
		case *discordgo.Disconnect:
			details = append(details, fmt.Sprintf("Disconnect%+v", *e))
		case *discordgo.Event:
			if e.Operation != 0 {
				t.Fatalf("a handler got op %d: discordgo passes more than dispatches now", e.Operation)
			}
			continue
		case *discordgo.Connect, *discordgo.Ready, *discordgo.Resumed:
		default:
			continue
		}
		names = append(names, reflect.TypeOf(e).String())
	}
	sort.Strings(names)
	sort.Strings(details)
	_ = s.Close()
	return strings.Join(slices.Compact(names), ", ") + "; " + strings.Join(slices.Compact(details), ", ")
}
