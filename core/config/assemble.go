package config

import (
	"bytes"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// The layers are validated together by core/policy: Load assembles one
// policy text from the policy file (copied byte for byte), attributes and
// blocks of the preset (copied from the preset's source) and values from
// environment variables and options (written out), decodes it once, and
// maps every position of the assembled text back to where its bytes came
// from. That way a value is checked against the values it meets in the
// end (max_reconnect_delay from the preset against reconnect_delay from
// the file), and every diagnostic points at the file, line and column, the
// preset line, or the variable or option that supplied the value.

// srcDoc is a text chunks are copied from: the policy file or a preset.
type srcDoc struct {
	name   string
	src    []byte
	lines  []int // byte offset of each line start
	source Source
	// json, for a policy file written as JSON, maps bytes of src (the
	// HCL it was converted to) to positions in the JSON file.
	json *jsonMap
}

func newSrcDoc(name string, src []byte, source Source) *srcDoc {
	d := &srcDoc{name: name, src: src, source: source, lines: []int{0}}
	for i, c := range src {
		if c == '\n' {
			d.lines = append(d.lines, i+1)
		}
	}
	return d
}

// pos returns the position of byte off, counting columns the way HCL does
// (grapheme clusters).
func (d *srcDoc) pos(off int) hcl.Pos {
	off = max(0, min(off, len(d.src)))
	line := sort.Search(len(d.lines), func(i int) bool { return d.lines[i] > off }) - 1
	start := hcl.Pos{Line: line + 1, Column: 1, Byte: d.lines[line]}
	n := off - start.Byte
	if n == 0 {
		return start
	}
	sc := hcl.NewRangeScannerFragment(d.src, d.name, start, func(data []byte, atEOF bool) (int, []byte, error) {
		return n, data[:n], nil
	})
	if !sc.Scan() {
		return start
	}
	return sc.Range().End
}

// offset is the inverse of pos for a line and column of src.
func (d *srcDoc) offset(line, col int) int {
	if line < 1 || line > len(d.lines) {
		return -1
	}
	start := d.lines[line-1]
	if col <= 1 {
		return start
	}
	end := len(d.src)
	if line < len(d.lines) {
		end = d.lines[line]
	}
	for off := start; off <= end; off++ {
		if d.pos(off).Column >= col {
			return off
		}
	}
	return end
}

// location maps byte off of this doc to the position users see: in the
// file itself, or for a JSON file, in the JSON.
func (d *srcDoc) location(off int) hcl.Pos {
	if d.json != nil {
		return d.json.pos(off)
	}
	return d.pos(off)
}

// userName is the file name users see.
func (d *srcDoc) userName() string {
	if d.json != nil {
		return d.json.name
	}
	return d.name
}

// chunk is a run of the assembled text: copied from a doc, or written.
type chunk struct {
	outStart, outEnd int
	doc              *srcDoc // nil for written text
	docStart         int
	source           Source // for written text
	setting          string
}

// assembly is the assembled text and where each run of it came from.
type assembly struct {
	out    bytes.Buffer
	chunks []chunk
}

func (a *assembly) copyFrom(d *srcDoc, start, end int, setting string) {
	if end <= start {
		return
	}
	o := a.out.Len()
	a.out.Write(d.src[start:end])
	a.chunks = append(a.chunks, chunk{outStart: o, outEnd: a.out.Len(), doc: d, docStart: start, setting: setting})
}

func (a *assembly) write(text string, src Source, setting string) {
	if text == "" {
		return
	}
	o := a.out.Len()
	a.out.WriteString(text)
	a.chunks = append(a.chunks, chunk{outStart: o, outEnd: a.out.Len(), source: src, setting: setting})
}

// chunkAt returns the chunk holding byte off of the output (the last
// chunk for the end of the text).
func (a *assembly) chunkAt(off int) *chunk {
	i := sort.Search(len(a.chunks), func(i int) bool { return a.chunks[i].outEnd > off })
	if i == len(a.chunks) {
		if len(a.chunks) == 0 {
			return nil
		}
		i = len(a.chunks) - 1
	}
	return &a.chunks[i]
}

// origin says where byte off of the assembled text came from: the doc and
// the position in it users see, or a written value's source.
type origin struct {
	doc     *srcDoc
	pos     hcl.Pos
	source  Source
	setting string
}

func (a *assembly) origin(off int) origin {
	c := a.chunkAt(off)
	if c == nil {
		return origin{source: Source{Kind: SourceDefault}}
	}
	if c.doc == nil {
		return origin{source: c.source, setting: c.setting}
	}
	docOff := c.docStart + min(max(off-c.outStart, 0), c.outEnd-c.outStart)
	p := c.doc.location(docOff)
	src := c.doc.source
	src.Range = hcl.Range{Filename: c.doc.userName(), Start: p, End: p}
	return origin{doc: c.doc, pos: p, source: src, setting: c.setting}
}

// mapRange maps a range of the assembled text. ok is false when it did
// not come from a doc (a written value): then the range is empty but for
// Filename, which names the source ("env DISCORD_SHARDS").
func (a *assembly) mapRange(r hcl.Range) (hcl.Range, origin, bool) {
	start := a.origin(r.Start.Byte)
	if start.doc == nil {
		return hcl.Range{Filename: start.source.String()}, start, false
	}
	out := hcl.Range{Filename: start.doc.userName(), Start: start.pos, End: start.pos}
	if r.End.Byte > r.Start.Byte {
		end := a.origin(r.End.Byte - 1)
		if end.doc == start.doc && end.pos.Byte >= start.pos.Byte {
			// End is exclusive: one past the last byte's position.
			endOff := a.chunkAt(r.End.Byte - 1)
			if endOff != nil && endOff.doc == start.doc && start.doc.json == nil {
				docOff := endOff.docStart + (r.End.Byte - endOff.outStart)
				out.End = start.doc.pos(docOff)
			} else {
				out.End = end.pos
			}
		}
	}
	return out, start, true
}
