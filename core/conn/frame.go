package conn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file holds the gateway tap's RFC 6455 frame parser. It follows one
// direction of a connection: first the HTTP upgrade message, then frames.
// It is fed the bytes as they pass (any split, any size), never changes
// them, keeps no payload except control-frame payloads (at most 125
// bytes) and the scanner's captured fields, and reports through a
// frameSink.

// Opcode is a WebSocket frame opcode (RFC 6455 section 5.2).
type Opcode uint8

// The opcodes RFC 6455 defines.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// String returns the opcode's name, e.g. "text", or "reserved(0x3)".
func (o Opcode) String() string {
	switch o {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("reserved(0x%X)", uint8(o))
}

// Control reports whether o is a control opcode (close, ping, pong or a
// reserved control opcode).
func (o Opcode) Control() bool { return o&0x8 != 0 }

// Frame is one WebSocket frame header as the tap saw it.
type Frame struct {
	Fin    bool
	RSV    uint8 // the three reserved bits, RSV1 as 0b100
	Opcode Opcode
	Masked bool
	// Length is the payload length from the header.
	Length uint64
}

// ErrMalformedFrame is wrapped by the errors of KindMalformed
// observations about WebSocket framing.
var ErrMalformedFrame = errors.New("malformed WebSocket frame")

// ErrMalformedPayload is wrapped by the errors of KindMalformed
// observations about a text message that is not a gateway payload.
var ErrMalformedPayload = errMalformedPayload

// maxHTTPHeader bounds the upgrade request or response the parser skips.
const maxHTTPHeader = 64 << 10

type streamState uint8

const (
	stHTTP    streamState = iota // in the upgrade request or response
	stHeader                     // reading a frame header
	stPayload                    // reading a frame payload
	stLost                       // framing lost; only counting bytes
)

// payloadKind says what to do with the current frame's payload.
type payloadKind uint8

const (
	plSkip    payloadKind = iota // count only
	plText                       // feed to the scanner
	plBinary                     // count as a binary message
	plControl                    // keep (up to 125 bytes)
)

// frameSink receives what a stream parses. Calls happen on the goroutine
// feeding the stream, in stream order.
type frameSink interface {
	upgrade(d Direction, status int)
	frame(d Direction, f Frame)
	message(d Direction, r *scanResult, length int64)
	binaryMessage(d Direction, length int64)
	closeFrame(d Direction, code int, reason string)
	malformed(d Direction, err error)
}

// stream parses one direction.
type stream struct {
	dir  Direction
	sink frameSink

	state streamState

	// HTTP preamble.
	httpLen    int
	httpMatch  int // bytes of "\r\n\r\n" matched so far
	statusLine [16]byte
	statusLen  int

	// Frame header.
	hdr     [14]byte
	hdrLen  int
	hdrNeed int

	// Current frame.
	cur       Frame
	remaining uint64
	maskKey   [4]byte
	maskPos   uint64
	kind      payloadKind

	// Current (possibly fragmented) data message.
	inMessage  bool
	msgOpcode  Opcode
	msgLen     int64
	msgDecoded bool // text message fed to the scanner

	ctl    [125]byte
	ctlLen int

	scratch [512]byte // unmasking buffer
	scan    scanner
	res     scanResult // the last message's fields, reused

	lost int64 // bytes passed after framing was lost
}

// newStream returns a stream for direction d. A stream for bytes that
// start with frames (no HTTP upgrade) sets skipHTTP.
func newStream(d Direction, sink frameSink, skipHTTP bool) *stream {
	s := &stream{dir: d, sink: sink}
	if skipHTTP {
		s.state = stHeader
	}
	return s
}

func (s *stream) malformed(format string, args ...any) {
	s.sink.malformed(s.dir, fmt.Errorf("%w: %s: %s", ErrMalformedFrame, s.dir, fmt.Sprintf(format, args...)))
}

// lose gives up on framing for the rest of the connection.
func (s *stream) lose(format string, args ...any) {
	s.malformed(format+"; the tap stops parsing this direction", args...)
	s.state = stLost
}

// feed parses the next bytes of the direction.
func (s *stream) feed(b []byte) {
	for len(b) > 0 {
		switch s.state {
		case stHTTP:
			b = b[s.feedHTTP(b):]
		case stHeader:
			b = b[s.feedHeader(b):]
		case stPayload:
			n := uint64(len(b))
			if n > s.remaining {
				n = s.remaining
			}
			s.feedPayload(b[:n])
			s.remaining -= n
			b = b[n:]
			if s.remaining == 0 {
				s.endFrame()
			}
		case stLost:
			s.lost += int64(len(b))
			return
		}
	}
}

// feedHTTP consumes the upgrade message up to and including its blank
// line, and returns how many bytes it used.
func (s *stream) feedHTTP(b []byte) int {
	const end = "\r\n\r\n"
	for i, c := range b {
		if s.statusLen < len(s.statusLine) && s.httpLen == s.statusLen {
			s.statusLine[s.statusLen] = c
			s.statusLen++
		}
		s.httpLen++
		switch {
		case c == end[s.httpMatch]:
			s.httpMatch++
		case c == '\r':
			s.httpMatch = 1
		default:
			s.httpMatch = 0
		}
		if s.httpMatch == len(end) {
			s.endHTTP()
			return i + 1
		}
		if s.httpLen > maxHTTPHeader {
			s.lose("upgrade message longer than %d bytes", maxHTTPHeader)
			return i + 1
		}
	}
	return len(b)
}

func (s *stream) endHTTP() {
	s.state = stHeader
	if s.dir == Sent {
		return
	}
	// "HTTP/1.1 101 Switching Protocols": the status is the three digits
	// after the first space.
	line := s.statusLine[:s.statusLen]
	status := 0
	if sp := indexByte(line, ' '); sp >= 0 && sp+4 <= len(line) {
		for _, c := range line[sp+1 : sp+4] {
			if c < '0' || c > '9' {
				status = 0
				break
			}
			status = status*10 + int(c-'0')
		}
	}
	s.sink.upgrade(s.dir, status)
	if status != 101 {
		// What follows is an HTTP body, not frames.
		s.state = stLost
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// feedHeader gathers header bytes and returns how many it used.
func (s *stream) feedHeader(b []byte) int {
	used := 0
	for used < len(b) {
		if s.hdrLen < 2 {
			s.hdr[s.hdrLen] = b[used]
			s.hdrLen++
			used++
			if s.hdrLen == 2 {
				s.hdrNeed = 2
				switch s.hdr[1] & 0x7F {
				case 126:
					s.hdrNeed += 2
				case 127:
					s.hdrNeed += 8
				}
				if s.hdr[1]&0x80 != 0 {
					s.hdrNeed += 4
				}
			} else {
				continue
			}
		} else {
			n := copy(s.hdr[s.hdrLen:s.hdrNeed], b[used:])
			s.hdrLen += n
			used += n
		}
		if s.hdrLen == s.hdrNeed {
			s.beginFrame()
			return used
		}
	}
	return used
}

// beginFrame decodes the complete header in s.hdr and sets up the payload.
func (s *stream) beginFrame() {
	h := s.hdr[:s.hdrLen]
	s.hdrLen = 0
	f := Frame{
		Fin:    h[0]&0x80 != 0,
		RSV:    (h[0] >> 4) & 0x7,
		Opcode: Opcode(h[0] & 0x0F),
		Masked: h[1]&0x80 != 0,
		Length: uint64(h[1] & 0x7F),
	}
	p := 2
	switch f.Length {
	case 126:
		f.Length = uint64(binary.BigEndian.Uint16(h[2:4]))
		p = 4
	case 127:
		f.Length = binary.BigEndian.Uint64(h[2:10])
		p = 10
		if f.Length>>63 != 0 {
			s.lose("64-bit payload length with the most significant bit set")
			return
		}
	}
	if f.Masked {
		copy(s.maskKey[:], h[p:p+4])
	}
	s.cur = f
	s.remaining = f.Length
	s.maskPos = 0
	s.sink.frame(s.dir, f)

	switch {
	case s.dir == Sent && !f.Masked:
		s.malformed("client frame not masked")
	case s.dir == Received && f.Masked:
		s.malformed("server frame masked")
	}
	if f.RSV&0x3 != 0 {
		s.malformed("reserved bits RSV2/RSV3 set (0b%03b)", f.RSV)
	}

	s.kind = plSkip
	switch op := f.Opcode; {
	case op.Control():
		if op != OpClose && op != OpPing && op != OpPong {
			s.malformed("reserved control opcode 0x%X", uint8(op))
			break
		}
		if !f.Fin {
			s.malformed("fragmented %s frame", op)
		}
		if f.Length > 125 {
			s.malformed("%s frame payload of %d bytes (at most 125)", op, f.Length)
		}
		s.kind = plControl
		s.ctlLen = 0
	case op == OpContinuation:
		if !s.inMessage {
			s.malformed("continuation frame without a message to continue")
			break
		}
		s.kind = s.messageKind()
	case op == OpText || op == OpBinary:
		if s.inMessage {
			s.malformed("new %s message before the fragmented %s message ended", op, s.msgOpcode)
		}
		s.inMessage = true
		s.msgOpcode = op
		s.msgLen = 0
		s.msgDecoded = false
		if op == OpText && f.RSV&0x4 == 0 {
			s.msgDecoded = true
			s.scan.reset()
		} else if op == OpText {
			s.malformed("compressed (RSV1) text message; the tap does not negotiate compression")
		}
		s.kind = s.messageKind()
	default:
		s.malformed("reserved data opcode 0x%X", uint8(op))
	}
	if s.remaining == 0 {
		s.endFrame()
		return
	}
	s.state = stPayload
}

func (s *stream) messageKind() payloadKind {
	if s.msgDecoded {
		return plText
	}
	return plBinary
}

// feedPayload handles a piece of the current frame's payload.
func (s *stream) feedPayload(b []byte) {
	if s.kind == plBinary || s.kind == plText {
		s.msgLen += int64(len(b))
	}
	if s.kind == plSkip || s.kind == plBinary {
		s.maskPos += uint64(len(b))
		return
	}
	for len(b) > 0 {
		chunk := b
		if s.cur.Masked {
			n := copy(s.scratch[:], b)
			for i := 0; i < n; i++ {
				s.scratch[i] ^= s.maskKey[(s.maskPos+uint64(i))&3]
			}
			chunk = s.scratch[:n]
		}
		s.maskPos += uint64(len(chunk))
		b = b[len(chunk):]
		if s.kind == plText {
			s.scan.feed(chunk)
		} else {
			s.ctlLen += copy(s.ctl[s.ctlLen:], chunk)
		}
	}
}

// endFrame finishes the current frame and, with FIN, its message.
func (s *stream) endFrame() {
	s.state = stHeader
	f := s.cur
	if f.Opcode == OpClose {
		s.endClose()
		return
	}
	if f.Opcode.Control() || !f.Fin || !s.inMessage {
		return
	}
	if f.Opcode != OpContinuation && f.Opcode != OpText && f.Opcode != OpBinary {
		return
	}
	s.inMessage = false
	if !s.msgDecoded {
		s.sink.binaryMessage(s.dir, s.msgLen)
		return
	}
	if err := s.scan.finishInto(&s.res); err != nil {
		s.sink.malformed(s.dir, fmt.Errorf("%s: %w", s.dir, err))
		return
	}
	s.sink.message(s.dir, &s.res, s.msgLen)
}

// endClose reports a close frame: code 1005 when it has no code, as RFC
// 6455 section 7.1.5 says.
func (s *stream) endClose() {
	p := s.ctl[:s.ctlLen]
	switch {
	case len(p) == 0:
		s.sink.closeFrame(s.dir, 1005, "")
	case len(p) == 1:
		s.malformed("close frame with a 1-byte payload")
		s.sink.closeFrame(s.dir, 1005, "")
	default:
		code := int(binary.BigEndian.Uint16(p[:2]))
		reason := p[2:]
		if !utf8.Valid(reason) {
			s.malformed("close reason is not valid UTF-8")
			s.sink.closeFrame(s.dir, code, strings.ToValidUTF8(string(reason), "\uFFFD"))
			return
		}
		s.sink.closeFrame(s.dir, code, string(reason))
	}
}
