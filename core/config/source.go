package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// SourceKind says which layer a value came from. Later layers win:
// defaults, then the preset, then the policy file, then environment
// variables, then Go options.
type SourceKind uint8

// The layers, in load order.
const (
	// SourceDefault is lifeline's built-in default (policy.Default).
	SourceDefault SourceKind = iota
	// SourcePreset is a preset file (policies/NAME.hcl).
	SourcePreset
	// SourceFile is the policy file.
	SourceFile
	// SourceEnv is an environment variable.
	SourceEnv
	// SourceOption is a Go option given to Load.
	SourceOption
)

// String names the layer.
func (k SourceKind) String() string {
	switch k {
	case SourceDefault:
		return "default"
	case SourcePreset:
		return "preset"
	case SourceFile:
		return "file"
	case SourceEnv:
		return "env"
	case SourceOption:
		return "option"
	}
	return fmt.Sprintf("SourceKind(%d)", uint8(k))
}

// Source says where a value came from.
type Source struct {
	// Kind is the layer.
	Kind SourceKind
	// Name is the preset's name, the environment variable or the option
	// (e.g. `Set("health.interval")`); empty for defaults and files.
	Name string
	// Range is the value's place in the policy file or preset file, when
	// it has one.
	Range hcl.Range
}

// String formats the source for people: "default", "preset small
// (policies/small.hcl:15:3)", "bot.hcl:12:3", "env DISCORD_SHARDS",
// "option WithToken".
func (s Source) String() string {
	switch s.Kind {
	case SourceDefault:
		return "default"
	case SourcePreset:
		if s.Range.Filename != "" && s.Range.Start.Line > 0 {
			return fmt.Sprintf("preset %s (%s)", s.Name, rangeString(s.Range))
		}
		return "preset " + s.Name
	case SourceFile:
		if s.Range.Start.Line > 0 {
			return rangeString(s.Range)
		}
		return s.Range.Filename
	case SourceEnv:
		return "env " + s.Name
	case SourceOption:
		return "option " + s.Name
	}
	return s.Kind.String()
}

func rangeString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
