package config

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/lifeline-bot/lifeline/policies"
)

// Preset is one shipped policy for a bot size: policies/NAME.hcl.
type Preset struct {
	// Name is "small", "medium" or "large".
	Name string
	// Summary is the file's first comment line: who the preset is for.
	Summary string
	// Filename is the name diagnostics use, e.g. "policies/small.hcl".
	Filename string
	// Source is the file's content.
	Source []byte
}

// presetNames are the shipped presets in size order. policies/default.hcl
// is not one: it spells out the built-in defaults.
var presetNames = []string{"small", "medium", "large"}

// Presets returns the shipped presets, smallest first.
func Presets() []Preset {
	out := make([]Preset, 0, len(presetNames))
	for _, n := range presetNames {
		p, err := LookupPreset(n)
		if err != nil {
			// The files are embedded at build time; a missing one is a
			// broken build, caught by the tests.
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// LookupPreset returns the preset called name.
func LookupPreset(name string) (Preset, error) {
	known := false
	for _, n := range presetNames {
		known = known || n == name
	}
	if !known {
		return Preset{}, fmt.Errorf("unknown preset %q (%s)%s", name, strings.Join(presetNames, ", "), suggestion(name, presetNames))
	}
	src, err := policies.FS.ReadFile(name + ".hcl")
	if err != nil {
		return Preset{}, fmt.Errorf("preset %q: %w", name, err)
	}
	return Preset{Name: name, Summary: firstComment(src), Filename: "policies/" + name + ".hcl", Source: src}, nil
}

// firstComment returns the first comment line of src without "# " and a
// leading "Preset for ".
func firstComment(src []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if c, ok := strings.CutPrefix(line, "#"); ok {
			c = strings.TrimSpace(c)
			c = strings.TrimPrefix(c, "Preset for ")
			if c != "" {
				return strings.ToUpper(c[:1]) + c[1:]
			}
		}
	}
	return ""
}

// suggestion returns ` (did you mean "x"?)` for the closest of names, or
// "" when none is close.
func suggestion(name string, names []string) string {
	best, bestD := "", -1
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if d := editDistance(strings.ToLower(name), strings.ToLower(n)); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD*3 > max(len(name), len(best)) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
