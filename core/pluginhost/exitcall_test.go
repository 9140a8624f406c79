package pluginhost_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// A check whose plugin dies during the call fails with the reason the
// process died (its exit status and last output), not only with the broken
// connection; and consecutive crashes are restarted after a growing wait.
func TestCrashDuringCallNamesTheExitAndBacksOff(t *testing.T) {
	for _, tc := range []crashCase{
		{"os.Exit", "exit", "exit status 3 (last output: dying on purpose)"},
		{"panic in a goroutine", "panic", "exit status 2 (last output: panic: boom in goroutine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			hs := newHarness(t, nil) // restarts after 1s, 2s, 4s
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
				t.Fatal(err)
			}
			hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p"))

			for i, backoff := range []time.Duration{time.Second, 2 * time.Second} {
				res := probe(hs, "p", map[string]any{"mode": tc.mode})
				want := `plugin "p" check probe: the plugin exited during the call: ` + tc.reason
				if res.Passed || !strings.Contains(res.Message, want) {
					t.Fatalf("crash %d: check = %+v, want a message containing %q", i+1, res, want)
				}
				e := hs.rec.waitFor(t, i+1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
				if !e.Restart || !strings.Contains(e.Reason, tc.reason) {
					t.Fatalf("crash %d: PLUGIN_EXITED = %+v", i+1, e)
				}
				if st := hs.status("p"); st.State != pluginhost.Restarting || st.Restarts != i+1 {
					t.Fatalf("crash %d: Status = %+v", i+1, st)
				}
				hs.clk.Advance(backoff - time.Millisecond)
				if n := hs.rec.count(started("p")); n != i+1 || hs.status("p").State != pluginhost.Restarting {
					t.Fatalf("crash %d: restarted before its %v backoff (%d starts)", i+1, backoff, n)
				}
				hs.clk.Advance(time.Millisecond)
				hs.rec.waitFor(t, i+2, "PLUGIN_STARTED after the backoff", started("p"))
				if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
					t.Fatalf("crash %d: check after the restart = %+v", i+1, res)
				}
			}
		})
	}
}
