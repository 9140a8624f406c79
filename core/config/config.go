package config

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// Config is the effective configuration: built-in defaults, then a
// preset, then the policy file, then environment variables, then Go
// options, validated together. Load builds it; it is immutable.
type Config struct {
	// Policy is the effective policy, compiled. Its source ranges point
	// at the policy file or preset each value came from; values set by
	// environment variables or options have ranges whose Filename names
	// that source (e.g. "env DISCORD_SHARDS") and no line.
	Policy *policy.Policy
	// Token is the bot token, from the variable the policy names
	// (DISCORD_TOKEN unless `token = env("OTHER")`) or WithToken. It
	// prints as "[REDACTED]".
	Token Token
	// Preset is the preset's name, "" when none was chosen.
	Preset string
	// File is the policy file's path, "" when none was given.
	File string
	// Warnings are the non-fatal diagnostics: privileged intents,
	// unused plugins, settings without effect.
	Warnings Diagnostics

	sources map[string]Source
}

// Sources says where each value came from, by setting key
// ("connection.max_reconnect_attempts"; Settings lists them). Besides the
// scalar settings it has "connection.token" (when a token is set),
// "health.checks", "degradation.levels" (the thresholds shorthand, levels
// and recover condition), "recovery" and "plugins". Threshold settings are
// absent when the effective policy does not use the shorthand. The map is
// a copy.
func (c *Config) Sources() map[string]Source { return maps.Clone(c.sources) }

// Source returns where the value of key came from, and false for a key
// Sources does not have.
func (c *Config) Source(key string) (Source, bool) {
	s, ok := c.sources[key]
	return s, ok
}

// Intents returns the gateway intents as discordgo's bit field.
func (c *Config) Intents() discordgo.Intent {
	return discordgo.Intent(c.Policy.Connection.IntentMask())
}

// RequireToken returns nil when a token is set, and otherwise an error
// wrapping ErrNoToken that names the variable to set.
func (c *Config) RequireToken() error {
	if c.Token.IsSet() {
		return nil
	}
	return fmt.Errorf("config: %w: set %s (or pass config.WithToken)", ErrNoToken, c.Policy.Connection.TokenEnv)
}

// Option adjusts Load: where to read layers from, and explicit values,
// which win over every other layer. Values given twice: the last wins.
type Option func(*loader)

type optValue struct {
	key, name string
	value     any
}

type loader struct {
	preset     string
	presetSet  bool
	file       string
	fileSrc    []byte
	fileInline bool
	lookup     func(string) (string, bool)
	token      *string
	values     []optValue
	maxNodes   uint
}

// WithPreset starts from policies/NAME.hcl (small, medium or large) over
// the built-in defaults.
func WithPreset(name string) Option {
	return func(l *loader) { l.preset, l.presetSet = name, true }
}

// WithPolicyFile reads the policy file at path: HCL, or JSON when the
// name ends in ".json" (the shape Export writes).
func WithPolicyFile(path string) Option {
	return func(l *loader) { l.file, l.fileSrc, l.fileInline = path, nil, false }
}

// WithPolicySource uses src as the policy file called name (".json"
// names are read as JSON).
func WithPolicySource(name string, src []byte) Option {
	return func(l *loader) { l.file, l.fileSrc, l.fileInline = name, src, true }
}

// WithEnv reads environment variables (and the policy's env() calls)
// through lookup instead of os.LookupEnv. WithEnv(nil) reads none.
func WithEnv(lookup func(name string) (string, bool)) Option {
	return func(l *loader) {
		if lookup == nil {
			lookup = func(string) (string, bool) { return "", false }
		}
		l.lookup = lookup
	}
}

// WithToken sets the bot token, winning over the environment.
func WithToken(token string) Option {
	return func(l *loader) { l.token = &token }
}

// WithIntents sets the gateway intents by name ("Guilds",
// "GUILD_MESSAGES", "All", ...).
func WithIntents(names ...string) Option {
	return func(l *loader) {
		l.values = append(l.values, optValue{"connection.intents", "WithIntents", append([]string{}, names...)})
	}
}

// WithAutoReconnect sets connection.auto_reconnect.
func WithAutoReconnect(on bool) Option {
	return func(l *loader) {
		l.values = append(l.values, optValue{"connection.auto_reconnect", "WithAutoReconnect", on})
	}
}

// WithMaxReconnectAttempts sets connection.max_reconnect_attempts (0 means
// no limit).
func WithMaxReconnectAttempts(n int) Option {
	return func(l *loader) {
		l.values = append(l.values, optValue{"connection.max_reconnect_attempts", "WithMaxReconnectAttempts", n})
	}
}

// WithShards sets connection.shards; 0 means auto.
func WithShards(n int) Option {
	return func(l *loader) {
		l.values = append(l.values, optValue{"connection.shards", "WithShards", n})
	}
}

// Set sets any scalar setting by key (see Settings). value is a Go value
// of the setting's kind (bool; an integer; a float64; a time.Duration;
// []string or a discordgo.Intent for intents; an integer for shards, 0
// meaning auto) or a string read like the environment variable.
func Set(key string, value any) Option {
	return func(l *loader) {
		l.values = append(l.values, optValue{key, fmt.Sprintf("Set(%q)", key), value})
	}
}

// WithMaxConditionNodes bounds the size of one condition (default
// policy.DefaultMaxConditionNodes).
func WithMaxConditionNodes(n uint) Option {
	return func(l *loader) { l.maxNodes = n }
}

// Load builds the configuration: built-in defaults, then the preset, then
// the policy file, then environment variables, then options. It checks
// everything and reports every problem at once: the error is an *Error
// whose diagnostics name the file, line and column of a file value, the
// variable of an environment value and the option of an option value.
// Without WithEnv it reads the process environment.
func Load(opts ...Option) (*Config, error) {
	l := &loader{lookup: os.LookupEnv}
	for _, o := range opts {
		o(l)
	}
	return l.load()
}

func (l *loader) load() (*Config, error) {
	var diags Diagnostics
	var cause error
	sources := map[string][]byte{}
	m := &merger{over: map[string]override{}, sources: map[string]Source{}}
	tokenHint := l.tokenHint()

	// Preset.
	if l.presetSet {
		p, err := LookupPreset(l.preset)
		if err != nil {
			diags = append(diags, Diagnostic{Severity: SeverityError, Source: Source{Kind: SourceOption, Name: "WithPreset"},
				Value: echo(l.preset, tokenHint), Summary: "Unknown preset", Detail: err.Error()})
		} else {
			sources[p.Filename] = p.Source
			doc := newSrcDoc(p.Filename, p.Source, Source{Kind: SourcePreset, Name: p.Name})
			f, hd := hclsyntax.ParseConfig(p.Source, p.Filename, hcl.InitialPos)
			if hd.HasErrors() {
				diags = append(diags, fromHCL(hd, doc)...)
			} else {
				m.preset, m.presetBody = doc, f.Body.(*hclsyntax.Body)
			}
		}
	}

	// Policy file.
	fileOK := true
	if l.file != "" {
		src := l.fileSrc
		if !l.fileInline {
			b, err := os.ReadFile(l.file)
			if err != nil {
				cause = err
				fileOK = false
				diags = append(diags, Diagnostic{Severity: SeverityError, Source: Source{Kind: SourceFile, Range: hcl.Range{Filename: l.file}},
					Summary: "Cannot read policy file", Detail: err.Error()})
			}
			src = b
		}
		if fileOK {
			sources[l.file] = src
			doc, body, fd := parseFile(l.file, src)
			diags = append(diags, fd...)
			if fd.HasErrors() {
				fileOK = false
			} else {
				m.file, m.fileBody = doc, body
			}
		}
	}

	// Environment variables, then options.
	for _, s := range settings {
		if s.Kind == KindToken || s.Env == "" {
			continue
		}
		raw, ok := l.lookup(s.Env)
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		src := Source{Kind: SourceEnv, Name: s.Env}
		v, err := s.parseText(raw)
		if err != nil {
			diags = append(diags, Diagnostic{Severity: SeverityError, Source: src, Setting: s.Key, Value: echo(raw, tokenHint),
				Summary: "Invalid value", Detail: err.Error()})
			continue
		}
		m.over[s.Key] = override{val: v, source: src, raw: echo(raw, tokenHint)}
	}
	for _, ov := range l.values {
		src := Source{Kind: SourceOption, Name: ov.name}
		s, ok := LookupSetting(ov.key)
		if !ok || s.Key != ov.key || s.Kind == KindToken {
			detail := fmt.Sprintf("%q is not a setting%s", ov.key, suggestion(ov.key, settingKeys()))
			if s.Kind == KindToken {
				detail = "the token is set with WithToken"
			}
			diags = append(diags, Diagnostic{Severity: SeverityError, Source: src, Summary: "Unknown setting", Detail: detail})
			continue
		}
		v, err := s.goValue(ov.value)
		if err != nil {
			diags = append(diags, Diagnostic{Severity: SeverityError, Source: src, Setting: s.Key, Value: echo(fmt.Sprint(ov.value), tokenHint),
				Summary: "Invalid value", Detail: err.Error()})
			continue
		}
		m.over[s.Key] = override{val: v, source: src, raw: echo(fmt.Sprint(ov.value), tokenHint)}
	}

	if !fileOK {
		return nil, newError(diags, sources, cause, tokenHint)
	}

	// One text, one decode: core/policy checks every value against the
	// values it meets.
	m.run()
	text := m.a.out.Bytes()
	p, hd := policy.Decode(assembledName, text, policy.Options{LookupEnv: l.lookup, MaxConditionNodes: l.maxNodes})
	diags = append(diags, m.mapDiagnostics(hd)...)
	if diags.HasErrors() {
		return nil, newError(diags, sources, cause, tokenHint)
	}

	filename := l.file
	if filename == "" && m.preset != nil {
		filename = m.preset.name
	}
	p = p.Relocate(filename, func(r hcl.Range) hcl.Range {
		out, _, _ := m.a.mapRange(r)
		return out
	})
	cfg := &Config{Policy: p, Preset: l.preset, File: l.file, sources: m.sources}
	if !l.presetSet {
		cfg.Preset = ""
	}
	if p.Degradation.Thresholds == nil {
		for k := range cfg.sources {
			if isLadderKey(k) {
				delete(cfg.sources, k)
			}
		}
	}
	diags = append(diags, l.readToken(cfg)...)
	diags = append(diags, ineffective(cfg, m.over)...)
	if cfg.Token.IsSet() {
		tokenHint = cfg.Token.Reveal()
	}
	cfg.Warnings = diags.Warnings()
	redactDiagnostics(cfg.Warnings, tokenHint)
	return cfg, nil
}

// newError builds the error of a failed Load, with the token (and
// anything shaped like one) taken out of every message and source.
func newError(diags Diagnostics, sources map[string][]byte, cause error, token string) *Error {
	redactDiagnostics(diags, token)
	for name, src := range sources {
		sources[name] = redactSource(src, token)
	}
	return &Error{Diagnostics: diags, Sources: sources, cause: cause}
}

// assembledName is the file name of the assembled text; diagnostics
// never show it (positions are mapped back).
const assembledName = "<lifeline-config>"

// tokenHint is the token as far as it is known before loading, so that
// no diagnostic repeats it.
func (l *loader) tokenHint() string {
	if l.token != nil {
		return *l.token
	}
	v, _ := l.lookup("DISCORD_TOKEN")
	return strings.TrimSpace(v)
}

// readToken reads the token from the variable the policy names, or the
// option.
func (l *loader) readToken(cfg *Config) Diagnostics {
	name := cfg.Policy.Connection.TokenEnv
	if l.token != nil {
		cfg.Token = NewToken(strings.TrimSpace(*l.token))
		if cfg.Token.IsSet() {
			cfg.sources["connection.token"] = Source{Kind: SourceOption, Name: "WithToken"}
		}
		return nil
	}
	v, _ := l.lookup(name)
	cfg.Token = NewToken(strings.TrimSpace(v))
	if cfg.Token.IsSet() {
		cfg.sources["connection.token"] = Source{Kind: SourceEnv, Name: name}
		return nil
	}
	if name != "DISCORD_TOKEN" {
		if v, ok := l.lookup("DISCORD_TOKEN"); ok && strings.TrimSpace(v) != "" {
			return Diagnostics{{Severity: SeverityWarning, Source: Source{Kind: SourceEnv, Name: "DISCORD_TOKEN"}, Setting: "connection.token",
				Summary: "Token variable not used",
				Detail:  fmt.Sprintf("the policy reads the token from %s (token = env(%q)), which is not set; DISCORD_TOKEN is set but not read", name, name)}}
		}
	}
	return nil
}

// ineffective warns about thresholds set by environment variables or
// options when the policy declares every level and a recover condition,
// so that the shorthand generates nothing.
func ineffective(cfg *Config, over map[string]override) Diagnostics {
	d := cfg.Policy.Degradation
	if d.Recover.Generated || len(d.Levels) != 4 {
		return nil
	}
	for _, l := range d.Levels {
		if l.Generated {
			return nil
		}
	}
	var out Diagnostics
	for _, s := range settings {
		if ov, ok := over[s.Key]; ok && isLadderKey(s.Key) {
			out = append(out, Diagnostic{Severity: SeverityWarning, Source: ov.source, Setting: s.Key, Summary: "Setting has no effect",
				Detail: fmt.Sprintf("%s only shapes the thresholds shorthand, and the policy (%s) declares every level and a recover condition itself",
					s.Key, cfg.sources["degradation.levels"])})
		}
	}
	return out
}

// parseFile parses the policy file (HCL, or JSON converted to HCL).
func parseFile(name string, src []byte) (*srcDoc, *hclsyntax.Body, Diagnostics) {
	doc := newSrcDoc(name, src, Source{Kind: SourceFile})
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		text, jm, diags := jsonToHCL(name, src)
		if diags.HasErrors() {
			return nil, nil, diags
		}
		doc = newSrcDoc(name+".hcl", text, Source{Kind: SourceFile})
		doc.json = jm
	}
	f, hd := hclsyntax.ParseConfig(doc.src, doc.name, hcl.InitialPos)
	if hd.HasErrors() {
		return nil, nil, fromHCL(hd, doc)
	}
	return doc, f.Body.(*hclsyntax.Body), nil
}

// fromHCL converts diagnostics located in doc (file or preset
// coordinates).
func fromHCL(hd hcl.Diagnostics, doc *srcDoc) Diagnostics {
	var out Diagnostics
	for _, d := range hd {
		c := *d
		src := doc.source
		if d.Subject != nil {
			r := hcl.Range{Filename: doc.userName(), Start: doc.location(d.Subject.Start.Byte), End: doc.location(d.Subject.End.Byte)}
			c.Subject = &r
			src.Range = r
		} else {
			src.Range = hcl.Range{Filename: doc.userName()}
		}
		if d.Context != nil {
			r := hcl.Range{Filename: doc.userName(), Start: doc.location(d.Context.Start.Byte), End: doc.location(d.Context.End.Byte)}
			c.Context = &r
		}
		out = append(out, Diagnostic{Severity: severity(d.Severity), Source: src, Summary: d.Summary, Detail: d.Detail, hcl: &c})
	}
	return out
}

func severity(s hcl.DiagnosticSeverity) Severity {
	if s == hcl.DiagError {
		return SeverityError
	}
	return SeverityWarning
}

var assembledPos = regexp.MustCompile(regexp.QuoteMeta(assembledName) + `:(\d+):(\d+)`)

// mapDiagnostics moves the assembled text's diagnostics to where the
// offending values came from.
func (m *merger) mapDiagnostics(hd hcl.Diagnostics) Diagnostics {
	var out Diagnostics
	asm := newSrcDoc(assembledName, m.a.out.Bytes(), Source{})
	for _, d := range hd {
		c := *d
		c.Detail = assembledPos.ReplaceAllStringFunc(d.Detail, func(s string) string {
			sub := assembledPos.FindStringSubmatch(s)
			line, _ := strconv.Atoi(sub[1])
			col, _ := strconv.Atoi(sub[2])
			off := asm.offset(line, col)
			if off < 0 {
				return s
			}
			return m.a.origin(off).source.String()
		})
		diag := Diagnostic{Severity: severity(d.Severity), Summary: d.Summary, Detail: c.Detail}
		if d.Subject == nil {
			diag.Source = Source{Kind: SourceDefault}
			if m.file != nil {
				diag.Source = Source{Kind: SourceFile, Range: hcl.Range{Filename: m.file.userName()}}
			}
			out = append(out, diag)
			continue
		}
		r, o, fromDoc := m.a.mapRange(*d.Subject)
		diag.Source, diag.Setting = o.source, o.setting
		if o.source.Kind == SourceEnv || o.source.Kind == SourceOption {
			if ov, ok := m.over[o.setting]; ok {
				diag.Value = ov.raw
			}
		}
		if fromDoc {
			diag.Source.Range = r
			c.Subject = &r
			c.Context = nil
			if d.Context != nil {
				if cr, co, ok := m.a.mapRange(*d.Context); ok && co.doc == o.doc {
					c.Context = &cr
				}
			}
			diag.hcl = &c
		}
		out = append(out, diag)
	}
	return out
}
