package conn

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// scanAll feeds payload to a fresh scanner in pieces of size step (0: at
// once) and finishes it.
func scanAll(payload string, step int) (scanResult, error) {
	var s scanner
	s.reset()
	b := []byte(payload)
	if step <= 0 {
		step = len(b) + 1
	}
	for len(b) > 0 {
		n := min(step, len(b))
		s.feed(b[:n])
		b = b[n:]
	}
	return s.finish()
}

func TestScannerFields(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, r scanResult)
	}{
		{"hello", `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["gateway-prd-1"]}}`,
			func(t *testing.T, r scanResult) {
				if !r.hasOp || r.op != 10 || !r.hasHeartbeat || r.heartbeatMS != 41250 || r.hasS || r.t != nil {
					t.Errorf("%+v", r)
				}
			}},
		{"dispatch", `{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi \"there\" {[","id":"1"}}`,
			func(t *testing.T, r scanResult) {
				if r.op != 0 || !r.hasS || r.s != 42 || string(r.t) != "MESSAGE_CREATE" {
					t.Errorf("%+v", r)
				}
			}},
		{"ready", `{"t":"READY","s":1,"op":0,"d":{"v":10,"user":{"id":"1","session_id":"nested-not-this"},` +
			`"guilds":[{"id":"2","unavailable":true}],"session_id":"abc123","resume_gateway_url":"wss:\/\/gw.example\/","shard":[3, 8]}}`,
			func(t *testing.T, r scanResult) {
				if string(r.sessionID) != "abc123" || !r.hasShard || r.shard != [2]int{3, 8} {
					t.Errorf("%+v", r)
				}
				u, ok := unquoteJSON(r.resumeURL, r.resumeURLEscaped)
				if !ok || u != "wss://gw.example/" {
					t.Errorf("resume url %q", u)
				}
			}},
		{"op order reversed", `{"d":{"heartbeat_interval":45000},"op":10}`,
			func(t *testing.T, r scanResult) {
				if r.op != 10 || r.heartbeatMS != 45000 {
					t.Errorf("%+v", r)
				}
			}},
		{"float interval", `{"op":10,"d":{"heartbeat_interval":41250.5}}`,
			func(t *testing.T, r scanResult) {
				if r.heartbeatMS != 41250.5 {
					t.Errorf("%+v", r)
				}
			}},
		{"invalid session false", `{"op":9,"d":false}`,
			func(t *testing.T, r scanResult) {
				if !r.hasDBool || r.dBool || r.dIsObj {
					t.Errorf("%+v", r)
				}
			}},
		{"invalid session true", " {\n\t\"op\" : 9 , \"d\" : true } \n",
			func(t *testing.T, r scanResult) {
				if !r.hasDBool || !r.dBool {
					t.Errorf("%+v", r)
				}
			}},
		{"heartbeat with seq", `{"op":1,"d":251}`,
			func(t *testing.T, r scanResult) {
				if !r.hasDInt || r.dInt != 251 {
					t.Errorf("%+v", r)
				}
			}},
		{"heartbeat null", `{"op":1,"d":null}`,
			func(t *testing.T, r scanResult) {
				if r.hasDInt || r.hasDBool {
					t.Errorf("%+v", r)
				}
			}},
		{"identify", `{"op":2,"d":{"token":"Bot SECRET","properties":{"$os":"linux","shard":[9,9]},"compress":false,` +
			`"large_threshold":250,"shard":[1,4],"presence":{"status":"online"},"intents":33281}}`,
			func(t *testing.T, r scanResult) {
				if r.op != 2 || r.shard != [2]int{1, 4} || r.intents != 33281 || !r.hasCompress || r.compress {
					t.Errorf("%+v", r)
				}
			}},
		{"resume", `{"op":6,"d":{"token":"Bot SECRET","session_id":"s1","seq":1337}}`,
			func(t *testing.T, r scanResult) {
				if r.op != 6 || string(r.sessionID) != "s1" || !r.hasSeq || r.seq != 1337 {
					t.Errorf("%+v", r)
				}
			}},
		{"escaped key is not ours", `{"o\u0070":3,"op":4}`,
			func(t *testing.T, r scanResult) {
				if r.op != 4 {
					t.Errorf("%+v", r)
				}
			}},
		{"long key", `{"` + strings.Repeat("k", 100) + `":1,"op":3}`,
			func(t *testing.T, r scanResult) {
				if r.op != 3 {
					t.Errorf("%+v", r)
				}
			}},
		{"overflowing session id", `{"op":6,"d":{"session_id":"` + strings.Repeat("x", 300) + `"}}`,
			func(t *testing.T, r scanResult) {
				if r.sessionID != nil || r.fieldErrs != 1 || r.firstFieldErrField != fieldSessionID {
					t.Errorf("%+v", r)
				}
			}},
		{"bad op type", `{"op":"ten"}`,
			func(t *testing.T, r scanResult) {
				if r.hasOp || r.fieldErrs != 1 {
					t.Errorf("%+v", r)
				}
			}},
		{"negative and huge numbers", `{"op":-1,"s":99999999999999999999}`,
			func(t *testing.T, r scanResult) {
				if r.op != -1 || r.hasS || r.fieldErrs != 1 {
					t.Errorf("%+v", r)
				}
			}},
		{"empty object", `{}`,
			func(t *testing.T, r scanResult) {
				if r.hasOp {
					t.Errorf("%+v", r)
				}
			}},
	}
	for _, tt := range tests {
		for _, step := range []int{0, 1, 2, 7} {
			r, err := scanAll(tt.in, step)
			if err != nil {
				t.Errorf("%s step %d: %v", tt.name, step, err)
				continue
			}
			tt.check(t, r)
		}
	}
}

func TestScannerMalformed(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not an object", `[1,2]`, "not a JSON object"},
		{"zlib bytes", "\x78\x9c\x00\x01", "not a JSON object"},
		{"truncated", `{"op":0,"d":{"x":`, "ended after"},
		{"truncated in string", `{"op":0,"t":"MESS`, "ended after"},
		{"empty", ``, "ended after 0 bytes"},
		{"missing colon", `{"op" 1}`, "expected ':'"},
		{"bad value", `{"op":}`, "expected a value"},
		{"bad key", `{op:1}`, "expected a key"},
		{"garbage after", `{"op":1} x`, "data after"},
		{"missing comma", `{"op":1 "s":2}`, "expected ','"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scanAll(tt.in, 3)
			if err == nil || !errors.Is(err, ErrMalformedPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestScannerNeverHoldsToken checks that no captured buffer holds any
// byte sequence of the token after scanning IDENTIFY and RESUME.
func TestScannerNeverHoldsToken(t *testing.T) {
	const token = "Bot TOKEN-SHOULD-NEVER-BE-HELD"
	for _, p := range []string{
		`{"op":2,"d":{"token":"` + token + `","intents":1,"shard":[0,1]}}`,
		`{"op":6,"d":{"token":"` + token + `","session_id":"x","seq":3}}`,
		`{"op":2,"d":{"properties":{"token":"` + token + `"}}}`,
	} {
		var s scanner
		s.reset()
		s.feed([]byte(p))
		if _, err := s.finish(); err != nil {
			t.Fatal(err)
		}
		for f := range s.vals {
			if strings.Contains(string(s.vals[f][:]), "TOKEN") {
				t.Errorf("field %s buffer holds token bytes", fieldName(scanField(f)))
			}
		}
	}
}

// topLevel walks a valid JSON object with encoding/json and returns the
// raw value of the last top-level key spelled exactly op, s and t. ok is
// false when payload is not an object, or when a top-level key is
// written with escapes (the scanner compares raw key bytes, so it
// intentionally ignores such keys).
func topLevel(payload []byte) (vals map[string]json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if d, isDelim := tok.(json.Delim); err != nil || !isDelim || d != '{' {
		return nil, false
	}
	vals = map[string]json.RawMessage{}
	for dec.More() {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		raw := bytes.TrimLeft(payload[before:dec.InputOffset()], " \t\r\n,")
		if bytes.IndexByte(raw, '\\') >= 0 {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if key == "op" || key == "s" || key == "t" {
			vals[key] = v
		}
	}
	return vals, true
}

// scanAgrees checks that the scanner agrees with encoding/json on op and
// t of a valid JSON object. The fuzz target shares it.
func scanAgrees(t *testing.T, payload []byte) {
	t.Helper()
	if !json.Valid(payload) {
		return
	}
	ref, ok := topLevel(payload)
	if !ok {
		return
	}
	r, err := scanAll(string(payload), 5)
	if err != nil {
		t.Fatalf("scanner rejected valid JSON object %q: %v", payload, err)
	}
	var op int64
	rawOp := ref["op"]
	wantOp := rawOp != nil && string(rawOp) != "null" && !bytes.ContainsAny(rawOp, ".eE") && json.Unmarshal(rawOp, &op) == nil
	if wantOp != r.hasOp || (wantOp && op != r.op) {
		t.Fatalf("op: scanner %v/%d, encoding/json %v/%d for %q", r.hasOp, r.op, wantOp, op, payload)
	}
	var tv *string
	if rawT := ref["t"]; rawT != nil && json.Unmarshal(rawT, &tv) == nil && tv != nil && len(rawT) <= maxScanValue+2 {
		got, ok := unquoteJSON(r.t, hasBackslash(r.t))
		if !ok || got != *tv {
			t.Fatalf("t: scanner %q, encoding/json %q for %q", got, *tv, payload)
		}
	}
}

func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	for _, p := range []string{
		`{"op":0,"s":1,"t":"READY"}`,
		`{"t":"A\u00e9B","op":0}`,
		`{"x":{"op":5},"op":7}`,
		`{"op":1e3}`,
		`{"op":1.0}`,
		`{"op":0,"t":null,"s":null}`,
		`{"d":[{"op":9}],"op":11,"t":"X"}`,
		`{"op":0,"op":2}`,
	} {
		scanAgrees(t, []byte(p))
	}
}

func TestParseJSONInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"42", 42, true}, {"-7", -7, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"1.5", 0, false}, {"1e3", 0, false}, {"null", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseJSONInt([]byte(tt.in))
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseJSONInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseShard(t *testing.T) {
	tests := []struct {
		in   string
		want [2]int
		ok   bool
	}{
		{"[0,1]", [2]int{0, 1}, true}, {"[ 3 , 16 ]", [2]int{3, 16}, true},
		{"[1]", [2]int{}, false}, {"[1,2,3]", [2]int{}, false}, {"[-1,2]", [2]int{}, false},
		{"[a,b]", [2]int{}, false}, {"1,2", [2]int{}, false}, {"[]", [2]int{}, false},
	}
	for _, tt := range tests {
		got, ok := parseShard([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseShard(%q) = %v, %v", tt.in, got, ok)
		}
	}
}
