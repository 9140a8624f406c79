package discordtest

import (
	"encoding/binary"
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
//
// The kernel gives one time per read, that of the last segment the read
// returned (and it merges a segment into the one queued before it, the
// later time winning). A reader that fell behind gets a frame in the same
// read as bytes the client sent later: the soak saw an IDENTIFY read with
// the heartbeat that followed it, timed hundreds of milliseconds late,
// next to another shard's IDENTIFY sent a whole window after it. So a
// frame whose last byte is not the last byte of its read (or of a read
// that filled the buffer) has an uncertain arrival: at most the kernel's
// time, at least the arrival of the frame before it on the connection (or
// the upgrade request, for the first). Checks that must not blame a
// client for the fake's own lag (the identify window, the send limit)
// take the arrangement inside those bounds most favourable to the client.

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
	// messageArrival returns, for the next data message read (in order,
	// once each), the kernel's receive time of the read that returned its
	// last byte, and whether that time is the message's own (no later
	// byte came with it). ok is false when the kernel gave no time.
	messageArrival() (k time.Time, own, ok bool)
}

// span is when a client frame arrived: at exactly at when after equals
// at, otherwise at some time from after to at.
type span struct{ at, after time.Time }

// exactly returns the span of a frame that arrived at t.
func exactly(t time.Time) span { return span{at: t, after: t} }

// farthest returns how far apart two frames can have arrived, given their
// spans: the arrangement most favourable to a client that spaced them.
func farthest(a, b span) time.Duration {
	return max(a.at.Sub(b.after), b.at.Sub(a.after))
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

// arrival returns when the message the reader just read arrived: the
// server's clock now, moved back to the kernel's receive time when the
// server runs on the real clock and the connection has one; a span from
// the arrival of the message before it when that time may be later bytes'
// (see above). Called once per message, in order, by the reader.
func (c *gwConn) arrival() span {
	now := c.srv.clk.Now()
	if !c.srv.realClock || c.stamps == nil {
		return exactly(now)
	}
	k, own, ok := c.stamps.messageArrival()
	if !ok {
		return exactly(now)
	}
	s := exactly(arrivalTime(now, k))
	if !own {
		s.after = c.lastAfter
		if s.after.IsZero() || s.after.After(s.at) {
			s.after = s.at
		}
	}
	c.lastAfter = s.after
	return s
}

// frameEnds finds where each data message ends in the bytes a client
// sends after the WebSocket upgrade (RFC 6455 framing): at the last byte
// of a frame with FIN set and a data opcode (continuation, text, binary).
// Control frames (close, ping, pong) end no message. It keeps its state
// between calls, so a frame may span reads.
type frameEnds struct {
	head   [14]byte // the frame head read so far
	n      int
	left   uint64 // payload bytes left in the current frame
	inBody bool
	ends   bool // the current frame ends a data message
}

// feed parses b, the next bytes of the stream, and calls end(i) for each
// data message whose last byte is b[i-1].
func (f *frameEnds) feed(b []byte, end func(i int)) {
	for i := 0; i < len(b); {
		if f.inBody {
			take := min(uint64(len(b)-i), f.left)
			i += int(take)
			f.left -= take
			if f.left == 0 {
				f.inBody = false
				if f.ends {
					end(i)
				}
			}
			continue
		}
		f.head[f.n] = b[i]
		f.n++
		i++
		need := headLen(f.head[:f.n])
		if need == 0 || f.n < need {
			continue
		}
		h := f.head[:f.n]
		f.ends = h[0]&0x80 != 0 && h[0]&0x0f < 8
		switch l := h[1] & 0x7f; l {
		case 126:
			f.left = uint64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			f.left = binary.BigEndian.Uint64(h[2:10])
		default:
			f.left = uint64(l)
		}
		f.n = 0
		if f.left > 0 {
			f.inBody = true
		} else if f.ends {
			end(i)
		}
	}
}

// headLen returns the length of the frame head that h begins, or 0 while
// h is too short to tell.
func headLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // the client's mask
	}
	return n
}

// identifyHistory is how many accepted IDENTIFY arrivals the fake keeps
// per bucket for the identify check.
const identifyHistory = 8

// seenIdentify is an accepted IDENTIFY the identify check compares later
// ones with.
type seenIdentify struct {
	span
	conn  int64
	shard int
}

// nearestIdentify returns the accepted IDENTIFY nearest to one that
// arrived within at, and how far apart the two can have arrived (farthest),
// in either direction, and false when there is none. Readers of different
// connections run side by side, so the fake may handle an IDENTIFY after
// one that arrived later than it: the check compares arrivals, not the
// order they were handled in.
func nearestIdentify(accepted []seenIdentify, at span) (seenIdentify, time.Duration, bool) {
	var near seenIdentify
	best, found := time.Duration(0), false
	for _, a := range accepted {
		d := farthest(a.span, at)
		if !found || d < best {
			near, best, found = a, d, true
		}
	}
	return near, best, found
}

// rememberIdentify adds an accepted IDENTIFY to a bucket's history,
// keeping the most recent identifyHistory ones.
func rememberIdentify(accepted []seenIdentify, a seenIdentify) []seenIdentify {
	accepted = append(accepted, a)
	if n := len(accepted); n > identifyHistory {
		accepted = append(accepted[:0], accepted[n-identifyHistory:]...)
	}
	return accepted
}
