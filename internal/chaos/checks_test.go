package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// session builds a session record of shard 0: n dispatches generated 10ms
// apart from created, the first (READY) written on connection conn unless
// conn is 0.
func session(id string, created, n int, acked int64, conn int64) discordtest.SessionRecord {
	s := discordtest.SessionRecord{ID: id, Shard: [2]int{0, 1}, CreatedAt: at(created)}
	for i := 0; i < n; i++ {
		d := discordtest.DispatchRecord{Seq: int64(i + 1), At: at(created + 10*i)}
		if conn != 0 {
			d.Deliveries = []discordtest.Delivery{{ConnID: conn}}
		}
		s.Dispatches = append(s.Dispatches, d)
	}
	if acked > 0 {
		s.Acks = []discordtest.AckRecord{{Seq: acked}}
	}
	if conn != 0 {
		s.Connections = []int64{conn}
	}
	return s
}

func ended(s discordtest.SessionRecord, atMs int, reason string) discordtest.SessionRecord {
	s.Ended, s.EndedAt, s.EndReason = true, at(atMs), reason
	return s
}

func TestClassifyLosses(t *testing.T) {
	tests := []struct {
		name     string
		sessions []discordtest.SessionRecord
		conns    []discordtest.ConnRecord
		lost     int
		excused  int
		why      string
	}{
		{
			name:     "one live session, all acknowledged",
			sessions: []discordtest.SessionRecord{session("a", 0, 10, 10, 1)},
		},
		{
			name:     "one live session with dispatches in flight: not a loss yet",
			sessions: []discordtest.SessionRecord{session("a", 0, 10, 6, 1)},
		},
		{
			name: "invalidated by the server, then a new session",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 6, 1), 100, "all sessions invalidated"),
				session("b", 200, 5, 5, 2),
			},
			excused: 4, why: "all sessions invalidated",
		},
		{
			name: "abandoned while resumable: the dispatches before the new session are lost",
			sessions: []discordtest.SessionRecord{
				// Dispatches at 0..90ms; the new session starts at 55ms:
				// 7..10 were generated after it and reached it too.
				session("a", 0, 10, 2, 1),
				session("b", 55, 5, 5, 2),
			},
			lost: 4, why: "could still resume",
		},
		{
			name: "abandoned, expired later: still lost",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 2, 1), 500, "expired"),
				session("b", 200, 5, 5, 2),
			},
			lost: 8, why: "could still resume",
		},
		{
			name: "expired while disconnected (outage longer than the session lives)",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 2, 1), 150, "expired"),
				session("b", 200, 5, 5, 2),
			},
			excused: 8, why: "expired",
		},
		{
			name: "the client closed with 1000",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 7, 1), 150, "client closed with 1000"),
				session("b", 200, 5, 5, 2),
			},
			conns: []discordtest.ConnRecord{{ID: 1, CloseKind: discordtest.ClosedByClient, CloseCode: 1000}},
			lost:  3, why: "ended by the client",
		},
		{
			name: "the server closed with 1001 and the client echoed it",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 7, 1), 150, "client closed with 1001"),
				session("b", 200, 5, 5, 2),
			},
			conns:   []discordtest.ConnRecord{{ID: 1, CloseKind: discordtest.ClosedByServer, CloseCode: 1001}},
			excused: 3, why: "server closed with 1001",
		},
		{
			name: "heartbeats stopped: the client's fault",
			sessions: []discordtest.SessionRecord{
				ended(session("a", 0, 10, 7, 1), 150, "heartbeat timeout"),
				session("b", 200, 5, 5, 2),
			},
			lost: 3, why: "heartbeat timeout",
		},
		{
			name: "READY never sent: the client never knew the session",
			sessions: []discordtest.SessionRecord{
				session("a", 0, 10, 0, 0),
				session("b", 150, 5, 5, 2),
			},
			excused: 10, why: "READY never sent",
		},
		{
			name: "a RESUME asked for dispatches the replay buffer had dropped",
			sessions: func() []discordtest.SessionRecord {
				s := session("a", 0, 10, 10, 1)
				s.Unreplayable = []int64{3, 4}
				return []discordtest.SessionRecord{s}
			}(),
			lost: 2, why: "could still resume",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := classifyLosses(tt.sessions, tt.conns)
			if f.Lost != tt.lost || f.Excused != tt.excused {
				t.Fatalf("lost %d, excused %d (%v %v); want %d, %d", f.Lost, f.Excused, f.Details, f.ExcusedBy, tt.lost, tt.excused)
			}
			text := strings.Join(f.Details, "\n") + fmt.Sprint(f.ExcusedBy)
			if tt.why != "" && !strings.Contains(text, tt.why) {
				t.Fatalf("%q does not say %q", text, tt.why)
			}
		})
	}
}

func TestParseWait(t *testing.T) {
	tests := []struct {
		cause   string
		wait    time.Duration
		breaker bool
		ok      bool
	}{
		{"waiting 1.5s before attempt 3", 1500 * time.Millisecond, false, true},
		{"waiting 120ms before attempt 2 (reidentify)", 120 * time.Millisecond, false, true},
		{"waiting 0s before attempt 2", 0, false, true},
		{"circuit breaker: circuit breaker is open; next try in 1.2s", 1200 * time.Millisecond, true, true},
		{"stopped", 0, false, false},
		{"waiting soon before attempt 2", 0, false, false},
	}
	for _, tt := range tests {
		w, b, ok := parseWait(tt.cause)
		if w != tt.wait || b != tt.breaker || ok != tt.ok {
			t.Errorf("parseWait(%q) = %v, %v, %v; want %v, %v, %v", tt.cause, w, b, ok, tt.wait, tt.breaker, tt.ok)
		}
	}
}

type stateEv struct {
	ms      int
	to      string
	cause   string
	breaker string // a breaker transition instead of a state
}

func TestEnvelope(t *testing.T) {
	// reconnect_delay 100ms, ×2, max 1s; invalid-session delay up to 100ms;
	// 500ms of slack.
	tests := []struct {
		name   string
		events []stateEv
		want   string // a substring of the first violation; "" for none
	}{
		{"waits within their ceilings, honoured", []stateEv{
			{ms: 0, to: "READY"},
			{ms: 10, to: "BACKING_OFF", cause: "waiting 80ms before attempt 2"},
			{ms: 95, to: "CONNECTING"},
			{ms: 100, to: "BACKING_OFF", cause: "waiting 190ms before attempt 3"},
			{ms: 300, to: "CONNECTING"},
			{ms: 350, to: "READY"},
			{ms: 360, to: "BACKING_OFF", cause: "waiting 90ms before attempt 2"},
			{ms: 460, to: "CONNECTING"},
		}, ""},
		{"a first wait above the first ceiling", []stateEv{
			{ms: 0, to: "READY"},
			{ms: 10, to: "BACKING_OFF", cause: "waiting 150ms before attempt 2"},
		}, "above the envelope's 100ms"},
		{"an attempt before its wait is over", []stateEv{
			{ms: 0, to: "READY"},
			{ms: 10, to: "BACKING_OFF", cause: "waiting 80ms before attempt 2"},
			{ms: 40, to: "CONNECTING"},
		}, "too soon"},
		{"an attempt long after its wait", []stateEv{
			{ms: 0, to: "READY"},
			{ms: 10, to: "BACKING_OFF", cause: "waiting 80ms before attempt 2"},
			{ms: 900, to: "CONNECTING"},
		}, "late by"},
		{"an open breaker may hold an attempt back unannounced", []stateEv{
			{ms: 0, to: "READY"},
			{ms: 5, breaker: "OPEN"},
			{ms: 10, to: "BACKING_OFF", cause: "waiting 80ms before attempt 2"},
			{ms: 900, to: "CONNECTING"},
			{ms: 950, to: "BACKING_OFF", cause: "waiting 700ms before attempt 3"},
		}, ""},
		{"no wait above max_reconnect_delay, breaker or not", []stateEv{
			{ms: 0, breaker: "OPEN"},
			{ms: 10, to: "BACKING_OFF", cause: "circuit breaker: open; next try in 1.5s"},
		}, "above the envelope's 1s"},
		{"a breaker wait below reconnect_delay", []stateEv{
			{ms: 0, breaker: "OPEN"},
			{ms: 10, to: "BACKING_OFF", cause: "circuit breaker: open; next try in 50ms"},
		}, "below reconnect_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvelope(100*time.Millisecond, time.Second, 2, 100*time.Millisecond, 500*time.Millisecond)
			for _, ev := range tt.events {
				if ev.breaker != "" {
					e.breaker(0, ev.breaker)
				} else {
					e.observe(0, at(ev.ms), ev.to, ev.cause)
				}
			}
			f := e.figures()
			switch {
			case tt.want == "" && len(f.Violations) > 0:
				t.Fatalf("violations: %v", f.Violations)
			case tt.want != "" && (len(f.Violations) == 0 || !strings.Contains(f.Violations[0], tt.want)):
				t.Fatalf("violations %v, want one saying %q", f.Violations, tt.want)
			}
		})
	}
}

func TestSecretScannerAndLogSink(t *testing.T) {
	s := newSecretScanner("s3cret-token", "")
	s.ScanString("log", "nothing here")
	s.ScanString("events", `{"message":"auth failed for s3cret-token"}`)
	hits := s.Hits()
	if len(hits) != 1 || !strings.HasPrefix(hits[0], "events: ") || strings.Contains(hits[0], "s3cret-token") ||
		!strings.Contains(hits[0], "<SECRET>") {
		t.Fatalf("hits = %q", hits)
	}
	if got := s.Scanned(); got["log"] != 12 || len(s.Sources()) != 2 {
		t.Fatalf("scanned = %v", got)
	}
	sink := newLogSink("log", s, 2)
	for _, l := range []string{"one\n", "two\n", "three s3cret-token\n"} {
		if _, err := sink.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if sink.Lines() != 3 || sink.Tail() != "two\nthree s3cret-token\n" || len(s.Hits()) != 2 {
		t.Fatalf("lines %d, tail %q, hits %d", sink.Lines(), sink.Tail(), len(s.Hits()))
	}
}

func TestHeapFigures(t *testing.T) {
	var samples []heapSample
	for i := 0; i < 30; i++ {
		samples = append(samples, heapSample{At: time.Duration(i) * time.Second, System: int64(10+i%3) * mb, Goroutines: 40 + i%5})
	}
	f := summariseHeap(samples, 3*time.Second)
	if f.Samples != 27 || f.FirstMB < 10 || f.FirstMB > 12 || f.LastMB < 10 || f.LastMB > 12 || !f.flat(4) {
		t.Fatalf("flat series: %+v", f)
	}
	for i := range samples {
		samples[i].System = int64(10+i) * mb
	}
	if f := summariseHeap(samples, 3*time.Second); f.flat(4) {
		t.Fatalf("a heap growing 1 MB a sample is called flat: %+v", f)
	}
	if scaleHeap(1, 512, 16<<10) <= 512 || scaleHeap(0, 0, 512) != 0 || scaleHeap(3, 300, 1) != 300 {
		t.Fatal("scaleHeap")
	}
}

func TestToken(t *testing.T) {
	tok := Token(1)
	if parts := strings.Split(tok, "."); len(parts) != 3 || len(tok) < 59 {
		t.Fatalf("Token(1) = %q: not shaped like a bot token", tok)
	}
	if Token(1) != tok || Token(2) == tok || HTTPToken(1) == HTTPToken(2) {
		t.Fatal("tokens are not a function of the seed")
	}
}

func TestSiteGrowth(t *testing.T) {
	got := siteGrowth(map[string]int64{"a": mb, "b": 2 * mb}, map[string]int64{"a": 3 * mb, "b": mb, "c": mb / 2}, 5)
	if len(got) != 2 || !strings.HasPrefix(got[0], "a +2.00 MB") || !strings.HasPrefix(got[1], "c +0.50 MB") {
		t.Fatalf("growth %q", got)
	}
}
