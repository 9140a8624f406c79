package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// Format is an export format.
type Format string

// The export formats.
const (
	// FormatHCL is a policy file, with each value's source in a comment.
	FormatHCL Format = "hcl"
	// FormatJSON is the same configuration as JSON (see
	// docs/configuration.md for its shape).
	FormatJSON Format = "json"
)

// ParseFormat accepts "hcl" or "json" in any case.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatHCL, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("config: unknown format %q (hcl or json)", s)
}

// Export writes the effective configuration of cfg: every value, with the
// token replaced by the variable it is read from, never its value. Loading
// the output as a policy file (WithPolicyFile, ".json" for JSON) gives the
// same configuration. HCL output notes each value's source in a comment
// and lists the levels the thresholds shorthand generates.
func Export(cfg *Config, format Format) ([]byte, error) {
	root := tree(cfg.Policy)
	switch format {
	case FormatHCL:
		var b bytes.Buffer
		header(&b, cfg)
		b.Write(root.hcl(func(key string) string {
			if s, ok := cfg.sources[key]; ok {
				return s.String()
			}
			return ""
		}))
		return b.Bytes(), nil
	case FormatJSON:
		return root.json()
	}
	return nil, fmt.Errorf("config: unknown format %q (hcl or json)", format)
}

func header(b *bytes.Buffer, cfg *Config) {
	b.WriteString("# Effective lifeline configuration (lifeline config export).\n")
	var from []string
	if cfg.Preset != "" {
		from = append(from, "preset "+cfg.Preset)
	}
	if cfg.File != "" {
		from = append(from, "policy file "+cfg.File)
	}
	if len(from) == 0 {
		from = append(from, "built-in defaults")
	}
	fmt.Fprintf(b, "# Layers: %s, environment, options. Comments give each value's source.\n", strings.Join(from, ", "))
	state := "not set"
	if cfg.Token.IsSet() {
		s := cfg.sources["connection.token"]
		state = "set by " + s.String() + "; never exported"
	}
	fmt.Fprintf(b, "# Token: read from %s (%s).\n\n", cfg.Policy.Connection.TokenEnv, state)
}

// node is a block of the exported tree.
type node struct {
	typ, label string
	attrs      []attr
	blocks     []*node
	// notes are comment lines written after the attributes (HCL only).
	notes []string
}

type attr struct {
	name string
	val  cty.Value
	// env, when set, makes the value env("NAME") (the token).
	env string
	// key is the setting key, for source comments.
	key string
}

func (n *node) add(name string, v cty.Value, key string) {
	n.attrs = append(n.attrs, attr{name: name, val: v, key: key})
}

func (n *node) child(typ, label string) *node {
	c := &node{typ: typ, label: label}
	n.blocks = append(n.blocks, c)
	return c
}

// tree turns a policy into the exported structure. Generated parts are
// written out (default checks and recovery rules) except the levels and
// recover condition the thresholds shorthand generates, which the
// thresholds block stands for.
func tree(p *policy.Policy) *node {
	root := &node{}
	blocks := map[string]*node{}
	for _, bt := range settingBlocks {
		blocks[bt] = root.child(bt, "")
	}
	blocks["connection"].attrs = append(blocks["connection"].attrs, attr{name: "token", env: p.Connection.TokenEnv, key: "connection.token"})
	var th *node
	for _, s := range settings {
		if s.get == nil {
			continue
		}
		v, ok := s.get(p)
		if !ok {
			continue
		}
		path, name := s.path()
		target := blocks[path[0]]
		if len(path) == 2 {
			if th == nil {
				th = &node{typ: "thresholds"}
			}
			target = th
		}
		target.add(name, v, s.Key)
	}

	health := blocks["health"]
	for _, c := range p.Health.Checks {
		cb := health.child("check", c.Name)
		if c.Type != "" {
			cb.add("type", cty.StringVal(c.Type), "")
		}
		if c.Plugin != "" {
			cb.add("plugin", cty.StringVal(c.Plugin), "")
		}
		if c.Threshold.Set {
			if c.Threshold.IsDuration {
				cb.add("threshold", durVal(c.Threshold.Duration), "")
			} else {
				cb.add("threshold", numVal(c.Threshold.Number), "")
			}
		}
		if c.Critical {
			cb.add("critical", cty.True, "")
		}
		if c.Config != nil {
			cb.add("config", jsonValue(c.Config), "")
		}
	}

	deg := blocks["degradation"]
	if th != nil {
		deg.blocks = append(deg.blocks, th)
	}
	for _, l := range p.Degradation.Levels {
		if l.Generated {
			deg.notes = append(deg.notes, fmt.Sprintf("level %q (from the thresholds): when = %q, actions = %s",
				strings.ToLower(l.Level.String()), l.When.Expr, exprText(strList(l.Actions))))
			continue
		}
		lb := deg.child("level", strings.ToLower(l.Level.String()))
		lb.add("when", cty.StringVal(l.When.Expr), "")
		lb.add("actions", strList(l.Actions), "")
	}
	if r := p.Degradation.Recover; r.IsSet() {
		if r.Generated {
			deg.notes = append(deg.notes, fmt.Sprintf("recover (from the thresholds): when = %q", r.Expr))
		} else {
			deg.child("recover", "").add("when", cty.StringVal(r.Expr), "")
		}
	}

	for _, r := range p.Recovery {
		rb := root.child("recovery", r.Name)
		rb.add("priority", intVal(r.Priority), "")
		if r.When.IsSet() {
			rb.add("when", cty.StringVal(r.When.Expr), "")
		}
		rb.add("use", cty.StringVal(r.Use), "")
		rb.add("max_attempts", intVal(r.MaxAttempts), "")
	}
	for _, pl := range p.Plugins {
		pb := root.child("plugin", pl.Name)
		pb.add("path", cty.StringVal(pl.Path), "")
		if pl.SHA256 != "" {
			pb.add("sha256", cty.StringVal(pl.SHA256), "")
		}
		if pl.Args != nil {
			pb.add("args", strList(pl.Args), "")
		}
		if pl.Config != nil {
			pb.add("config", jsonValue(pl.Config), "")
		}
	}
	if p.Coordination != nil {
		root.blocks = append(root.blocks, coordinationNode(p.Coordination))
	}
	return root
}

// jsonValue converts a JSON-shaped Go value (plugin and check config).
func jsonValue(v any) cty.Value {
	b, err := json.Marshal(v)
	if err != nil {
		// Config values come from core/policy's own JSON conversion.
		panic(fmt.Sprintf("config: config value does not marshal: %v", err))
	}
	t, err := ctyjson.ImpliedType(b)
	if err != nil {
		panic(fmt.Sprintf("config: config value has no type: %v", err))
	}
	out, err := ctyjson.Unmarshal(b, t)
	if err != nil {
		panic(fmt.Sprintf("config: config value does not convert: %v", err))
	}
	return out
}

// hcl writes the tree as a formatted policy file; comment gives a
// trailing comment for a setting key ("" for none).
func (n *node) hcl(comment func(key string) string) []byte {
	var b bytes.Buffer
	n.writeHCL(&b, comment, 0)
	return hclwrite.Format(b.Bytes())
}

func (n *node) writeHCL(b *bytes.Buffer, comment func(string) string, depth int) {
	for _, a := range n.attrs {
		text := "env(" + exprText(cty.StringVal(a.env)) + ")"
		if a.env == "" {
			text = exprText(a.val)
		}
		fmt.Fprintf(b, "%s = %s", a.name, text)
		if a.key != "" {
			if c := comment(a.key); c != "" {
				b.WriteString(" # " + c)
			}
		}
		b.WriteString("\n")
	}
	for i, c := range n.blocks {
		if i > 0 || (depth > 0 && len(n.attrs) > 0) {
			b.WriteString("\n")
		}
		key := groupKey(c.typ)
		if key != "" && (i == 0 || groupKey(n.blocks[i-1].typ) != key) {
			if s := comment(key); s != "" {
				fmt.Fprintf(b, "# %s: %s\n", key, s)
			}
		}
		b.WriteString(c.typ)
		if c.label != "" {
			b.WriteString(" " + exprText(cty.StringVal(c.label)))
		}
		b.WriteString(" {\n")
		c.writeHCL(b, comment, depth+1)
		if len(c.notes) > 0 {
			b.WriteString("\n")
			for _, note := range c.notes {
				b.WriteString("# " + note + "\n")
			}
		}
		b.WriteString("}\n")
	}
}

// groupKey is the Sources key of a block that belongs to a group of
// blocks, or "".
func groupKey(typ string) string {
	switch typ {
	case "check":
		return "health.checks"
	case "thresholds", "level", "recover":
		return "degradation.levels"
	case "recovery":
		return "recovery"
	case "plugin":
		return "plugins"
	}
	return ""
}
