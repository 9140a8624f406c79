package conn

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets. Their seed corpora live in testdata/fuzz/<name>/ and
// run as ordinary tests; `go test -fuzz=FuzzX ./core/conn` explores more.

// splitBy cuts b into pieces whose sizes come from a PCG seeded with seed.
func splitBy(b []byte, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed>>7|1))
	var out [][]byte
	for len(b) > 0 {
		n := min(1+r.IntN(64), len(b))
		out, b = append(out, b[:n]), b[n:]
	}
	return out
}

// FuzzStream feeds arbitrary bytes to one direction of a tapped
// connection. It must not panic, must leave the bytes as they were, and
// must report the same observations however the bytes are split.
func FuzzStream(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"+string(text(helloJSON, false))), uint64(1), true, false)
	f.Add(text(identifyJSON, true), uint64(2), false, true)
	f.Add(cat(encodeFrame(wf{op: OpText, payload: []byte(`{"op":`)}), encodeFrame(wf{fin: true, op: OpPing}),
		encodeFrame(wf{fin: true, op: OpContinuation, payload: []byte(`7}`)})), uint64(3), false, false)
	f.Add([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, uint64(4), false, false)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, http, sent bool) {
		dir := Received
		if sent {
			dir = Sent
		}
		orig := bytes.Clone(data)
		whole, _ := feedStream(dir, [][]byte{data}, true, http)
		if !bytes.Equal(data, orig) {
			t.Fatal("the tap changed the bytes it was fed")
		}
		split, tap := feedStream(dir, splitBy(data, seed), true, http)
		a, b := lines(whole), lines(split)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("observations depend on the split:\nwhole:\n  %s\nsplit:\n  %s", strings.Join(a, "\n  "), strings.Join(b, "\n  "))
		}
		st := tap.Stats()
		if st.Malformed[dir] > uint64(len(a)) || st.Frames[dir] > uint64(len(data)/2+1) {
			t.Fatalf("implausible stats %+v for %d bytes", st, len(data))
		}
	})
}

// frameSpec decodes fuzz bytes into frames to encode: per frame a flags
// byte (FIN 0x80, RSV 0x70, opcode 0x0F) and a size byte (mask 0x80,
// length form 0x60: minimal, 16-bit, 64-bit; 0x10: a long payload of
// 126 + next byte * 300 bytes; else the low nibble is the length).
func frameSpec(data []byte) []wf {
	var out []wf
	for len(data) >= 2 && len(out) < 32 {
		flags, size := data[0], data[1]
		data = data[2:]
		n := int(size & 0x0F)
		if size&0x10 != 0 && len(data) > 0 {
			n = 126 + int(data[0])*300
			data = data[1:]
		}
		f := wf{fin: flags&0x80 != 0, rsv: (flags >> 4) & 7, op: Opcode(flags & 0x0F), mask: size&0x80 != 0}
		switch (size >> 5) & 3 {
		case 1:
			f.lenForm = 126
		case 2, 3:
			f.lenForm = 127
		}
		if f.lenForm == 126 && n > 0xFFFF {
			f.lenForm = 127
		}
		f.payload = bytes.Repeat([]byte{'{'}, n) // JSON-ish, so text payloads reach the scanner
		out = append(out, f)
	}
	return out
}

// FuzzFrameRoundTrip encodes frames described by the fuzz input, parses
// them back in random pieces, and requires every header to come back as
// it was encoded, whatever the opcode, flags or length encoding.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 0x01, 0x83, 0x80, 0x04}, uint64(1))
	f.Add([]byte{0x89, 0x7F, 0x02, 0x10, 0x01, 0x80, 0x50, 0xFF}, uint64(2))
	f.Add([]byte{0x0B, 0x0C, 0xF3, 0xA1, 0x88, 0x02}, uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		specs := frameSpec(data)
		var stream []byte
		for _, s := range specs {
			stream = append(stream, encodeFrame(s)...)
		}
		obs, _ := feedStream(Received, splitBy(stream, seed), true, false)
		var got []Frame
		for _, o := range obs {
			if o.Kind == KindFrame {
				got = append(got, o.Frame)
			}
		}
		if len(got) != len(specs) {
			t.Fatalf("%d frames parsed, %d encoded", len(got), len(specs))
		}
		for i, s := range specs {
			want := Frame{Fin: s.fin, RSV: s.rsv, Opcode: s.op, Masked: s.mask, Length: uint64(len(s.payload))}
			if got[i] != want {
				t.Fatalf("frame %d: parsed %+v, encoded %+v", i, got[i], want)
			}
		}
	})
}

// FuzzScanner feeds arbitrary payloads to the payload scanner: no panic,
// the same result for any split, and agreement with encoding/json on op
// and t for every valid JSON object.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{helloJSON, readyJSON, identifyJSON, `{"op":9,"d":false}`, `{"op":1,"d":null}`,
		`{"t":"A\u00e9\"B","op":0,"s":3,"d":{"x":[1,{"y":"}"}]}}`, `{"op":6,"d":{"session_id":"a\/b","seq":5}}`, `[]`, `{"op":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r0, e0 := scanAll(string(data), 0)
		for _, step := range []int{1, 7} {
			r, e := scanAll(string(data), step)
			if (e0 == nil) != (e == nil) || (e0 != nil && e0.Error() != e.Error()) {
				t.Fatalf("step %d: error %v, whole: %v", step, e, e0)
			}
			if !reflect.DeepEqual(r0, r) {
				t.Fatalf("step %d: %+v, whole: %+v", step, r, r0)
			}
		}
		scanAgrees(t, data)
	})
}
