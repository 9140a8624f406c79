package chaos

import (
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/events"
)

func TestTimelineReadsRecoverySkipsAndAttempts(t *testing.T) {
	tl := newTimeline(100)
	tl.logLine([]byte(`2026-11-27T12:00:01.500Z [WARN]  shard0.recovery.recovery: recovery strategy skipped: shard=2 strategy=resume reason="resume: 10 attempts on shard 2 within 5m0s: strategy attempt cap for the window reached"` + "\n"))
	tl.logLine([]byte(`2026-11-27T12:00:01.600Z [WARN]  shard0.recovery.recovery: recovery strategy skipped: shard=2 strategy=reconnect reason="unavailable"` + "\n"))
	tl.logLine([]byte(`2026-11-27T12:00:01.700Z [INFO]  shard0.lifeline: something else` + "\n"))
	if !tl.skippedAtCap(2, at(1000), at(2000)) || tl.skippedAtCap(2, at(1600), at(2000)) || tl.skippedAtCap(1, at(0), at(5000)) {
		t.Fatalf("cap skips %v", tl.capSkips)
	}
	if got := tl.between(2, at(0), at(5000)); !strings.Contains(got, "recovery skipped resume: resume: 10 attempts") ||
		!strings.Contains(got, "recovery skipped reconnect: unavailable") {
		t.Fatalf("timeline:\n%s", got)
	}
	for i := 0; i < 10; i++ {
		for _, s := range []string{"resume", "reconnect"} {
			tl.add(1, events.ForShard(at(i*1000), 1, events.Recovery{Strategy: s, Attempt: 1}))
		}
	}
	if !tl.capped(1, at(10000)) || tl.capped(1, at(10000).Add(recoveryWindow)) || tl.capped(0, at(10000)) {
		t.Fatal("capped counts the attempts of the window before t")
	}
	if tl.capped(1, at(8000)) {
		t.Fatal("nine attempts are not the cap")
	}
}
