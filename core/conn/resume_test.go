package conn_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/discordtest"
)

const botUserID = "4242424242424242"

func resumeFakeOptions() discordtest.Options {
	o := fakeOptions()
	o.BotUserID = botUserID
	return o
}

// clientOps returns the opcodes a client sent on the connections of the
// ledger opened at or after index from.
func clientOps(srv *discordtest.Server, from int) map[int]int {
	ops := map[int]int{}
	for _, c := range srv.Ledger().Connections()[from:] {
		for _, f := range c.Frames {
			if f.Dir == discordtest.Received {
				ops[f.Op]++
			}
		}
	}
	return ops
}

// readyUsers records the user of every READY the bot's Session sees.
func readyUsers(h *harness) func() []string {
	var mu sync.Mutex
	var users []string
	h.c.Session().AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		mu.Lock()
		defer mu.Unlock()
		if r.User == nil {
			users = append(users, "<nil>")
			return
		}
		users = append(users, r.User.ID)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), users...)
	}
}

// A connection started from another connection's saved session RESUMEs it:
// the ledger shows a RESUME and no IDENTIFY on its connection, the messages
// sent while no connection was up are replayed to the new Session exactly
// once, the old ones are not, and the bot's Session sees a READY with the
// bot's user.
func TestStartFromSavedSessionResumes(t *testing.T) {
	srv := startFake(t, resumeFakeOptions())
	first := newHarness(t, srv, nil)
	first.start()
	before := first.emit("before", 3)
	first.waitMessages(before)
	first.stop()
	saved, ok := first.c.SavedSession()
	if !ok || !saved.Valid() {
		t.Fatalf("no saved session after a resumable stop: %+v", saved)
	}
	if st := first.c.Stats(); st.SessionID != saved.SessionID || st.Sequence != saved.Sequence || st.ResumeURL != saved.ResumeURL || st.ResumeURL == "" {
		t.Fatalf("Stats %+v disagree with the saved session %+v", st, saved)
	}
	var user struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(saved.User, &user); err != nil || user.ID != botUserID {
		t.Fatalf("saved user %s (%v), want the bot's %s", saved.User, err, botUserID)
	}
	// Through JSON, as a fleet's store keeps it.
	raw, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	var stored conn.SavedSession
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	between := first.emit("between", 3)

	conns := len(srv.Ledger().Connections())
	second := newHarness(t, srv, func(c *conn.Config) { c.Resume = &stored })
	users := readyUsers(second)
	second.start()
	defer second.stop()
	second.waitMessages(between)
	after := second.emit("after", 2)
	second.waitMessages(append(between, after...))

	ops := clientOps(srv, conns)
	if ops[6] != 1 || ops[2] != 0 {
		t.Fatalf("new connection sent %d RESUME and %d IDENTIFY, want 1 and 0", ops[6], ops[2])
	}
	if n := second.identifies(); n != 1 {
		t.Fatalf("%d IDENTIFYs in all, want only the first connection's", n)
	}
	if u := users(); len(u) != 1 || u[0] != botUserID {
		t.Fatalf("READY users %v, want one READY with the bot's user %s", u, botUserID)
	}
	if got, _ := second.c.SavedSession(); got.SessionID != saved.SessionID {
		t.Fatalf("session %q after resuming, want %q", got.SessionID, saved.SessionID)
	}
	if lost := srv.Ledger().Lost(saved.SessionID); len(lost) != 0 {
		t.Fatalf("lost dispatches %v", lost)
	}
	second.assertNoViolations()
}

// A saved session Discord no longer knows (invalidated, or never existed)
// makes the connection fall back to exactly one IDENTIFY, and the bot's
// Session then gets that session's READY.
func TestStartFromStaleSessionIdentifiesOnce(t *testing.T) {
	cases := []struct {
		name  string
		saved func(t *testing.T, srv *discordtest.Server) conn.SavedSession
		prior int // IDENTIFYs before the connection under test
	}{
		{name: "unknown session", saved: func(*testing.T, *discordtest.Server) conn.SavedSession {
			return conn.SavedSession{SessionID: "no-such-session", Sequence: 7}
		}},
		{name: "invalidated session", prior: 1, saved: func(t *testing.T, srv *discordtest.Server) conn.SavedSession {
			h := newHarness(t, srv, nil)
			h.start()
			h.stop()
			s, ok := h.c.SavedSession()
			if !ok {
				t.Fatal("no saved session")
			}
			if err := srv.InvalidateAllSessions(); err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, resumeFakeOptions())
			saved := tc.saved(t, srv)
			h := newHarness(t, srv, func(c *conn.Config) { c.Resume = &saved })
			users := readyUsers(h)
			h.start()
			defer h.stop()
			msgs := h.emit("fresh", 2)
			h.waitMessages(msgs)
			if n := h.identifies(); n != tc.prior+1 {
				t.Fatalf("%d IDENTIFYs, want %d", n, tc.prior+1)
			}
			got, ok := h.c.SavedSession()
			if !ok || got.SessionID == saved.SessionID {
				t.Fatalf("session %+v after the fallback, want a new one", got)
			}
			// The Session saw the saved session's READY, then the new one's.
			if u := users(); len(u) != 2 || u[1] != botUserID {
				t.Fatalf("READY users %v, want two, the last with the bot's user", u)
			}
			h.assertNoViolations()
		})
	}
}
