package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/lifeline-bot/lifeline/core/policy"
)

func TestPresets(t *testing.T) {
	ps := Presets()
	if len(ps) != 3 || ps[0].Name != "small" || ps[1].Name != "medium" || ps[2].Name != "large" {
		t.Fatalf("presets %v", ps)
	}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			disk, err := os.ReadFile("../../" + p.Filename)
			if err != nil || string(disk) != string(p.Source) {
				t.Errorf("embedded %s differs from the file on disk (%v)", p.Filename, err)
			}
			if p.Summary == "" || strings.HasPrefix(p.Summary, "#") {
				t.Errorf("summary %q", p.Summary)
			}
			cfg := mustLoad(t, WithEnv(nil), WithPreset(p.Name))
			if len(cfg.Warnings) != 0 {
				t.Errorf("warnings: %q", cfg.Warnings.Lines())
			}
			// The preset alone decodes the same way through core/policy.
			direct, err := policy.LoadSource(p.Filename, p.Source, policy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if structure(t, direct) != structure(t, cfg.Policy) {
				t.Error("preset through config differs from the preset decoded directly")
			}
			f, diags := hclsyntax.ParseConfig(p.Source, p.Filename, hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			// Load copies preset attributes and blocks by their bytes: that
			// is only right while presets use no locals and call env()
			// for the token only.
			body := f.Body.(*hclsyntax.Body)
			if len(blocksOf(body, "locals")) > 0 {
				t.Error("presets must not use locals")
			}
			envCall := regexp.MustCompile(`env\(`)
			for i, line := range strings.Split(string(p.Source), "\n") {
				if envCall.MatchString(line) && !strings.Contains(line, `token`) {
					t.Errorf("%s:%d calls env() for something other than the token", p.Filename, i+1)
				}
			}
			checkCommented(t, p.Filename, p.Source, body)
		})
	}
	if _, err := LookupPreset("default"); err == nil {
		t.Error("default is not a preset")
	}
}

// checkCommented requires a comment in every block of a preset: each
// value's reason is written next to it.
func checkCommented(t *testing.T, name string, src []byte, body *hclsyntax.Body) {
	t.Helper()
	lines := strings.Split(string(src), "\n")
	for _, b := range body.Blocks {
		if b.Type == "check" {
			continue // the health block's comments cover its checks
		}
		start, end := b.Range().Start.Line, b.Range().End.Line
		commented := false
		for l := start - 1; l <= end-1 && l < len(lines); l++ {
			if strings.Contains(lines[l], "#") {
				commented = true
			}
		}
		// A comment right above the block counts too.
		if start >= 2 && strings.HasPrefix(strings.TrimSpace(lines[start-2]), "#") {
			commented = true
		}
		if !commented {
			t.Errorf("%s:%d: block %s has no comment saying why", name, start, b.Type)
		}
		checkCommented(t, name, src, b.Body)
	}
}
