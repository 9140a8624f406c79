package discordtest

import (
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
// accepted IDENTIFY) flagged the "handled out of order" rows.
func TestNearestIdentify(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const window = 62500 * time.Microsecond
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	for _, tc := range []struct {
		name     string
		accepted []time.Time
		at       time.Time
		want     time.Duration
		found    bool
		limited  bool // gap < window: op 9 and a violation
	}{
		{"first IDENTIFY of the bucket", nil, at(0), 0, false, false},
		{"one window later", []time.Time{at(0)}, at(62.5), window, true, false},
		{"inside the window", []time.Time{at(0)}, at(40), 40 * time.Millisecond, true, true},
		{"handled out of order, a window before", []time.Time{at(72.5)}, at(0), 72500 * time.Microsecond, true, false},
		{"handled out of order, inside the window", []time.Time{at(72.5)}, at(30), 42500 * time.Microsecond, true, true},
		{"between two accepted ones", []time.Time{at(0), at(145)}, at(72.5), 72500 * time.Microsecond, true, false},
		{"nearest of several", []time.Time{at(0), at(72.5), at(145)}, at(150), 5 * time.Millisecond, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found := nearestIdentify(tc.accepted, tc.at)
			if found != tc.found || got != tc.want {
				t.Fatalf("nearestIdentify = %v, %v; want %v, %v", got, found, tc.want, tc.found)
			}
			if limited := found && got < window; limited != tc.limited {
				t.Fatalf("rate limited %v, want %v", limited, tc.limited)
			}
		})
	}
}

func TestRememberIdentifyKeepsTheLatest(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var acc []time.Time
	for i := range 3 * identifyHistory {
		acc = rememberIdentify(acc, t0.Add(time.Duration(i)*time.Second))
	}
	if len(acc) != identifyHistory {
		t.Fatalf("kept %d, want %d", len(acc), identifyHistory)
	}
	for i, ts := range acc {
		if want := t0.Add(time.Duration(2*identifyHistory+i) * time.Second); !ts.Equal(want) {
			t.Fatalf("kept[%d] = %v, want %v", i, ts, want)
		}
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
