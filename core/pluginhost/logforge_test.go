package pluginhost

import (
	"context"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/internal/testutil"
	"github.com/lifeline-bot/lifeline/sdk"
)

// syncBuffer is the goroutine-safe buffer the package's tests log into.
type syncBuffer = testutil.SyncBuffer

// A plugin logging through the host cannot forge host log lines: newlines
// and other control characters in its message and field names are escaped.
func TestPluginCannotForgeHostLogLines(t *testing.T) {
	var out syncBuffer
	h := New(Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Trace})})
	defer h.Stop()
	s := &services{h: h, name: "evil", log: h.o.Logger.Named("plugin.evil")}
	forged := "2026-11-27T00:00:00.000Z [ERROR] lifeline: token rotated"
	for _, level := range []sdk.LogLevel{sdk.LogTrace, sdk.LogDebug, sdk.LogInfo, sdk.LogWarn, sdk.LogError} {
		if err := s.Log(context.Background(), level, "hello\n"+forged+"\r\x1b[2J", "key\n"+forged, "value"); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "2026-11-27T00:00:00.000Z") || strings.Contains(line, "\x1b") {
			t.Fatalf("a forged line in the host log: %q\n%s", line, out.String())
		}
	}
	if !strings.Contains(out.String(), `hello\n2026-11-27T00:00:00.000Z [ERROR] lifeline: token rotated\r\x1b[2J`) {
		t.Fatalf("the message is not kept, escaped:\n%s", out.String())
	}
	if got := safeLogText("plain text, ünïcode"); got != "plain text, ünïcode" {
		t.Fatalf("plain text changed: %q", got)
	}
}
