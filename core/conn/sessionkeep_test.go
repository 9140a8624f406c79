package conn_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// A close that ends a session (4009, 4007) reaching a connection that has
// not sent its RESUME yet (its HELLO withheld) cannot be about the session
// lifeline holds: lifeline RESUMEs that session, and Discord replays what
// it kept, rather than IDENTIFYing anew and losing it. The soak saw the
// fake close every connection with 4009 while one waited for HELLO: the
// shard started a new session, and the old one's dispatches were lost.
func TestSessionEndingCloseBeforeTheHandshakeKeepsTheSession(t *testing.T) {
	for _, code := range []int{4009, 4007} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := startFake(t, fakeOptions())
			h := newHarness(t, srv, nil)
			h.start()
			defer h.stop()
			before := h.emit("before", 3)
			h.waitMessages(before)

			// The next connection (a RESUME) gets no HELLO.
			if err := srv.Inject(discordtest.Fault{Kind: discordtest.FaultWithholdHello}); err != nil {
				t.Fatal(err)
			}
			if err := srv.DropConnections(); err != nil {
				t.Fatal(err)
			}
			waitHeldConnection(t, srv)
			// Messages Discord keeps for the session meanwhile.
			during := h.emit("during", 3)
			srv.ClearFaults()
			if err := srv.CloseConnections(code); err != nil {
				t.Fatal(err)
			}
			h.waitMessages(append(before, during...))
			if n := h.identifies(); n != 1 {
				t.Fatalf("%d IDENTIFYs, want 1 (the session resumes)", n)
			}
			h.assertNoViolations()
		})
	}
}

// waitHeldConnection waits (bounded) until the fake holds an open
// connection that has received nothing: the RESUME waiting for its HELLO.
func waitHeldConnection(t *testing.T, srv *discordtest.Server) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range srv.Ledger().Connections() {
			if !c.Closed && c.Path == "/resume" && len(c.Frames) == 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no connection waiting for HELLO")
}
