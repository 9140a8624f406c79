package discordtest

import (
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// How the fake times a client's frame.
//
// A frame is timed when it arrived, not when the fake got round to it:
// between the two lie the reader goroutine waking up and, before the
// identify check used to read the clock, decoding and redacting the frame
// and waiting for the ledger's lock. On a busy machine (the race detector,
// two cores shared by several test binaries) that lag was measured at up
// to 37 ms for the wake-up and 72 ms for the processing, the same absolute
// amount at any Scale, while a scaled identify window is 62.5 ms at Scale
// 80. An IDENTIFY the fake got to late and the next one it got to on time
// looked closer than the window although the client had spaced them a
// whole window apart.
//
// So every frame is stamped once, right after it was read and before any
// processing, and on Linux with the server on the real clock the stamp is
// moved back to the kernel's receive time of its bytes (SO_TIMESTAMPNS):
// on loopback the kernel stamps a segment inside the client's send call,
// so the fake sees the moment the client sent the frame. With another
// clock (clock.NewFake), on other systems, or when the kernel gave no
// stamp for the bytes, the time the frame was read is used.

// maxArrivalLag bounds how far back a kernel stamp may move a frame's
// time. A larger lag means the wall clock was stepped between the stamp
// and the read (the kernel stamps on the wall clock), so the read time is
// used instead.
const maxArrivalLag = time.Minute

// arrivalSource is a server-side connection that knows when the bytes
// it last returned reached the socket (arrivalConn on Linux).
type arrivalSource interface {
	// track makes later reads record the kernel's receive time. Called
	// once, after the WebSocket upgrade and before the first frame.
	track()
	// lastArrival returns the kernel's receive time (wall clock) of the
	// latest bytes read, and false when the kernel gave none for them.
	lastArrival() (time.Time, bool)
}

// arrivalTime returns when a frame read at read (the server's clock)
// arrived, given the kernel's receive time of its bytes (zero when
// unknown): read moved back by the lag between the two, measured on the
// wall clock. It never returns a time after read, and returns read when
// the kernel stamp is unknown, later than read, or more than maxArrivalLag
// before it.
func arrivalTime(read, kernel time.Time) time.Time {
	if kernel.IsZero() {
		return read
	}
	lag := read.Sub(kernel)
	if lag <= 0 || lag > maxArrivalLag {
		return read
	}
	return read.Add(-lag)
}

// isRealClock reports whether clk is the wall clock, the only one the
// kernel's receive times can be compared with.
func isRealClock(clk clock.Clock) bool {
	_, ok := clk.(clock.Real)
	return ok
}

// arrival returns when the frame the reader just read arrived: the
// server's clock now, moved back to the kernel's receive time when the
// server runs on the real clock and the connection has one.
func (c *gwConn) arrival() time.Time {
	now := c.srv.clk.Now()
	if !c.srv.realClock || c.stamps == nil {
		return now
	}
	k, ok := c.stamps.lastArrival()
	if !ok {
		return now
	}
	return arrivalTime(now, k)
}

// identifyHistory is how many accepted IDENTIFY arrivals the fake keeps
// per bucket for the identify check.
const identifyHistory = 8

// nearestIdentify returns the smallest distance between at and an
// accepted IDENTIFY arrival in accepted, in either direction, and false
// when there is none. Readers of different connections run side by side,
// so the fake may handle an IDENTIFY after one that arrived later than it:
// the check compares arrivals, not the order they were handled in.
func nearestIdentify(accepted []time.Time, at time.Time) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, t := range accepted {
		d := at.Sub(t)
		if d < 0 {
			d = -d
		}
		if !found || d < best {
			best, found = d, true
		}
	}
	return best, found
}

// rememberIdentify adds an accepted arrival to a bucket's history,
// keeping the most recent identifyHistory ones.
func rememberIdentify(accepted []time.Time, at time.Time) []time.Time {
	accepted = append(accepted, at)
	if n := len(accepted); n > identifyHistory {
		accepted = append(accepted[:0], accepted[n-identifyHistory:]...)
	}
	return accepted
}
