package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Gateway opcodes (Discord "Opcodes and Status Codes").
const (
	OpDispatch            = 0
	OpHeartbeat           = 1
	OpIdentify            = 2
	OpPresenceUpdate      = 3
	OpVoiceStateUpdate    = 4
	OpResume              = 6
	OpReconnect           = 7
	OpRequestGuildMembers = 8
	OpInvalidSession      = 9
	OpHello               = 10
	OpHeartbeatACK        = 11
)

// Payload is a gateway message envelope. D stays raw: only the fields the
// relay acts on are decoded, so a dispatch is forwarded byte for byte.
type Payload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d,omitempty"`
	S  *int64          `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

// Seq returns the sequence number, or 0 when the payload has none.
func (p *Payload) Seq() int64 {
	if p.S == nil {
		return 0
	}
	return *p.S
}

// ErrMalformedPayload is returned when a frame is not a gateway payload:
// not JSON, not an object, or without a numeric "op".
var ErrMalformedPayload = fmt.Errorf("gateway: malformed payload")

// DecodePayload parses one text frame. It never returns a payload that
// lacks an op.
func DecodePayload(frame []byte) (Payload, error) {
	var raw struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
		S  *int64          `json:"s"`
		T  *string         `json:"t"`
	}
	if err := json.Unmarshal(frame, &raw); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrMalformedPayload, trimJSONError(err))
	}
	if raw.Op == nil {
		return Payload{}, fmt.Errorf("%w: no \"op\" field", ErrMalformedPayload)
	}
	p := Payload{Op: *raw.Op, D: raw.D, S: raw.S}
	if raw.T != nil {
		p.T = *raw.T
	}
	return p, nil
}

// trimJSONError keeps a decode error free of the frame's content, which may
// hold a token (IDENTIFY, RESUME).
func trimJSONError(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "invalid JSON at offset " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "unexpected JSON " + e.Value + " for field " + strconv.Quote(e.Field)
	default:
		return "invalid JSON"
	}
}

// encode builds {"op":op,"d":d} with d already JSON.
func encode(op int, d []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(d) + 16)
	b.WriteString(`{"op":`)
	b.WriteString(strconv.Itoa(op))
	b.WriteString(`,"d":`)
	if len(d) == 0 {
		b.WriteString("null")
	} else {
		b.Write(d)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// heartbeatFrame is op 1 with the last sequence (null before any dispatch).
func heartbeatFrame(seq int64) []byte {
	if seq == 0 {
		return encode(OpHeartbeat, nil)
	}
	return encode(OpHeartbeat, strconv.AppendInt(nil, seq, 10))
}

// hello is the d of op 10.
type hello struct {
	HeartbeatInterval float64 `json:"heartbeat_interval"` // milliseconds
}

// readyInfo is the part of READY the relay and the recovery need.
type readyInfo struct {
	SessionID        string `json:"session_id"`
	ResumeGatewayURL string `json:"resume_gateway_url"`
}

// resumeData is the d of op 6.
type resumeData struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       int64  `json:"seq"`
}

// dispatchFrame re-encodes a dispatch for the downstream. Used only when
// lifeline must synthesise one; relayed dispatches keep their own bytes.
func dispatchFrame(t string, seq int64, d []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"op":0,"t":`)
	tq, _ := json.Marshal(t)
	b.Write(tq)
	b.WriteString(`,"s":`)
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteString(`,"d":`)
	if len(d) == 0 {
		b.WriteString("null")
	} else {
		b.Write(d)
	}
	b.WriteByte('}')
	return b.Bytes()
}
