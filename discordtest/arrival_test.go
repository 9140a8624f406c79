package discordtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestArrivalTime(t *testing.T) {
	read := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		kernel time.Time
		want   time.Time
	}{
		{"no kernel stamp: the read time", time.Time{}, read},
		{"read 40ms after it arrived", read.Add(-40 * time.Millisecond), read.Add(-40 * time.Millisecond)},
		{"read as it arrived", read, read},
		{"kernel stamp after the read (wall clock stepped back): the read time", read.Add(time.Second), read},
		{"lag over maxArrivalLag (wall clock stepped forward): the read time", read.Add(-maxArrivalLag - time.Millisecond), read},
		{"lag of exactly maxArrivalLag", read.Add(-maxArrivalLag), read.Add(-maxArrivalLag)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := arrivalTime(read, tc.kernel); !got.Equal(tc.want) {
				t.Fatalf("arrivalTime = %v, want %v", got, tc.want)
			}
		})
	}
}

// The identify check compares arrivals in both directions: an IDENTIFY
// the fake handles after one that arrived later than it is judged by how
// far apart they arrived. The former check (now minus the bucket's last
// accepted IDENTIFY) flagged the "handled out of order" rows. An arrival
// known only within bounds (read with later bytes, see arrival.go) is
// judged by the largest gap the bounds allow: the soak's "uncertain"
// rows, an IDENTIFY timed by the heartbeat read with it, were flagged
// when its upper bound alone was compared.
func TestNearestIdentify(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const window = 62500 * time.Microsecond
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	ex := func(ms float64) span { return exactly(at(ms)) }
	seen := func(spans ...span) []seenIdentify {
		var out []seenIdentify
		for i, s := range spans {
			out = append(out, seenIdentify{span: s, conn: int64(i + 1)})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		accepted []seenIdentify
		at       span
		want     time.Duration
		conn     int64 // the nearest one's
		limited  bool  // gap < window: op 9 and a violation
	}{
		{"first IDENTIFY of the bucket", nil, ex(0), 0, 0, false},
		{"one window later", seen(ex(0)), ex(62.5), window, 1, false},
		{"inside the window", seen(ex(0)), ex(40), 40 * time.Millisecond, 1, true},
		{"handled out of order, a window before", seen(ex(72.5)), ex(0), 72500 * time.Microsecond, 1, false},
		{"handled out of order, inside the window", seen(ex(72.5)), ex(30), 42500 * time.Microsecond, 1, true},
		{"between two accepted ones", seen(ex(0), ex(145)), ex(72.5), 72500 * time.Microsecond, 1, false},
		{"nearest of several", seen(ex(0), ex(72.5), ex(145)), ex(150), 5 * time.Millisecond, 3, true},
		{"uncertain, early enough", seen(span{at: at(130), after: at(-300)}), ex(148), 448 * time.Millisecond, 1, false},
		{"this one uncertain, early enough", seen(ex(0)), span{at: at(20), after: at(-100)}, 100 * time.Millisecond, 1, false},
		{"uncertain but too close however it lies", seen(span{at: at(10), after: at(0)}), ex(30), 30 * time.Millisecond, 1, true},
		{"both uncertain", seen(span{at: at(10), after: at(0)}), span{at: at(20), after: at(5)}, 20 * time.Millisecond, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			near, got, found := nearestIdentify(tc.accepted, tc.at)
			if found != (tc.conn != 0) || got != tc.want || near.conn != tc.conn {
				t.Fatalf("nearestIdentify = conn %d, %v, %v; want conn %d, %v", near.conn, got, found, tc.conn, tc.want)
			}
			if limited := found && got < window; limited != tc.limited {
				t.Fatalf("rate limited %v, want %v", limited, tc.limited)
			}
		})
	}
}

func TestRememberIdentifyKeepsTheLatest(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var acc []seenIdentify
	for i := range 3 * identifyHistory {
		acc = rememberIdentify(acc, seenIdentify{span: exactly(t0.Add(time.Duration(i) * time.Second)), conn: int64(i)})
	}
	if len(acc) != identifyHistory {
		t.Fatalf("kept %d, want %d", len(acc), identifyHistory)
	}
	for i, a := range acc {
		if want := t0.Add(time.Duration(2*identifyHistory+i) * time.Second); !a.at.Equal(want) || a.conn != int64(2*identifyHistory+i) {
			t.Fatalf("kept[%d] = %+v, want %v", i, a, want)
		}
	}
}

// clientFrame is a masked client frame (RFC 6455) with the given first
// byte (FIN and opcode) and payload length.
func clientFrame(b0 byte, n int) []byte {
	var f []byte
	switch {
	case n < 126:
		f = []byte{b0, 0x80 | byte(n)}
	case n < 1<<16:
		f = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		f = []byte{b0, 0x80 | 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	f = append(f, 1, 2, 3, 4) // the mask
	return append(f, make([]byte, n)...)
}

// frameEnds finds the last byte of each data message in a client's
// stream, whatever the reads' boundaries: control frames and unfinished
// fragments end none.
func TestFrameEnds(t *testing.T) {
	const (
		text  = 0x81 // FIN, text
		first = 0x01 // text, more to come
		cont  = 0x80 // FIN, continuation
		ping  = 0x89 // FIN, ping
	)
	cat := func(fs ...[]byte) []byte {
		var out []byte
		for _, f := range fs {
			out = append(out, f...)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		stream []byte
		want   []int // offsets just past each message's last byte
	}{
		{"one small frame", clientFrame(text, 5), []int{11}},
		{"empty text frame", clientFrame(text, 0), []int{6}},
		{"two frames", cat(clientFrame(text, 5), clientFrame(text, 3)), []int{11, 20}},
		{"16-bit length", clientFrame(text, 300), []int{308}},
		{"64-bit length", clientFrame(text, 70000), []int{70014}},
		{"a ping between messages ends none", cat(clientFrame(text, 2), clientFrame(ping, 4), clientFrame(text, 1)), []int{8, 25}},
		{"fragmented: the final fragment ends it", cat(clientFrame(first, 4), clientFrame(ping, 0), clientFrame(cont, 4)), []int{26}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 7, len(tc.stream)} {
				var f frameEnds
				var got []int
				for off := 0; off < len(tc.stream); off += chunk {
					end := min(off+chunk, len(tc.stream))
					f.feed(tc.stream[off:end], func(i int) { got = append(got, off+i) })
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("reads of %d bytes: ends %v, want %v", chunk, got, tc.want)
				}
			}
		})
	}
}

// Only the real clock can be compared with the kernel's receive times: a
// fake clock's server times frames when it reads them.
func TestIsRealClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		clk  clock.Clock
		want bool
	}{
		{"clock.Real", clock.Real{}, true},
		{"the default", clock.Or(nil), true},
		{"clock.NewFake", clock.NewFake(time.Time{}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isRealClock(tc.clk); got != tc.want {
				t.Fatalf("isRealClock = %v, want %v", got, tc.want)
			}
		})
	}
}

// With a fake clock the fake times every frame when it reads it, at the
// fake clock's time, whatever the kernel says.
func TestFakeClockServerTimesFramesByItsClock(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	srv := newTestServer(t, Options{Clock: fc, HeartbeatTimeout: -1})
	c := dialRaw(t, srv, "/gateway", "")
	c.identify(srv, [2]int{0, 1})
	ids := srv.Ledger().Identifies()
	if len(ids) != 1 || !ids[0].At.Equal(fc.Now()) {
		t.Fatalf("identifies %+v, want one at the fake clock's %v", ids, fc.Now())
	}
}
