package config

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// override is a value from an environment variable or an option.
type override struct {
	val    cty.Value
	source Source
	// raw is the value as given, safe to print.
	raw string
}

// piece is text to put into the assembly: copied from a doc or written.
type piece struct {
	doc        *srcDoc // nil for written text
	start, end int
	text       string
	src        Source
	setting    string
}

func (p piece) source() Source {
	if p.doc != nil {
		return p.doc.source
	}
	return p.src
}

// op edits the policy file: the bytes [at, end) are replaced by pieces
// (end == at inserts).
type op struct {
	at, end int
	pieces  []piece
}

// merger assembles the layers into one policy text (see assemble.go).
type merger struct {
	file       *srcDoc
	fileBody   *hclsyntax.Body
	preset     *srcDoc
	presetBody *hclsyntax.Body
	over       map[string]override

	ops     []op
	sources map[string]Source
	a       assembly
}

// Block types that hold scalar settings, in policy order.
var settingBlocks = []string{"connection", "health", "circuit_breaker", "degradation"}

func firstBlock(b *hclsyntax.Body, typ string) *hclsyntax.Block {
	if b == nil {
		return nil
	}
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			return blk
		}
	}
	return nil
}

func blocksOf(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	if b == nil {
		return nil
	}
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

func bodyOf(b *hclsyntax.Block) *hclsyntax.Body {
	if b == nil {
		return nil
	}
	return b.Body
}

func attrOf(b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	if b == nil {
		return nil
	}
	return b.Body.Attributes[name]
}

func (m *merger) fileSource(r hcl.Range) Source {
	return Source{Kind: SourceFile, Range: hcl.Range{Filename: m.file.userName(),
		Start: m.file.location(r.Start.Byte), End: m.file.location(r.End.Byte)}}
}

func (m *merger) presetSource(r hcl.Range) Source {
	s := m.preset.source
	s.Range = hcl.Range{Filename: m.preset.name, Start: r.Start, End: r.End}
	return s
}

func (m *merger) copied(r hcl.Range, setting string) []piece {
	return []piece{
		{doc: m.preset, start: r.Start.Byte, end: r.End.Byte, setting: setting},
		{text: "\n", src: m.preset.source, setting: setting},
	}
}

// run builds the assembly.
func (m *merger) run() {
	if m.sources == nil {
		m.sources = map[string]Source{}
	}
	var root []piece
	for _, bt := range settingBlocks {
		fb, pb := firstBlock(m.fileBody, bt), firstBlock(m.presetBody, bt)
		pieces := m.blockContent(bt, fb, pb)
		switch {
		case len(pieces) == 0:
		case fb != nil:
			m.insertInto(fb, pieces)
		default:
			root = append(root, wrapBlock(bt, pieces)...)
		}
	}
	for _, g := range []struct{ typ, key string }{{"recovery", "recovery"}, {"plugin", "plugins"}} {
		if fbs := blocksOf(m.fileBody, g.typ); len(fbs) > 0 {
			m.sources[g.key] = m.fileSource(fbs[0].DefRange())
			continue
		}
		pbs := blocksOf(m.presetBody, g.typ)
		if len(pbs) == 0 {
			m.sources[g.key] = Source{Kind: SourceDefault}
			continue
		}
		m.sources[g.key] = m.presetSource(pbs[0].DefRange())
		for _, b := range pbs {
			root = append(root, m.copied(b.Range(), g.key)...)
		}
	}
	m.emit(root)
}

// blockContent returns what must be added to block bt (the file's fb,
// which may be missing) and registers replacements of the file's values.
func (m *merger) blockContent(bt string, fb, pb *hclsyntax.Block) []piece {
	var pieces []piece
	if bt == "connection" && attrOf(fb, "token") == nil {
		if pa := attrOf(pb, "token"); pa != nil {
			pieces = append(pieces, m.copied(pa.SrcRange, "connection.token")...)
		}
	}
	owner := SourceDefault
	if bt == "degradation" {
		switch {
		case hasLadder(fb):
			owner = SourceFile
		case hasLadder(pb):
			owner = SourcePreset
		}
	}
	for _, s := range settings {
		blockPath, attr := s.path()
		if len(blockPath) != 1 || blockPath[0] != bt || s.Kind == KindToken {
			continue
		}
		presetOK := !isLadderKey(s.Key) || owner == SourcePreset
		pieces = append(pieces, m.scalar(s.Key, attr, fb, pb, presetOK)...)
	}
	switch bt {
	case "health":
		switch {
		case len(blocksOf(bodyOf(fb), "check")) > 0:
			m.sources["health.checks"] = m.fileSource(blocksOf(fb.Body, "check")[0].DefRange())
		case len(blocksOf(bodyOf(pb), "check")) > 0:
			checks := blocksOf(pb.Body, "check")
			m.sources["health.checks"] = m.presetSource(checks[0].DefRange())
			for _, c := range checks {
				pieces = append(pieces, m.copied(c.Range(), "health.checks")...)
			}
		default:
			m.sources["health.checks"] = Source{Kind: SourceDefault}
		}
	case "degradation":
		pieces = append(pieces, m.ladder(owner, fb, pb)...)
	}
	return pieces
}

// The ladder is the thresholds shorthand, the levels and the recover
// condition. It comes whole from the highest layer that declares any part
// of it (their meanings depend on each other); environment variables and
// options can still set the thresholds.
func hasLadder(b *hclsyntax.Block) bool {
	if b == nil {
		return false
	}
	if b.Body.Attributes["recovery_threshold"] != nil {
		return true
	}
	for _, blk := range b.Body.Blocks {
		switch blk.Type {
		case "thresholds", "level", "recover":
			return true
		}
	}
	return false
}

func isLadderKey(key string) bool {
	return key == "degradation.recovery_threshold" || strings.HasPrefix(key, "degradation.thresholds.")
}

func (m *merger) ladder(owner SourceKind, fb, pb *hclsyntax.Block) []piece {
	var pieces []piece
	ft := firstBlock(bodyOf(fb), "thresholds")
	var pt *hclsyntax.Block
	if owner == SourcePreset {
		pt = firstBlock(pb.Body, "thresholds")
	}
	var sub []piece
	for _, s := range settings {
		blockPath, attr := s.path()
		if len(blockPath) == 2 && blockPath[1] == "thresholds" {
			sub = append(sub, m.scalar(s.Key, attr, ft, pt, true)...)
		}
	}
	switch {
	case ft != nil:
		m.insertInto(ft, sub)
	case len(sub) > 0:
		pieces = append(pieces, wrapBlock("thresholds", sub)...)
	case pt != nil:
		// An empty thresholds block still means "use the shorthand".
		pieces = append(pieces, m.copied(pt.Range(), "degradation.levels")...)
	}
	switch owner {
	case SourceFile:
		var first hcl.Range
		for _, blk := range fb.Body.Blocks {
			if blk.Type == "thresholds" || blk.Type == "level" || blk.Type == "recover" {
				first = blk.DefRange()
				break
			}
		}
		if first.Filename == "" {
			first = fb.Body.Attributes["recovery_threshold"].SrcRange
		}
		m.sources["degradation.levels"] = m.fileSource(first)
	case SourcePreset:
		first := hcl.Range{}
		for _, blk := range pb.Body.Blocks {
			switch blk.Type {
			case "level", "recover":
				if first.Filename == "" {
					first = blk.DefRange()
				}
				pieces = append(pieces, m.copied(blk.Range(), "degradation.levels")...)
			case "thresholds":
				if first.Filename == "" {
					first = blk.DefRange()
				}
			}
		}
		if first.Filename == "" {
			first = pb.Body.Attributes["recovery_threshold"].SrcRange
		}
		m.sources["degradation.levels"] = m.presetSource(first)
	default:
		m.sources["degradation.levels"] = Source{Kind: SourceDefault}
	}
	return pieces
}

// scalar decides one setting: an override replaces or adds the value; a
// file value stays; else the preset's attribute is copied (when presetOK);
// else the built-in default applies and nothing is written.
func (m *merger) scalar(key, attr string, fb, pb *hclsyntax.Block, presetOK bool) []piece {
	fa := attrOf(fb, attr)
	var pa *hclsyntax.Attribute
	if presetOK {
		pa = attrOf(pb, attr)
	}
	if ov, ok := m.over[key]; ok {
		m.sources[key] = ov.source
		text := exprText(ov.val)
		if fa != nil {
			r := fa.Expr.Range()
			m.ops = append(m.ops, op{at: r.Start.Byte, end: r.End.Byte, pieces: []piece{{text: text, src: ov.source, setting: key}}})
			return nil
		}
		return []piece{{text: attr + " = " + text + "\n", src: ov.source, setting: key}}
	}
	if fa != nil {
		m.sources[key] = m.fileSource(fa.SrcRange)
		return nil
	}
	if pa != nil {
		m.sources[key] = m.presetSource(pa.SrcRange)
		return m.copied(pa.SrcRange, key)
	}
	m.sources[key] = Source{Kind: SourceDefault}
	return nil
}

// wrapBlock puts pieces into a new block.
func wrapBlock(typ string, pieces []piece) []piece {
	src := pieces[0].source()
	out := []piece{{text: typ + " {\n", src: src}}
	out = append(out, pieces...)
	return append(out, piece{text: "}\n", src: src})
}

// insertInto adds pieces before the closing brace of the file's block b,
// breaking a one-line block into lines first.
func (m *merger) insertInto(b *hclsyntax.Block, pieces []piece) {
	if len(pieces) == 0 {
		return
	}
	src := pieces[0].source()
	if b.OpenBraceRange.Start.Line == b.CloseBraceRange.Start.Line {
		m.ops = append(m.ops, op{at: b.OpenBraceRange.End.Byte, end: b.OpenBraceRange.End.Byte,
			pieces: []piece{{text: "\n", src: src}}})
	}
	at := b.CloseBraceRange.Start.Byte
	lineStart := at
	for lineStart > 0 && m.file.src[lineStart-1] != '\n' {
		lineStart--
	}
	if strings.TrimSpace(string(m.file.src[lineStart:at])) != "" {
		pieces = append([]piece{{text: "\n", src: src}}, pieces...)
	}
	m.ops = append(m.ops, op{at: at, end: at, pieces: pieces})
}

// emit writes the file with the edits applied, then the new root blocks.
func (m *merger) emit(root []piece) {
	sort.SliceStable(m.ops, func(i, j int) bool { return m.ops[i].at < m.ops[j].at })
	cursor := 0
	if m.file != nil {
		for _, o := range m.ops {
			m.a.copyFrom(m.file, cursor, o.at, "")
			m.writePieces(o.pieces)
			cursor = o.end
		}
		m.a.copyFrom(m.file, cursor, len(m.file.src), "")
	}
	if len(root) > 0 {
		if b := m.a.out.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
			m.a.write("\n", root[0].source(), "")
		}
		m.writePieces(root)
	}
}

func (m *merger) writePieces(ps []piece) {
	for _, p := range ps {
		if p.doc != nil {
			m.a.copyFrom(p.doc, p.start, p.end, p.setting)
		} else {
			m.a.write(p.text, p.src, p.setting)
		}
	}
}
