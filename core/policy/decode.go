package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// ErrInvalid is returned (wrapped in a *DiagnosticsError) when a policy
// has error diagnostics: it does not parse, does not validate, or a
// condition does not compile.
var ErrInvalid = errors.New("invalid policy")

// ErrUnknownLevel is returned by ParseLevel when the name is not a level.
var ErrUnknownLevel = errors.New("unknown degradation level")

// Options configures Decode. The zero value is valid.
type Options struct {
	// LookupEnv resolves the env("NAME") function. Default: os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// MaxConditionNodes bounds the AST size of one condition.
	// Default: DefaultMaxConditionNodes.
	MaxConditionNodes uint
}

// DiagnosticsError carries the diagnostics of a policy that failed to
// load, with the sources needed to print them. It wraps ErrInvalid (or,
// when the file could not be read, the read error).
type DiagnosticsError struct {
	Diagnostics hcl.Diagnostics
	// Sources maps a file name to its content, for WriteDiagnostics.
	Sources map[string][]byte
	err     error
}

// Error joins the one-line form of every error diagnostic.
func (e *DiagnosticsError) Error() string {
	lines := DiagnosticLines(errorsOnly(e.Diagnostics))
	if len(lines) == 0 && e.err != nil {
		return e.err.Error()
	}
	return strings.Join(lines, "; ")
}

// Unwrap returns ErrInvalid or the underlying read error.
func (e *DiagnosticsError) Unwrap() error {
	if e.err != nil {
		return e.err
	}
	return ErrInvalid
}

// Load reads, decodes, validates and compiles the policy file at path. On
// failure the error is a *DiagnosticsError.
func Load(path string, opts Options) (*Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err, nil)
	}
	return LoadSource(path, src, opts)
}

// LoadSource is Load for a policy already in memory.
func LoadSource(filename string, src []byte, opts Options) (*Policy, error) {
	p, diags := Decode(filename, src, opts)
	if diags.HasErrors() {
		return nil, &DiagnosticsError{Diagnostics: diags, Sources: map[string][]byte{filename: src}}
	}
	return p, nil
}

// Decode parses, validates and compiles a policy. Every problem is
// reported, not just the first; warnings may accompany a valid policy. The
// Policy is nil when diags has errors.
func Decode(filename string, src []byte, opts Options) (*Policy, hcl.Diagnostics) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	d := &decoder{filename: filename, src: src, opts: opts, localExprs: map[string]hcl.Expression{}}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	if diags := checkNumberLiterals(src, filename); diags.HasErrors() {
		return nil, diags
	}
	d.diags = diags
	p := d.decode(file.Body)
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	p.compile()
	return p, d.diags
}

type decoder struct {
	filename   string
	src        []byte
	opts       Options
	diags      hcl.Diagnostics
	ctx        *hcl.EvalContext
	localExprs map[string]hcl.Expression
}

// blockAttrs lists the attributes of every block type (docs/policy.md
// documents each; a test checks).
var blockAttrs = map[string][]string{
	"connection": {"token", "intents", "auto_reconnect", "max_reconnect_attempts", "reconnect_delay",
		"backoff_multiplier", "max_reconnect_delay", "zombie_after", "shards"},
	"health": {"enabled", "interval", "timeout", "retries"},
	"check":  {"type", "plugin", "threshold", "critical", "config"},
	"circuit_breaker": {"failure_threshold", "recovery_threshold", "open_timeout", "monitoring_period",
		"half_open_max_calls", "reset_timeout", "backoff_multiplier", "max_open_timeout"},
	"degradation": {"enabled", "recovery_delay", "recovery_threshold"},
	"thresholds":  {"latency", "error_rate", "consecutive_errors"},
	"level":       {"when", "actions"},
	"recover":     {"when"},
	"recovery":    {"priority", "when", "use", "max_attempts"},
	"plugin":      {"path", "sha256", "args", "config"},
	"coordination": {"url", "bucket_prefix", "process_id", "lease_ttl", "interval", "replicas", "memory",
		"credentials", "stop_on_lease_loss", "save_interval"},
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "locals"},
	{Type: "connection"},
	{Type: "health"},
	{Type: "circuit_breaker"},
	{Type: "degradation"},
	{Type: "recovery", LabelNames: []string{"name"}},
	{Type: "plugin", LabelNames: []string{"name"}},
	{Type: "coordination", LabelNames: []string{"kind"}},
}}

func (d *decoder) decode(body hcl.Body) *Policy {
	p := Default()
	p.Filename = d.filename
	d.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.EmptyObjectVal},
		Functions: map[string]function.Function{"env": d.envFunc()},
	}
	content, diags := body.Content(rootSchema)
	d.diags = append(d.diags, diags...)

	var localsBlocks []*hcl.Block
	single := map[string]*hcl.Block{}
	var recoveries, plugins []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "locals":
			localsBlocks = append(localsBlocks, b)
		case "recovery":
			recoveries = append(recoveries, b)
		case "plugin":
			plugins = append(plugins, b)
		default:
			if prev, ok := single[b.Type]; ok {
				d.errAt(b.DefRange, "Duplicate "+b.Type+" block",
					fmt.Sprintf("Only one %s block is allowed; the first is at %s.", b.Type, rangeStart(prev.DefRange)))
				continue
			}
			single[b.Type] = b
		}
	}
	d.locals(localsBlocks)
	p.Plugins = d.plugins(plugins)
	declared := map[string]bool{}
	for _, pl := range p.Plugins {
		declared[pl.Name] = true
	}
	refs := &pluginRefs{declared: declared, used: map[string]bool{}}
	if b := single["connection"]; b != nil {
		p.Connection = d.connection(b)
	}
	if b := single["health"]; b != nil {
		p.Health = d.health(b, refs)
	}
	if b := single["circuit_breaker"]; b != nil {
		p.CircuitBreaker = d.breaker(b)
	}
	if b := single["degradation"]; b != nil {
		p.Degradation = d.degradation(b, refs)
	}
	if len(recoveries) > 0 {
		p.Recovery = d.recovery(recoveries, refs)
	}
	if b := single["coordination"]; b != nil {
		p.Coordination = d.coordination(b)
	}
	for _, pl := range p.Plugins {
		if !refs.used[pl.Name] {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Unused plugin",
				Detail:  fmt.Sprintf("Plugin %q is declared but no check, action or recovery rule uses it; it will not be started.", pl.Name),
				Subject: ptr(pl.Ranges.Block)})
		}
	}
	return p
}

// ---- functions and locals ----

func (d *decoder) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable; the optional second argument is the value when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf("env takes a name and at most one default value")
			}
			name := args[0].AsString()
			if v, ok := d.opts.LookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("environment variable %s is not set (give a default: env(%q, \"...\"))", name, name)
		},
	})
}

func (d *decoder) locals(blocks []*hcl.Block) {
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for name, a := range attrs {
			if prev, ok := pending[name]; ok {
				d.errAt(a.NameRange, "Duplicate local value",
					fmt.Sprintf("local.%s is already defined at %s.", name, rangeStart(prev.NameRange)))
				continue
			}
			pending[name] = a
			d.localExprs[name] = a.Expr
		}
	}
	vals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, name := range sortedKeys(pending) {
			a := pending[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[at.Name]; waiting && at.Name != name {
						ready = false
					}
					if at.Name == name {
						d.errAt(tr.SourceRange(), "Self-referencing local value",
							fmt.Sprintf("local.%s refers to itself.", name))
						vals[name] = cty.DynamicVal
						delete(pending, name)
						progress = true
						ready = false
						break
					}
				}
			}
			if !ready {
				continue
			}
			d.ctx.Variables["local"] = cty.ObjectVal(vals)
			v, diags := a.Expr.Value(d.ctx)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				v = cty.DynamicVal
			} else if problem := valueTooLarge(v); problem != "" {
				d.attrErr(a, "Local value too large", fmt.Sprintf("local.%s %s.", name, problem))
				v = cty.DynamicVal
			}
			vals[name] = v
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range sortedKeys(pending) {
				d.errAt(pending[name].NameRange, "Cycle in local values",
					fmt.Sprintf("local.%s depends on itself through other local values.", name))
				vals[name] = cty.DynamicVal
			}
			break
		}
	}
	d.ctx.Variables["local"] = cty.ObjectVal(vals)
}

// ---- attribute helpers ----

func (d *decoder) errAt(rng hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: ptr(rng)})
}

func (d *decoder) attrErr(a *hcl.Attribute, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail,
		Subject: ptr(a.Expr.Range()), Context: ptr(a.Range)})
}

// content decodes a block body against attrs (all optional) and blocks.
func (d *decoder) content(b *hcl.Block, attrs []string, blocks []hcl.BlockHeaderSchema) (*hcl.BodyContent, Ranges) {
	s := &hcl.BodySchema{Blocks: blocks}
	for _, a := range attrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	c, diags := b.Body.Content(s)
	d.diags = append(d.diags, diags...)
	r := Ranges{Block: b.DefRange}
	for name, a := range c.Attributes {
		r.set(name, a.Range)
	}
	return c, r
}

func (d *decoder) value(a *hcl.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.attrErr(a, "Missing value", fmt.Sprintf("%s must not be null.", a.Name))
		return cty.NilVal, false
	}
	return v, true
}

func (d *decoder) typed(a *hcl.Attribute, want cty.Type, what string) (cty.Value, bool) {
	v, ok := d.value(a)
	if !ok {
		return v, false
	}
	c, err := convert.Convert(v, want)
	if err != nil {
		d.attrErr(a, "Invalid value for "+a.Name, fmt.Sprintf("%s must be %s; got %s.", a.Name, what, v.Type().FriendlyName()))
		return cty.NilVal, false
	}
	return c, true
}

func (d *decoder) str(a *hcl.Attribute) (string, bool) {
	v, ok := d.typed(a, cty.String, "a string")
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := d.typed(a, cty.Bool, "true or false")
	if !ok {
		return false, false
	}
	return v.True(), true
}

func (d *decoder) number(a *hcl.Attribute, lo, hi float64) (float64, bool) {
	v, ok := d.typed(a, cty.Number, "a number")
	if !ok {
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	if math.IsNaN(f) || f < lo || f > hi {
		d.attrErr(a, "Value out of range", fmt.Sprintf("%s must be between %s and %s; got %s.", a.Name, formatNumber(lo), formatNumber(hi), formatNumber(f)))
		return 0, false
	}
	return f, true
}

func (d *decoder) integer(a *hcl.Attribute, lo, hi int) (int, bool) {
	v, ok := d.typed(a, cty.Number, "a whole number")
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		d.attrErr(a, "Invalid value for "+a.Name, fmt.Sprintf("%s must be a whole number; got %s.", a.Name, bf.Text('g', -1)))
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != 0 || i < int64(lo) || i > int64(hi) {
		d.attrErr(a, "Value out of range", fmt.Sprintf("%s must be between %d and %d; got %s.", a.Name, lo, hi, bf.Text('g', -1)))
		return 0, false
	}
	return int(i), true
}

func (d *decoder) duration(a *hcl.Attribute, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := d.value(a)
	if !ok {
		return 0, false
	}
	if v.Type() != cty.String {
		d.attrErr(a, "Invalid duration", fmt.Sprintf("%s must be a duration string such as \"30s\" or \"5m\"; got %s.", a.Name, v.Type().FriendlyName()))
		return 0, false
	}
	dur, err := time.ParseDuration(v.AsString())
	if err != nil {
		d.attrErr(a, "Invalid duration", fmt.Sprintf("%q is not a duration: use a number with a unit, such as \"500ms\", \"30s\" or \"5m\".", v.AsString()))
		return 0, false
	}
	if dur < lo || dur > hi {
		d.attrErr(a, "Value out of range", fmt.Sprintf("%s must be between %s and %s; got %s.", a.Name, lo, hi, dur))
		return 0, false
	}
	return dur, true
}

// strList decodes a list of strings and the range of each element.
func (d *decoder) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	v, ok := d.typed(a, cty.List(cty.String), "a list of strings")
	if !ok {
		return nil, nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.attrErr(a, "Invalid value for "+a.Name, fmt.Sprintf("%s must not contain null.", a.Name))
			return nil, nil, false
		}
		out = append(out, e.AsString())
	}
	rngs := make([]hcl.Range, len(out))
	tuple, isTuple := a.Expr.(*hclsyntax.TupleConsExpr)
	for i := range rngs {
		if isTuple && len(tuple.Exprs) == len(out) {
			rngs[i] = tuple.Exprs[i].Range()
		} else {
			rngs[i] = a.Expr.Range()
		}
	}
	return out, rngs, true
}

// object decodes a map or object into JSON-shaped Go values.
func (d *decoder) object(a *hcl.Attribute) (map[string]any, bool) {
	v, ok := d.value(a)
	if !ok {
		return nil, false
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		d.attrErr(a, "Invalid value for "+a.Name, fmt.Sprintf("%s must be an object such as { key = \"value\" }; got %s.", a.Name, v.Type().FriendlyName()))
		return nil, false
	}
	out, err := ctyToGo(v)
	if err != nil {
		d.attrErr(a, "Invalid value for "+a.Name, err.Error())
		return nil, false
	}
	m, _ := out.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, true
}

func ctyToGo(v cty.Value) (any, error) {
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ---- blocks ----

func (d *decoder) connection(b *hcl.Block) Connection {
	c, r := d.content(b, blockAttrs["connection"], nil)
	out := Default().Connection
	out.Ranges = r
	at := c.Attributes
	if a := at["token"]; a != nil {
		if name, ok := tokenEnv(a.Expr); ok {
			out.TokenEnv = name
		} else {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Token must come from the environment",
				Detail:  "Write token = env(\"DISCORD_TOKEN\") (any variable name): a token written into a policy file leaks through version control and backups. The value is not shown here.",
				Subject: ptr(a.NameRange), Extra: secretDiagnostic{}})
		}
	}
	if a := at["intents"]; a != nil {
		if names, rngs, ok := d.strList(a); ok {
			out.Intents = d.intents(a, names, rngs)
		}
	}
	if a := at["auto_reconnect"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.AutoReconnect = v
		}
	}
	if a := at["max_reconnect_attempts"]; a != nil {
		if v, ok := d.integer(a, 0, 1_000_000); ok {
			out.MaxReconnectAttempts = v
		}
	}
	if a := at["reconnect_delay"]; a != nil {
		if v, ok := d.duration(a, 0, time.Hour); ok {
			out.ReconnectDelay = v
		}
	}
	if a := at["backoff_multiplier"]; a != nil {
		if v, ok := d.number(a, 1, 10); ok {
			out.BackoffMultiplier = v
		}
	}
	maxOK := true
	if a := at["max_reconnect_delay"]; a != nil {
		if v, ok := d.duration(a, 0, 24*time.Hour); ok {
			out.MaxReconnectDelay = v
		} else {
			maxOK = false
		}
	}
	if maxOK && out.MaxReconnectDelay < out.ReconnectDelay {
		rng := r.Of("max_reconnect_delay")
		if !r.Has("max_reconnect_delay") {
			rng = r.Of("reconnect_delay")
		}
		d.errAt(rng, "Inconsistent reconnect delays",
			fmt.Sprintf("max_reconnect_delay (%s) must not be less than reconnect_delay (%s).", out.MaxReconnectDelay, out.ReconnectDelay))
	}
	if a := at["zombie_after"]; a != nil {
		if v, ok := d.number(a, 1, 10); ok {
			out.ZombieAfter = v
		}
	}
	if a := at["shards"]; a != nil {
		if v, ok := d.value(a); ok {
			switch {
			case v.Type() == cty.String && v.AsString() == "auto":
				out.Shards = 0
			case v.Type() != cty.Number:
				d.attrErr(a, "Invalid value for shards", fmt.Sprintf("shards must be \"auto\" or a whole number of shards; got %s.", v.Type().FriendlyName()))
			default:
				if n, ok := d.integer(a, 1, 65535); ok {
					out.Shards = n
				}
			}
		}
	}
	return out
}

// tokenEnv accepts exactly env("NAME") with a literal name and returns
// NAME. It never evaluates the expression, so a literal token is never
// read into memory by the decoder beyond the parser.
func tokenEnv(e hcl.Expression) (string, bool) {
	call, diags := hcl.ExprCall(e)
	if diags.HasErrors() || call.Name != "env" || len(call.Arguments) != 1 {
		return "", false
	}
	v, diags := call.Arguments[0].Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		return "", false
	}
	name := v.AsString()
	if !envName.MatchString(name) {
		return "", false
	}
	return name, true
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (d *decoder) intents(a *hcl.Attribute, names []string, rngs []hcl.Range) []string {
	var out []string
	seen := map[string]bool{}
	for i, n := range names {
		in, ok := LookupIntent(n)
		if !ok {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown intent",
				Detail: fmt.Sprintf("%q is not a gateway intent.%s", n, suggest(n, intentNames())), Subject: ptr(rngs[i]), Context: ptr(a.Range)})
			continue
		}
		if seen[in.Name] {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Duplicate intent",
				Detail: fmt.Sprintf("%s is listed more than once.", in.Name), Subject: ptr(rngs[i])})
			continue
		}
		seen[in.Name] = true
		if in.Privileged {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Privileged intent",
				Detail:  fmt.Sprintf("%s is privileged: enable it for the application in the Discord Developer Portal, or the gateway closes with 4014 (disallowed intents).", in.Name),
				Subject: ptr(rngs[i])})
		}
		out = append(out, in.Name)
	}
	if len(names) == 0 {
		d.attrErr(a, "No intents", "intents must name at least one gateway intent, e.g. [\"Guilds\"].")
	}
	return out
}

func (d *decoder) health(b *hcl.Block, refs *pluginRefs) Health {
	c, r := d.content(b, blockAttrs["health"],
		[]hcl.BlockHeaderSchema{{Type: "check", LabelNames: []string{"name"}}})
	out := Default().Health
	out.Ranges = r
	at := c.Attributes
	if a := at["enabled"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.Enabled = v
		}
	}
	intervalOK, timeoutOK := true, true
	if a := at["interval"]; a != nil {
		v, ok := d.duration(a, time.Second, time.Hour)
		intervalOK = ok
		if ok {
			out.Interval = v
		}
	}
	if a := at["timeout"]; a != nil {
		v, ok := d.duration(a, 10*time.Millisecond, time.Hour)
		timeoutOK = ok
		if ok {
			out.Timeout = v
		}
	}
	if intervalOK && timeoutOK && out.Timeout >= out.Interval {
		rng := r.Of("timeout")
		if !r.Has("timeout") {
			rng = r.Of("interval")
		}
		d.errAt(rng, "Inconsistent health timing",
			fmt.Sprintf("timeout (%s) must be shorter than interval (%s), or checks would overlap.", out.Timeout, out.Interval))
	}
	if a := at["retries"]; a != nil {
		if v, ok := d.integer(a, 0, 10); ok {
			out.Retries = v
		}
	}
	if len(c.Blocks) > 0 {
		out.Checks = nil
		seen := map[string]hcl.Range{}
		for _, cb := range c.Blocks {
			name := cb.Labels[0]
			if prev, ok := seen[name]; ok {
				d.errAt(cb.DefRange, "Duplicate check", fmt.Sprintf("check %q is already defined at %s.", name, rangeStart(prev)))
				continue
			}
			seen[name] = cb.DefRange
			out.Checks = append(out.Checks, d.check(cb, refs))
		}
	}
	return out
}

func (d *decoder) check(b *hcl.Block, refs *pluginRefs) Check {
	c, r := d.content(b, blockAttrs["check"], nil)
	out := Check{Name: b.Labels[0], Ranges: r}
	at := c.Attributes
	if a := at["type"]; a != nil {
		if v, ok := d.str(a); ok {
			switch v {
			case CheckLatency, CheckGateway, CheckErrorRate:
				out.Type = v
			default:
				d.attrErr(a, "Unknown check type", fmt.Sprintf("%q is not a built-in check type.%s Use plugin = \"NAME\" for a plugin check.",
					v, suggest(v, []string{CheckLatency, CheckGateway, CheckErrorRate})))
			}
		}
	}
	if a := at["plugin"]; a != nil {
		if v, ok := d.str(a); ok {
			out.Plugin = v
			refs.check(d, v, a.Expr.Range(), "check "+strconvQuote(out.Name))
		}
	}
	switch {
	case at["type"] != nil && at["plugin"] != nil:
		d.errAt(r.Block, "Conflicting check source", fmt.Sprintf("check %q sets both type and plugin; a check is either built in or served by a plugin.", out.Name))
	case at["type"] == nil && at["plugin"] == nil:
		d.errAt(r.Block, "Missing check type", fmt.Sprintf("check %q needs type = \"latency\", \"gateway\" or \"error_rate\", or plugin = \"NAME\".", out.Name))
	}
	if out.Type != "" {
		out.Threshold = defaultThreshold(out.Type)
	}
	if a := at["threshold"]; a != nil {
		switch out.Type {
		case CheckLatency, CheckGateway:
			if v, ok := d.duration(a, time.Millisecond, 24*time.Hour); ok {
				out.Threshold = Threshold{Set: true, IsDuration: true, Duration: v}
			}
		case CheckErrorRate:
			if v, ok := d.number(a, 0, 1); ok {
				out.Threshold = Threshold{Set: true, Number: v}
			}
		default:
			if v, ok := d.value(a); ok {
				switch {
				case v.Type() == cty.Number:
					f, _ := v.AsBigFloat().Float64()
					out.Threshold = Threshold{Set: true, Number: f}
				case v.Type() == cty.String:
					if dur, ok := d.duration(a, 0, 24*time.Hour); ok {
						out.Threshold = Threshold{Set: true, IsDuration: true, Duration: dur}
					}
				default:
					d.attrErr(a, "Invalid threshold", "threshold must be a number or a duration string.")
				}
			}
		}
	}
	if a := at["critical"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.Critical = v
		}
	}
	if a := at["config"]; a != nil {
		if v, ok := d.object(a); ok {
			out.Config = v
		}
	}
	return out
}

func (d *decoder) breaker(b *hcl.Block) CircuitBreaker {
	c, r := d.content(b, blockAttrs["circuit_breaker"], nil)
	out := Default().CircuitBreaker
	out.Ranges = r
	at := c.Attributes
	if a := at["failure_threshold"]; a != nil {
		if v, ok := d.integer(a, 1, 100_000); ok {
			out.FailureThreshold = v
		}
	}
	if a := at["recovery_threshold"]; a != nil {
		if v, ok := d.integer(a, 1, 1000); ok {
			out.RecoveryThreshold = v
		}
	}
	openOK, maxOK := true, true
	if a := at["open_timeout"]; a != nil {
		v, ok := d.duration(a, 100*time.Millisecond, 24*time.Hour)
		openOK = ok
		if ok {
			out.OpenTimeout = v
		}
	}
	if a := at["monitoring_period"]; a != nil {
		if v, ok := d.duration(a, time.Second, 24*time.Hour); ok {
			out.MonitoringPeriod = v
		}
	}
	if a := at["half_open_max_calls"]; a != nil {
		if v, ok := d.integer(a, 1, 1000); ok {
			out.HalfOpenMaxCalls = v
		}
	}
	if a := at["reset_timeout"]; a != nil {
		if v, ok := d.duration(a, time.Second, 24*time.Hour); ok {
			out.ResetTimeout = v
		}
	}
	if a := at["backoff_multiplier"]; a != nil {
		if v, ok := d.number(a, 1, 10); ok {
			out.BackoffMultiplier = v
		}
	}
	if a := at["max_open_timeout"]; a != nil {
		v, ok := d.duration(a, 100*time.Millisecond, 7*24*time.Hour)
		maxOK = ok
		if ok {
			out.MaxOpenTimeout = v
		}
	}
	if openOK && maxOK && out.MaxOpenTimeout < out.OpenTimeout {
		rng := r.Of("max_open_timeout")
		if !r.Has("max_open_timeout") {
			rng = r.Of("open_timeout")
		}
		d.errAt(rng, "Inconsistent breaker timeouts",
			fmt.Sprintf("max_open_timeout (%s) must not be less than open_timeout (%s).", out.MaxOpenTimeout, out.OpenTimeout))
	}
	return out
}

func (d *decoder) degradation(b *hcl.Block, refs *pluginRefs) Degradation {
	c, r := d.content(b, blockAttrs["degradation"], []hcl.BlockHeaderSchema{
		{Type: "thresholds"}, {Type: "level", LabelNames: []string{"name"}}, {Type: "recover"}})
	out := Degradation{Enabled: true, RecoveryDelay: Default().Degradation.RecoveryDelay, Ranges: r}
	at := c.Attributes
	if a := at["enabled"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.Enabled = v
		}
	}
	if a := at["recovery_delay"]; a != nil {
		if v, ok := d.duration(a, 0, time.Hour); ok {
			out.RecoveryDelay = v
		}
	}
	var thresholds *Thresholds
	var levelBlocks []*hcl.Block
	var recoverBlock *hcl.Block
	for _, blk := range c.Blocks {
		switch blk.Type {
		case "thresholds":
			if thresholds != nil {
				d.errAt(blk.DefRange, "Duplicate thresholds block", "Only one thresholds block is allowed.")
				continue
			}
			thresholds = d.thresholds(blk)
		case "level":
			levelBlocks = append(levelBlocks, blk)
		case "recover":
			if recoverBlock != nil {
				d.errAt(blk.DefRange, "Duplicate recover block",
					fmt.Sprintf("Only one recover block is allowed; the first is at %s.", rangeStart(recoverBlock.DefRange)))
				continue
			}
			recoverBlock = blk
		}
	}
	if a := at["recovery_threshold"]; a != nil {
		if v, ok := d.number(a, 0.01, 1); ok {
			if thresholds == nil {
				t := defaultThresholds()
				thresholds = &t
			}
			thresholds.RecoveryThreshold = v
			thresholds.Ranges.set("recovery_threshold", a.Range)
		}
	}

	declared := map[Level]bool{}
	last := None
	var lastRange hcl.Range
	for _, lb := range levelBlocks {
		lvl, err := ParseLevel(lb.Labels[0])
		if err != nil || lvl == None {
			d.errAt(lb.LabelRanges[0], "Unknown degradation level",
				fmt.Sprintf("%q is not a level: use \"minimal\", \"moderate\", \"severe\" or \"critical\".", lb.Labels[0]))
			continue
		}
		if declared[lvl] {
			d.errAt(lb.LabelRanges[0], "Duplicate level", fmt.Sprintf("level %q is declared twice.", lb.Labels[0]))
			continue
		}
		if lvl < last {
			d.errAt(lb.LabelRanges[0], "Levels out of order",
				fmt.Sprintf("level %q comes after level %q (at %s): declare levels from least to most severe (minimal, moderate, severe, critical).",
					strings.ToLower(lvl.String()), strings.ToLower(last.String()), rangeStart(lastRange)))
		}
		declared[lvl] = true
		last, lastRange = lvl, lb.LabelRanges[0]
		out.Levels = append(out.Levels, d.level(lb, lvl, refs))
	}
	sort.SliceStable(out.Levels, func(i, j int) bool { return out.Levels[i].Level < out.Levels[j].Level })

	if recoverBlock != nil {
		rc, _ := d.content(recoverBlock, blockAttrs["recover"], nil)
		if a := rc.Attributes["when"]; a != nil {
			out.Recover = d.condition(a, false)
		} else {
			d.errAt(recoverBlock.DefRange, "Missing recover condition", "The recover block needs when = \"...\".")
		}
	}

	switch {
	case thresholds != nil:
		out.Thresholds = thresholds
		out.Levels = mergeGenerated(out.Levels, thresholds.levels())
		if recoverBlock == nil {
			out.Recover = thresholds.recover()
		}
	case len(levelBlocks) == 0:
		def := Default().Degradation
		out.Thresholds, out.Levels = def.Thresholds, def.Levels
		if recoverBlock == nil {
			out.Recover = def.Recover
		}
	case recoverBlock == nil:
		d.errAt(r.Block, "Missing recover block",
			"A degradation block that declares levels needs a recover { when = \"...\" } block (or a thresholds block to generate one), or the level could never step down.")
	}
	return out
}

func (d *decoder) thresholds(b *hcl.Block) *Thresholds {
	c, r := d.content(b, blockAttrs["thresholds"], nil)
	t := defaultThresholds()
	t.Ranges = r
	at := c.Attributes
	if a := at["latency"]; a != nil {
		if v, ok := d.duration(a, time.Millisecond, time.Hour); ok {
			t.Latency = v
		}
	}
	if a := at["error_rate"]; a != nil {
		if v, ok := d.number(a, 0.001, 1); ok {
			t.ErrorRate = v
		}
	}
	if a := at["consecutive_errors"]; a != nil {
		if v, ok := d.integer(a, 1, 1_000_000); ok {
			t.ConsecutiveErrors = v
		}
	}
	return &t
}

func (d *decoder) level(b *hcl.Block, lvl Level, refs *pluginRefs) LevelRule {
	c, r := d.content(b, blockAttrs["level"], nil)
	out := LevelRule{Level: lvl, Ranges: r}
	if a := c.Attributes["when"]; a != nil {
		out.When = d.condition(a, false)
	} else {
		d.errAt(b.DefRange, "Missing level condition", fmt.Sprintf("level %q needs when = \"...\".", b.Labels[0]))
	}
	if a := c.Attributes["actions"]; a != nil {
		if names, rngs, ok := d.strList(a); ok {
			seen := map[string]bool{}
			for i, n := range names {
				if seen[n] {
					d.errAt(rngs[i], "Duplicate action", fmt.Sprintf("%q is listed twice.", n))
					continue
				}
				seen[n] = true
				if !d.actionOK(n, rngs[i], refs) {
					continue
				}
				out.Actions = append(out.Actions, n)
			}
		}
	}
	return out
}

func (d *decoder) actionOK(name string, rng hcl.Range, refs *pluginRefs) bool {
	if plugin, act, ok := strings.Cut(name, "."); ok {
		if act == "" || plugin == "" {
			d.errAt(rng, "Invalid action name", fmt.Sprintf("%q: a plugin action is written \"plugin.action\".", name))
			return false
		}
		return refs.check(d, plugin, rng, "action "+strconvQuote(name))
	}
	for _, a := range BuiltinActions {
		if a == name {
			return true
		}
	}
	d.errAt(rng, "Unknown action", fmt.Sprintf("%q is not a built-in action.%s A plugin action is written \"plugin.action\".", name, suggest(name, BuiltinActions)))
	return false
}

func (d *decoder) recovery(blocks []*hcl.Block, refs *pluginRefs) []RecoveryRule {
	var out []RecoveryRule
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, ok := seen[name]; ok {
			d.errAt(b.DefRange, "Duplicate recovery rule", fmt.Sprintf("recovery %q is already defined at %s.", name, rangeStart(prev)))
			continue
		}
		seen[name] = b.DefRange
		c, r := d.content(b, blockAttrs["recovery"], nil)
		rule := RecoveryRule{Name: name, Priority: DefaultRecoveryPriority, Use: name, MaxAttempts: 3, Ranges: r}
		at := c.Attributes
		if a := at["priority"]; a != nil {
			if v, ok := d.integer(a, 0, 1_000_000); ok {
				rule.Priority = v
			}
		}
		if a := at["when"]; a != nil {
			rule.When = d.condition(a, true)
		}
		useRange := r.Block
		if a := at["use"]; a != nil {
			if v, ok := d.str(a); ok {
				rule.Use = v
				useRange = a.Expr.Range()
			}
		}
		d.strategyOK(rule.Use, useRange, refs, at["use"] == nil)
		if a := at["max_attempts"]; a != nil {
			if v, ok := d.integer(a, 1, 1000); ok {
				rule.MaxAttempts = v
			}
		}
		out = append(out, rule)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
}

func (d *decoder) strategyOK(use string, rng hcl.Range, refs *pluginRefs, fromLabel bool) {
	if plugin, s, ok := strings.Cut(use, "."); ok {
		if plugin == "" || s == "" {
			d.errAt(rng, "Invalid strategy name", fmt.Sprintf("%q: a plugin strategy is written \"plugin.strategy\".", use))
			return
		}
		refs.check(d, plugin, rng, "recovery strategy "+strconvQuote(use))
		return
	}
	for _, s := range BuiltinStrategies {
		if s == use {
			return
		}
	}
	detail := fmt.Sprintf("%q is not a built-in strategy.%s A plugin strategy is written \"plugin.strategy\".", use, suggest(use, BuiltinStrategies))
	if fromLabel {
		detail = fmt.Sprintf("The rule has no use attribute, so its name %q is taken as the strategy, and it is not a built-in one.%s Set use = \"...\".",
			use, suggest(use, BuiltinStrategies))
	}
	d.errAt(rng, "Unknown recovery strategy", detail)
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
var pluginName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

func (d *decoder) plugins(blocks []*hcl.Block) []Plugin {
	var out []Plugin
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if !pluginName.MatchString(name) {
			d.errAt(b.LabelRanges[0], "Invalid plugin name",
				fmt.Sprintf("%q: a plugin name starts with a letter and has only letters, digits, - and _ (it is used as \"%s.action\").", name, name))
			continue
		}
		if prev, ok := seen[name]; ok {
			d.errAt(b.DefRange, "Duplicate plugin", fmt.Sprintf("plugin %q is already declared at %s.", name, rangeStart(prev)))
			continue
		}
		seen[name] = b.DefRange
		c, r := d.content(b, blockAttrs["plugin"], nil)
		pl := Plugin{Name: name, Ranges: r}
		at := c.Attributes
		if a := at["path"]; a != nil {
			if v, ok := d.str(a); ok {
				if strings.TrimSpace(v) == "" {
					d.attrErr(a, "Empty plugin path", "path must name the plugin binary.")
				}
				pl.Path = v
			}
		} else {
			d.errAt(b.DefRange, "Missing plugin path", fmt.Sprintf("plugin %q needs path = \"./bin/NAME\".", name))
		}
		if a := at["sha256"]; a != nil {
			if v, ok := d.str(a); ok {
				if !sha256Hex.MatchString(v) {
					d.attrErr(a, "Invalid sha256", "sha256 must be 64 hexadecimal digits (the output of sha256sum).")
				} else {
					pl.SHA256 = strings.ToLower(v)
				}
			}
		}
		if a := at["args"]; a != nil {
			if v, _, ok := d.strList(a); ok {
				pl.Args = v
			}
		}
		if a := at["config"]; a != nil {
			if v, ok := d.object(a); ok {
				pl.Config = v
			}
		}
		out = append(out, pl)
	}
	return out
}

type pluginRefs struct {
	declared map[string]bool
	used     map[string]bool
}

func (r *pluginRefs) check(d *decoder, name string, rng hcl.Range, what string) bool {
	if r.declared[name] {
		r.used[name] = true
		return true
	}
	names := sortedKeys(r.declared)
	detail := fmt.Sprintf("%s uses plugin %q, which no plugin block declares.", what, name)
	if len(names) > 0 {
		detail += suggest(name, names)
	} else {
		detail += fmt.Sprintf(" Add plugin %q { path = \"...\" }.", name)
	}
	d.errAt(rng, "Undeclared plugin", detail)
	return false
}

// ---- conditions ----

func (d *decoder) condition(a *hcl.Attribute, recovery bool) Condition {
	s, ok := d.str(a)
	if !ok {
		return Condition{}
	}
	c := Condition{Expr: s, Range: a.Expr.Range()}
	prog, errs := compileCondition(s, recovery, d.opts.MaxConditionNodes)
	for _, e := range errs {
		rng := d.condRange(a.Expr, s, e.from, e.to)
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: e.summary, Detail: e.detail, Subject: &rng})
	}
	c.prog = prog
	return c
}

// condRange maps the rune range [from, to) of the condition text s onto
// the source, through escapes, heredoc indentation, interpolations and
// references to local values. from < 0 means the whole expression.
func (d *decoder) condRange(e hcl.Expression, s string, from, to int) hcl.Range {
	if from < 0 {
		return e.Range()
	}
	start, ok1 := d.condPos(e, from, 0)
	end, ok2 := d.condPos(e, to, 0)
	if !ok1 {
		return e.Range()
	}
	if !ok2 || end.Byte <= start.Byte {
		end = d.advance(start, start.Byte+1)
	}
	return hcl.Range{Filename: d.filename, Start: start, End: end}
}

func (d *decoder) condPos(e hcl.Expression, off, depth int) (hcl.Pos, bool) {
	if depth > 8 {
		return hcl.Pos{}, false
	}
	switch x := e.(type) {
	case *hclsyntax.TemplateExpr:
		cum := 0
		for i, part := range x.Parts {
			lit, isLit := part.(*hclsyntax.LiteralValueExpr)
			var text string
			if isLit {
				if lit.Val.Type() == cty.String && lit.Val.IsKnown() && !lit.Val.IsNull() {
					text = lit.Val.AsString()
				}
			} else if v, diags := part.Value(d.ctx); !diags.HasErrors() {
				if sv, err := convert.Convert(v, cty.String); err == nil && sv.IsKnown() && !sv.IsNull() {
					text = sv.AsString()
				}
			}
			n := utf8.RuneCountInString(text)
			last := i == len(x.Parts)-1
			if off < cum+n || (last && off == cum+n) {
				if isLit {
					quoted := x.SrcRange.Start.Byte < len(d.src) && d.src[x.SrcRange.Start.Byte] == '"'
					return d.alignedPos(part.Range(), text, off-cum, quoted), true
				}
				if p, ok := d.condPos(part, off-cum, depth+1); ok {
					return p, true
				}
				return part.Range().Start, true
			}
			cum += n
		}
		return x.SrcRange.Start, true
	case *hclsyntax.TemplateWrapExpr:
		return d.condPos(x.Wrapped, off, depth+1)
	case *hclsyntax.ScopeTraversalExpr:
		if x.Traversal.RootName() == "local" && len(x.Traversal) == 2 {
			if at, ok := x.Traversal[1].(hcl.TraverseAttr); ok {
				if le, ok := d.localExprs[at.Name]; ok {
					return d.condPos(le, off, depth+1)
				}
			}
		}
		return x.SrcRange.Start, true
	default:
		return e.Range().Start, true
	}
}

// alignedPos finds the source position of decoded rune off in a literal
// template part whose source is rng and decoded value is text. It walks
// the raw source and the value side by side: escape sequences ("\n",
// "\u00e9", "$${") consume several source bytes for one rune, and source
// white space absent from the value (heredoc indentation) is skipped.
func (d *decoder) alignedPos(rng hcl.Range, text string, off int, quoted bool) hcl.Pos {
	raw := d.src[rng.Start.Byte:min(rng.End.Byte, len(d.src))]
	runes := []rune(text)
	i := 0
	for k, r := range runes {
		if k == off {
			// Skip source-only white space (heredoc indentation) that
			// precedes the target rune.
			for i < len(raw) && rawRuneLen(raw[i:], quoted) == 0 {
				rr, size := utf8.DecodeRune(raw[i:])
				if rr == r || (rr != ' ' && rr != '\t') {
					break
				}
				i += size
			}
			break
		}
		for i < len(raw) {
			n := rawRuneLen(raw[i:], quoted)
			if n > 0 {
				i += n
				break
			}
			rr, size := utf8.DecodeRune(raw[i:])
			if rr == r {
				i += size
				break
			}
			i += size // source-only character, e.g. stripped indentation
		}
	}
	return d.advance(rng.Start, rng.Start.Byte+i)
}

// rawRuneLen returns the source length of an escape sequence at b (one
// decoded rune), or 0 when b does not start with one.
func rawRuneLen(b []byte, quoted bool) int {
	if len(b) >= 3 && (b[0] == '$' || b[0] == '%') && b[1] == b[0] && b[2] == '{' {
		return 2
	}
	if !quoted || len(b) < 2 || b[0] != '\\' {
		return 0
	}
	switch b[1] {
	case 'u':
		return min(6, len(b))
	case 'U':
		return min(10, len(b))
	default:
		return 2
	}
}

// advance returns the position of byte offset target, counting lines and
// grapheme-cluster columns from start the way HCL's own ranges do.
func (d *decoder) advance(start hcl.Pos, target int) hcl.Pos {
	target = min(target, len(d.src))
	n := target - start.Byte
	if n <= 0 {
		return start
	}
	sc := hcl.NewRangeScannerFragment(d.src, d.filename, start, func(data []byte, atEOF bool) (int, []byte, error) {
		return n, data[:n], nil
	})
	if !sc.Scan() {
		return start
	}
	return sc.Range().End
}

// ---- small helpers ----

type secretDiagnostic struct{}

func ptr(r hcl.Range) *hcl.Range { return &r }

func rangeStart(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// Limits that keep a hostile or mistaken file from making the decoder
// spend unbounded time or memory (HCL itself has none): a number literal
// beyond float64's range would be formatted digit by digit when it meets
// a string template, and locals that concatenate each other grow
// exponentially.
const (
	maxBinaryExponent = 1100    // |exponent| of a number, base 2 (float64 tops out at 1024)
	maxLocalSize      = 1 << 20 // bytes of strings in one local value
)

func checkNumberLiterals(src []byte, filename string) hcl.Diagnostics {
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	var diags hcl.Diagnostics
	for _, t := range toks {
		if t.Type != hclsyntax.TokenNumberLit {
			continue
		}
		f, _, err := big.ParseFloat(string(t.Bytes), 10, 512, big.ToNearestEven)
		if err != nil || numberOutOfRange(f) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Number out of range",
				Detail: "Numbers in a policy must fit a 64-bit float (about ±1.8e308).", Subject: ptr(t.Range)})
		}
	}
	return diags
}

func numberOutOfRange(f *big.Float) bool {
	if f.IsInf() {
		return true
	}
	e := f.MantExp(nil)
	return f.Sign() != 0 && (e > maxBinaryExponent || e < -maxBinaryExponent)
}

// valueTooLarge describes why v is too large to keep, or returns "".
func valueTooLarge(v cty.Value) string {
	size, huge := 0, false
	_ = cty.Walk(v, func(_ cty.Path, x cty.Value) (bool, error) {
		if !x.IsKnown() || x.IsNull() {
			return true, nil
		}
		switch x.Type() {
		case cty.String:
			size += len(x.AsString())
		case cty.Number:
			huge = huge || numberOutOfRange(x.AsBigFloat())
		}
		return size <= maxLocalSize && !huge, nil
	})
	switch {
	case huge:
		return "holds a number beyond a 64-bit float's range"
	case size > maxLocalSize:
		return fmt.Sprintf("holds more than %d bytes of text", maxLocalSize)
	}
	return ""
}
