package config

import (
	"errors"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// Decoder returns a loader for policy.WatcherOptions.Load that puts the
// same layers around the policy file's content on every load, the first
// and each reload: the defaults, the preset, the file as it is now, the
// environment variables and the options in opts. opts should not name a
// policy file (the watcher supplies it). onLoad, when not nil, receives
// each valid Config, with its Sources, before the loader returns its
// policy.
//
// Diagnostics keep their places: a file value's range is exact, an
// environment or option value names its source (see Diagnostics.HCL).
func Decoder(onLoad func(*Config), opts ...Option) policy.LoadFunc {
	opts = slices.Clip(slices.Clone(opts))
	return func(path string, src []byte) (*policy.Policy, hcl.Diagnostics) {
		cfg, err := Load(append(opts, WithPolicySource(path, src))...)
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return nil, ce.Diagnostics.HCL()
			}
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid configuration", Detail: err.Error()}}
		}
		if onLoad != nil {
			onLoad(cfg)
		}
		return cfg.Policy, cfg.Warnings.HCL()
	}
}

// HCL converts the diagnostics to HCL's form, for code that carries
// hcl.Diagnostics (a policy.Watcher's failed reload, its
// POLICY_RELOAD_FAILED event). A value from a file or preset keeps its
// range; a value from an environment variable or an option has no range,
// and its summary starts with where it came from:
//
//	env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": Invalid value
func (ds Diagnostics) HCL() hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, len(ds))
	for _, d := range ds {
		if d.hcl != nil {
			c := *d.hcl
			out = append(out, &c)
			continue
		}
		h := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: d.Summary, Detail: d.Detail}
		if d.Severity == SeverityWarning {
			h.Severity = hcl.DiagWarning
		}
		switch {
		case (d.Source.Kind == SourceFile || d.Source.Kind == SourcePreset) && d.Source.Range.Filename != "":
			r := d.Source.Range
			if r.Start.Line == 0 {
				r.Start, r.End = hcl.InitialPos, hcl.InitialPos
			}
			h.Subject = &r
		default:
			h.Summary = d.where() + ": " + d.Summary
		}
		out = append(out, h)
	}
	return out
}
