package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// The JSON form of a policy mirrors the HCL one: a block is an object,
// an attribute a member; blocks that repeat with a label (check, level,
// recovery, plugin) are arrays of objects whose "name" is the label; the
// token is "token_env": "NAME" for token = env("NAME"). Strings are
// literal (no ${...} templates).

// jsonBlock says how a JSON member maps to an HCL block.
type jsonBlock struct {
	typ   string
	array bool
}

// jsonBlocks maps, per enclosing block type ("" for the top level), the
// JSON members that are blocks.
var jsonBlocks = map[string]map[string]jsonBlock{
	"": {
		"locals": {"locals", false}, "connection": {"connection", false}, "health": {"health", false},
		"circuit_breaker": {"circuit_breaker", false}, "degradation": {"degradation", false},
		"recovery": {"recovery", true}, "plugins": {"plugin", true},
		"coordination": {"coordination", true}, // one block, labelled with its kind: [{"name": "nats", ...}]
	},
	"health":      {"checks": {"check", true}},
	"degradation": {"thresholds": {"thresholds", false}, "levels": {"level", true}, "recover": {"recover", false}},
}

// jsonName returns the JSON member name of block type typ inside parent.
func jsonName(parent, typ string) (string, bool) {
	for name, b := range jsonBlocks[parent] {
		if b.typ == typ {
			return name, b.array
		}
	}
	return typ, false
}

// ---- export ----

func (n *node) json() ([]byte, error) {
	var b bytes.Buffer
	if err := n.writeJSON(&b, ""); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return unescapeHTML(out.Bytes()), nil
}

// unescapeHTML undoes encoding/json's escaping of <, > and & (conditions
// are full of && and >), leaving escaped backslashes alone.
func unescapeHTML(b []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+5 < len(b) && b[i+1] == 'u' {
			switch string(b[i+2 : i+6]) {
			case "0026":
				out.WriteByte('&')
				i += 5
				continue
			case "003c":
				out.WriteByte('<')
				i += 5
				continue
			case "003e":
				out.WriteByte('>')
				i += 5
				continue
			}
		}
		out.WriteByte(b[i])
		if b[i] == '\\' && i+1 < len(b) {
			i++
			out.WriteByte(b[i])
		}
	}
	return out.Bytes()
}

func (n *node) writeJSON(b *bytes.Buffer, parent string) error {
	b.WriteByte('{')
	first := true
	member := func(name string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		q, _ := json.Marshal(name)
		b.Write(q)
		b.WriteByte(':')
	}
	if n.label != "" {
		member("name")
		q, _ := json.Marshal(n.label)
		b.Write(q)
	}
	for _, a := range n.attrs {
		if a.env != "" || a.name == "token" {
			member("token_env")
			q, _ := json.Marshal(a.env)
			b.Write(q)
			continue
		}
		member(a.name)
		v, err := ctyjson.Marshal(a.val, a.val.Type())
		if err != nil {
			return fmt.Errorf("config: %s: %w", a.name, err)
		}
		b.Write(v)
	}
	for i := 0; i < len(n.blocks); i++ {
		c := n.blocks[i]
		name, array := jsonName(parent, c.typ)
		member(name)
		if !array {
			if err := c.writeJSON(b, c.typ); err != nil {
				return err
			}
			continue
		}
		b.WriteByte('[')
		for j := i; j < len(n.blocks) && n.blocks[j].typ == c.typ; j++ {
			if j > i {
				b.WriteByte(',')
			}
			if err := n.blocks[j].writeJSON(b, c.typ); err != nil {
				return err
			}
			i = j
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return nil
}

// ---- import ----

// jsonMap maps bytes of the HCL converted from a JSON file to positions
// in the JSON file.
type jsonMap struct {
	name  string
	doc   *srcDoc // the JSON text
	spans []jsonSpan
}

type jsonSpan struct{ hclStart, jsonOff int }

func (m *jsonMap) pos(off int) hcl.Pos {
	i := sort.Search(len(m.spans), func(i int) bool { return m.spans[i].hclStart > off }) - 1
	if i < 0 {
		return m.doc.pos(0)
	}
	return m.doc.pos(m.spans[i].jsonOff)
}

// jnode is a parsed JSON value with its place in the source.
type jnode struct {
	kind     byte // 'o' object, 'a' array, 'v' any other value
	off, end int
	keys     []string
	keyOffs  []int
	vals     []*jnode
}

func (n *jnode) raw(src []byte) []byte { return src[n.off:n.end] }

func (n *jnode) member(key string) *jnode {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// jsonToHCL converts a JSON policy to HCL text, mapping every line back
// to the JSON member it came from. Structural problems (a block that is
// not an object, an array entry without a name) are reported here at the
// JSON position; everything else is left to core/policy.
func jsonToHCL(name string, src []byte) ([]byte, *jsonMap, Diagnostics) {
	jm := &jsonMap{name: name, doc: newSrcDoc(name, src, Source{Kind: SourceFile})}
	c := &jconv{src: src, m: jm}
	top, err := parseJSON(src)
	if err != nil {
		var se *json.SyntaxError
		off := len(src)
		if errors.As(err, &se) {
			off = int(se.Offset)
		}
		c.errAt(off, "Invalid JSON", err.Error())
		return nil, nil, c.diags
	}
	if top.kind != 'o' {
		c.errAt(top.off, "Invalid policy", "a JSON policy is an object with members such as \"connection\" and \"health\"")
		return nil, nil, c.diags
	}
	c.body("", top, false)
	return c.out.Bytes(), jm, c.diags
}

type jconv struct {
	src   []byte
	m     *jsonMap
	out   bytes.Buffer
	diags Diagnostics
}

func (c *jconv) errAt(off int, summary, detail string) {
	p := c.m.doc.pos(off)
	r := hcl.Range{Filename: c.m.name, Start: p, End: c.m.doc.pos(off + 1)}
	c.diags = append(c.diags, Diagnostic{Severity: SeverityError, Source: Source{Kind: SourceFile, Range: r}, Summary: summary, Detail: detail,
		hcl: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}})
}

func (c *jconv) line(text string, jsonOff int) {
	c.m.spans = append(c.m.spans, jsonSpan{hclStart: c.out.Len(), jsonOff: jsonOff})
	c.out.WriteString(text)
	c.out.WriteByte('\n')
}

// body converts the members of obj, which is the body of block type typ
// ("" for the top level).
func (c *jconv) body(typ string, obj *jnode, labeled bool) {
	for i, key := range obj.keys {
		v, koff := obj.vals[i], obj.keyOffs[i]
		if b, ok := jsonBlocks[typ][key]; ok {
			if !b.array {
				c.block(b.typ, "", v, koff)
				continue
			}
			if v.kind != 'a' {
				c.errAt(v.off, "Invalid "+key, fmt.Sprintf("%q is a list of objects, each with a \"name\"", key))
				continue
			}
			for _, e := range v.vals {
				label := ""
				if e.kind == 'o' {
					if n := e.member("name"); n != nil {
						var s string
						if json.Unmarshal(n.raw(c.src), &s) == nil {
							label = s
						}
					}
				}
				if label == "" {
					c.errAt(e.off, "Missing name", fmt.Sprintf("each entry of %q is an object with a non-empty string \"name\"", key))
					continue
				}
				c.block(b.typ, label, e, e.off)
			}
			continue
		}
		if key == "name" && labeled {
			continue // the label of a repeated block
		}
		if !hclsyntax.ValidIdentifier(key) {
			c.errAt(koff, "Invalid member name", fmt.Sprintf("%q is not a setting name", key))
			continue
		}
		if typ == "connection" && key == "token_env" {
			var s string
			if v.kind != 'v' || json.Unmarshal(v.raw(c.src), &s) != nil {
				c.errAt(v.off, "Invalid token_env", "token_env is the name of the environment variable holding the token, e.g. \"DISCORD_TOKEN\"")
				continue
			}
			c.line("token = env("+exprText(cty.StringVal(s))+")", v.off)
			continue
		}
		val, err := jsonCty(v.raw(c.src))
		if err != nil {
			c.errAt(v.off, "Invalid value", err.Error())
			continue
		}
		c.line(key+" = "+exprText(val), v.off)
	}
}

func (c *jconv) block(typ, label string, obj *jnode, headerOff int) {
	if obj.kind != 'o' {
		c.errAt(obj.off, "Invalid "+typ, fmt.Sprintf("%q must be an object", typ))
		return
	}
	header := typ
	if label != "" {
		header += " " + exprText(cty.StringVal(label))
	}
	c.line(header+" {", headerOff)
	c.body(typ, obj, label != "")
	c.line("}", obj.end-1)
}

func jsonCty(raw []byte) (cty.Value, error) {
	t, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(raw, t)
}

// parseJSON reads one JSON value, keeping the byte offsets of values and
// object keys.
func parseJSON(src []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	n, err := parseValue(dec, src)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return n, nil
}

// skip moves past white space and separators to the next token.
func skip(src []byte, off int) int {
	for off < len(src) && strings.IndexByte(" \t\r\n:,", src[off]) >= 0 {
		off++
	}
	return off
}

func parseValue(dec *json.Decoder, src []byte) (*jnode, error) {
	off := skip(src, int(dec.InputOffset()))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &jnode{kind: 'v', off: off}
	switch tok {
	case json.Delim('{'):
		n.kind = 'o'
		for dec.More() {
			koff := skip(src, int(dec.InputOffset()))
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			v, err := parseValue(dec, src)
			if err != nil {
				return nil, err
			}
			n.keys, n.keyOffs, n.vals = append(n.keys, key), append(n.keyOffs, koff), append(n.vals, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	case json.Delim('['):
		n.kind = 'a'
		for dec.More() {
			v, err := parseValue(dec, src)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	}
	n.end = int(dec.InputOffset())
	return n, nil
}
