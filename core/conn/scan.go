package conn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file holds the gateway tap's payload scanner: a streaming, lenient
// JSON reader that pulls the few fields lifeline needs out of a gateway
// payload without buffering the payload and without allocating. It is fed
// the payload in whatever pieces the WebSocket frames and TCP reads
// deliver.
//
// It reads the top-level object's "op", "s", "t" and "d". When d is an
// object it reads these keys directly inside it (depth 2):
// heartbeat_interval, session_id, resume_gateway_url, seq, intents, shard
// and compress. Every other value, at any depth, is skipped byte by byte
// and never copied, so the IDENTIFY and RESUME "token" is never held. It
// is not a validator: it checks only the structure it walks (objects at
// depths 1 and 2, strings, bracket nesting) and skips the rest.

// scanField names a captured value.
type scanField uint8

const (
	fieldNone scanField = iota
	fieldOp
	fieldS
	fieldT
	fieldD // only when d is not an object
	fieldHeartbeatInterval
	fieldSessionID
	fieldResumeURL
	fieldSeq
	fieldIntents
	fieldShard
	fieldCompress
	numScanFields
)

// maxScanValue bounds each captured value. Session ids are 32 bytes and
// resume URLs about 40; a longer value is marked overflowed and ignored.
const maxScanValue = 256

// maxScanKey bounds a key worth comparing; longer keys are none of ours.
const maxScanKey = 24

type scanPhase uint8

const (
	phStart     scanPhase = iota // before the top-level '{'
	phKeyOrEnd                   // expecting a key or '}'
	phKey                        // inside a key string
	phColon                      // expecting ':'
	phValue                      // expecting a value
	phString                     // inside a string value
	phScalar                     // inside a number, true, false or null
	phContainer                  // inside an array or object value being skipped or captured
	phAfter                      // after a value: expecting ',' or '}'
	phDone                       // after the top-level '}'
	phFailed                     // gave up on this payload
)

// errMalformedPayload is wrapped by the scanner's errors.
var errMalformedPayload = errors.New("malformed gateway payload")

// scanner is reset per message and fed with feed; finish ends the
// message. The zero value is ready after reset.
type scanner struct {
	phase    scanPhase
	level    uint8 // 1: top-level object; 2: inside d's object
	escape   bool  // the previous string byte was a backslash
	inStr    bool  // phContainer: inside a string
	nest     int   // phContainer: bracket depth
	keyLen   int
	key      [maxScanKey]byte
	cur      scanField
	offset   int // bytes fed since reset, for error messages
	failMsg  string
	failAt   int
	dIsObj   bool
	captured [numScanFields]bool
	overflow [numScanFields]bool
	lens     [numScanFields]uint16
	vals     [numScanFields][maxScanValue]byte
}

func (s *scanner) reset() {
	s.phase = phStart
	s.level = 0
	s.escape = false
	s.inStr = false
	s.nest = 0
	s.keyLen = 0
	s.cur = fieldNone
	s.offset = 0
	s.failMsg = ""
	s.dIsObj = false
	s.captured = [numScanFields]bool{}
	s.overflow = [numScanFields]bool{}
}

func (s *scanner) fail(msg string, at int) {
	s.phase = phFailed
	s.failMsg = msg
	s.failAt = at
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// lookupField maps a key at a level to the field it captures.
func lookupField(level uint8, key []byte) scanField {
	if level == 1 {
		switch string(key) {
		case "op":
			return fieldOp
		case "s":
			return fieldS
		case "t":
			return fieldT
		case "d":
			return fieldD
		}
		return fieldNone
	}
	switch string(key) {
	case "heartbeat_interval":
		return fieldHeartbeatInterval
	case "session_id":
		return fieldSessionID
	case "resume_gateway_url":
		return fieldResumeURL
	case "seq":
		return fieldSeq
	case "intents":
		return fieldIntents
	case "shard":
		return fieldShard
	case "compress":
		return fieldCompress
	}
	return fieldNone
}

func (s *scanner) startValue(c byte) {
	f := s.cur
	if f == fieldNone {
		return
	}
	s.captured[f] = true
	s.overflow[f] = false
	s.lens[f] = 0
	if c != 0 {
		s.capture(c)
	}
}

func (s *scanner) capture(c byte) {
	f := s.cur
	if f == fieldNone {
		return
	}
	n := s.lens[f]
	if int(n) >= maxScanValue {
		s.overflow[f] = true
		return
	}
	s.vals[f][n] = c
	s.lens[f] = n + 1
}

// closeObject handles a '}' that ends the object at the current level.
func (s *scanner) closeObject() {
	if s.level == 2 {
		s.level = 1
		s.phase = phAfter
		return
	}
	s.phase = phDone
}

// feed scans the next piece of the payload.
func (s *scanner) feed(b []byte) {
	base := s.offset
	s.offset += len(b)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch s.phase {
		case phFailed:
			return
		case phStart:
			if isJSONSpace(c) {
				continue
			}
			if c != '{' {
				s.fail("payload is not a JSON object", base+i)
				return
			}
			s.level = 1
			s.phase = phKeyOrEnd
		case phKeyOrEnd:
			if isJSONSpace(c) {
				continue
			}
			switch c {
			case '"':
				s.phase = phKey
				s.keyLen = 0
				s.escape = false
			case '}':
				s.closeObject()
			default:
				s.fail("expected a key or '}'", base+i)
				return
			}
		case phKey:
			if s.escape {
				s.escape = false
			} else if c == '\\' {
				s.escape = true
			} else if c == '"' {
				s.phase = phColon
				continue
			}
			if s.keyLen < maxScanKey {
				s.key[s.keyLen] = c
			}
			s.keyLen++
		case phColon:
			if isJSONSpace(c) {
				continue
			}
			if c != ':' {
				s.fail("expected ':' after a key", base+i)
				return
			}
			s.cur = fieldNone
			if s.keyLen <= maxScanKey {
				s.cur = lookupField(s.level, s.key[:s.keyLen])
			}
			s.phase = phValue
		case phValue:
			if isJSONSpace(c) {
				continue
			}
			if s.level == 1 && s.cur == fieldD && c == '{' {
				s.dIsObj = true
				s.captured[fieldD] = false
				s.level = 2
				s.phase = phKeyOrEnd
				continue
			}
			if s.level == 1 && s.cur == fieldD {
				s.dIsObj = false
			}
			switch {
			case c == '"':
				s.startValue(0)
				s.phase = phString
				s.escape = false
			case c == '{' || c == '[':
				s.startValue(c)
				s.phase = phContainer
				s.nest = 1
				s.inStr = false
				s.escape = false
			case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
				s.startValue(c)
				s.phase = phScalar
			default:
				s.fail("expected a value", base+i)
				return
			}
		case phString:
			if !s.escape && s.cur == fieldNone {
				// Fast path: jump to the next quote or backslash.
				i = skipStringBody(b, i)
				if i == len(b) {
					return
				}
				c = b[i]
			}
			if s.escape {
				s.escape = false
			} else if c == '\\' {
				s.escape = true
			} else if c == '"' {
				s.phase = phAfter
				continue
			}
			s.capture(c)
		case phScalar:
			if isJSONSpace(c) || c == ',' || c == '}' || c == ']' {
				s.phase = phAfter
				i-- // let phAfter see the delimiter
				continue
			}
			s.capture(c)
		case phContainer:
			if s.inStr && !s.escape && s.cur == fieldNone {
				i = skipStringBody(b, i)
				if i == len(b) {
					return
				}
				c = b[i]
			}
			s.capture(c)
			if s.inStr {
				if s.escape {
					s.escape = false
				} else if c == '\\' {
					s.escape = true
				} else if c == '"' {
					s.inStr = false
				}
				continue
			}
			switch c {
			case '"':
				s.inStr = true
			case '{', '[':
				s.nest++
			case '}', ']':
				s.nest--
				if s.nest == 0 {
					s.phase = phAfter
				}
			}
		case phAfter:
			if isJSONSpace(c) {
				continue
			}
			switch c {
			case ',':
				s.phase = phKeyOrEnd
			case '}':
				s.closeObject()
			default:
				s.fail("expected ',' or '}' after a value", base+i)
				return
			}
		case phDone:
			if !isJSONSpace(c) {
				s.fail("data after the payload object", base+i)
				return
			}
		}
	}
}

// skipStringBody returns the index of the first '"' or '\\' in b at or
// after i, or len(b): the bytes of a string that need no attention.
func skipStringBody(b []byte, i int) int {
	q := bytes.IndexByte(b[i:], '"')
	if q < 0 {
		q = len(b) - i
	}
	if e := bytes.IndexByte(b[i:i+q], '\\'); e >= 0 {
		q = e
	}
	return i + q
}

// scanResult is what finish extracts. Strings are freshly allocated only
// when set; the scanner's buffers are reused.
type scanResult struct {
	op, s, seq         int64
	hasOp, hasS        bool
	hasSeq             bool
	t                  []byte // view into the scanner; copy before keeping
	dIsObj             bool
	dBool, hasDBool    bool
	dInt               int64
	hasDInt            bool
	heartbeatMS        float64
	hasHeartbeat       bool
	sessionID          []byte // view, unquoted raw (may hold escapes)
	sessionIDEscaped   bool
	resumeURL          []byte // view
	resumeURLEscaped   bool
	intents            int64
	hasIntents         bool
	shard              [2]int
	hasShard           bool
	compress           bool
	hasCompress        bool
	fieldErrs          int // captured fields whose value had the wrong type or overflowed
	firstFieldErrField scanField
}

func (s *scanner) val(f scanField) ([]byte, bool) {
	if !s.captured[f] {
		return nil, false
	}
	if s.overflow[f] {
		return nil, false
	}
	return s.vals[f][:s.lens[f]], true
}

// finish ends the message and returns what it found. It returns an
// error wrapping errMalformedPayload when the payload was not a complete
// object.
func (s *scanner) finish() (scanResult, error) {
	var r scanResult
	err := s.finishInto(&r)
	return r, err
}

// finishInto is finish writing into r, which it resets first, so a caller
// can keep one scanResult and not allocate per message.
func (s *scanner) finishInto(r *scanResult) error {
	*r = scanResult{}
	if s.phase == phFailed {
		return fmt.Errorf("%w: %s at byte %d", errMalformedPayload, s.failMsg, s.failAt)
	}
	if s.phase != phDone {
		return fmt.Errorf("%w: payload ended after %d bytes inside the JSON object", errMalformedPayload, s.offset)
	}
	bad := func(f scanField) {
		if r.fieldErrs == 0 {
			r.firstFieldErrField = f
		}
		r.fieldErrs++
	}
	for f := fieldOp; f < numScanFields; f++ {
		if s.captured[f] && s.overflow[f] {
			bad(f)
		}
	}
	if v, ok := s.val(fieldOp); ok {
		if r.op, r.hasOp = parseJSONInt(v); !r.hasOp {
			bad(fieldOp)
		}
	}
	if v, ok := s.val(fieldS); ok && !isNull(v) {
		if r.s, r.hasS = parseJSONInt(v); !r.hasS {
			bad(fieldS)
		}
	}
	if v, ok := s.val(fieldT); ok && !isNull(v) {
		r.t = v
	}
	r.dIsObj = s.dIsObj
	if v, ok := s.val(fieldD); ok && !s.dIsObj {
		switch {
		case string(v) == "true":
			r.dBool, r.hasDBool = true, true
		case string(v) == "false":
			r.dBool, r.hasDBool = false, true
		case isNull(v):
		default:
			r.dInt, r.hasDInt = parseJSONInt(v)
		}
	}
	if !s.dIsObj {
		return nil
	}
	if v, ok := s.val(fieldHeartbeatInterval); ok {
		if n, ok := parseJSONInt(v); ok {
			r.heartbeatMS, r.hasHeartbeat = float64(n), true
		} else if f, err := strconv.ParseFloat(string(v), 64); err == nil && f >= 0 {
			r.heartbeatMS, r.hasHeartbeat = f, true
		} else {
			bad(fieldHeartbeatInterval)
		}
	}
	if v, ok := s.val(fieldSessionID); ok && !isNull(v) {
		r.sessionID, r.sessionIDEscaped = v, hasBackslash(v)
	}
	if v, ok := s.val(fieldResumeURL); ok && !isNull(v) {
		r.resumeURL, r.resumeURLEscaped = v, hasBackslash(v)
	}
	if v, ok := s.val(fieldSeq); ok && !isNull(v) {
		if r.seq, r.hasSeq = parseJSONInt(v); !r.hasSeq {
			bad(fieldSeq)
		}
	}
	if v, ok := s.val(fieldIntents); ok {
		if r.intents, r.hasIntents = parseJSONInt(v); !r.hasIntents {
			bad(fieldIntents)
		}
	}
	if v, ok := s.val(fieldShard); ok && !isNull(v) {
		if r.shard, r.hasShard = parseShard(v); !r.hasShard {
			bad(fieldShard)
		}
	}
	if v, ok := s.val(fieldCompress); ok {
		switch string(v) {
		case "true":
			r.compress, r.hasCompress = true, true
		case "false":
			r.compress, r.hasCompress = false, true
		default:
			bad(fieldCompress)
		}
	}
	return nil
}

func isNull(v []byte) bool { return string(v) == "null" }

func hasBackslash(v []byte) bool {
	for _, c := range v {
		if c == '\\' {
			return true
		}
	}
	return false
}

// parseJSONInt parses an optionally negative decimal integer without
// allocating. It rejects fractions, exponents, leading '+', empty input
// and values outside int64.
func parseJSONInt(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
		if len(v) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<63-d)/10 { // n*10+d would exceed 1<<63
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), n <= 1<<63
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// parseShard parses "[id, count]".
func parseShard(v []byte) ([2]int, bool) {
	var out [2]int
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return out, false
	}
	v = v[1 : len(v)-1]
	n := 0
	start := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && v[i] != ',' {
			continue
		}
		if n >= 2 {
			return out, false
		}
		part := v[start:i]
		for len(part) > 0 && isJSONSpace(part[0]) {
			part = part[1:]
		}
		for len(part) > 0 && isJSONSpace(part[len(part)-1]) {
			part = part[:len(part)-1]
		}
		x, ok := parseJSONInt(part)
		if !ok || x < 0 || x > 1<<31-1 {
			return out, false
		}
		out[n] = int(x)
		n++
		start = i + 1
	}
	return out, n == 2
}

// unquoteJSON turns the raw inside of a JSON string into a valid UTF-8
// Go string, decoding escapes when escaped is true.
func unquoteJSON(raw []byte, escaped bool) (string, bool) {
	if !escaped && utf8.Valid(raw) {
		return string(raw), true
	}
	// Escapes, or bytes that are not UTF-8 (which encoding/json turns
	// into U+FFFD, as this does).
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}
