package policy

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The native evaluator must decide exactly as expr's VM does. These tests
// compare both on every condition lifeline ships and on random and
// boundary snapshots; FuzzCompiledMatchesVM (native_fuzz_test.go) does the
// same on generated conditions.

// envField returns the Env field of a dotted variable name.
func envField(env *Env, name string) reflect.Value {
	v := reflect.ValueOf(env).Elem()
outer:
	for _, part := range strings.Split(name, ".") {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("expr") == part {
				v = v.Field(i)
				continue outer
			}
		}
		return reflect.Value{}
	}
	return v
}

// readVar reads a variable the native way.
func readVar(name string, s *metrics.Snapshot, info *ErrorInfo) any {
	src := sources[name]
	n := &node{op: nVar, k: src.k, src: src}
	switch src.k {
	case kBool:
		return n.evalBool(s, info)
	case kInt:
		return n.evalInt(s, info)
	case kFloat:
		return n.evalFloat(s, info)
	default:
		return n.evalString(s, info)
	}
}

// sameValue compares two variable values, NaN equal to NaN.
func sameValue(a, b any) bool {
	if x, ok := a.(float64); ok {
		if y, ok := b.(float64); ok && math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
	}
	return a == b
}

func TestVariableSources(t *testing.T) {
	want := map[string]kind{"float": kFloat, "int": kInt, "string": kString, "bool": kBool}
	vars := Variables()
	for _, v := range vars {
		src, ok := sources[v.Name]
		if !ok {
			t.Errorf("variable %s has no source: add its metrics.Snapshot field to snapshotFields (source.go)", v.Name)
			continue
		}
		if src.k != want[v.Type] {
			t.Errorf("source of %s has kind %d, want %d (%s)", v.Name, src.k, want[v.Type], v.Type)
		}
		if src.onError != v.RecoveryOnly {
			t.Errorf("source of %s: onError %v, RecoveryOnly %v", v.Name, src.onError, v.RecoveryOnly)
		}
	}
	if len(sources) != len(vars) {
		t.Errorf("%d sources for %d variables", len(sources), len(vars))
	}
	for name := range snapshotFields {
		if _, ok := sources[name]; !ok {
			t.Errorf("snapshotFields names %s, which is not a variable or whose field types have no conversion", name)
		}
	}
	// Each source reads what Env.fill writes.
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 300; i++ {
		s, info := randomSnapshot(r, nil)
		var env Env
		env.Fill(&s)
		env.Error = info
		for _, v := range vars {
			got := readVar(v.Name, &s, &info)
			if w := envField(&env, v.Name).Interface(); !sameValue(got, w) {
				t.Fatalf("%s: source reads %#v, Env.Fill wrote %#v (snapshot %+v)", v.Name, got, w, s)
			}
		}
	}
}

// shippedConditions returns every condition of the policies lifeline
// ships and tests with: policies/*.hcl, testdata/valid/*.hcl and Default().
func shippedConditions(t *testing.T) map[string]*program {
	t.Helper()
	out := map[string]*program{}
	for _, p := range shippedPolicies(t) {
		for _, c := range conditionsOf(p) {
			if c.prog != nil {
				out[c.Expr] = c.prog
			}
		}
	}
	return out
}

func shippedPolicies(t *testing.T) map[string]*Policy {
	t.Helper()
	out := map[string]*Policy{"Default()": Default()}
	files, _ := filepath.Glob("../../policies/*.hcl")
	valid, _ := filepath.Glob("testdata/valid/*.hcl")
	files = append(files, valid...)
	if len(files) < 6 {
		t.Fatalf("found only %d policy files", len(files))
	}
	for _, f := range files {
		p, err := Load(f, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		out[f] = p
	}
	return out
}

func conditionsOf(p *Policy) []Condition {
	var out []Condition
	for _, l := range p.Degradation.Levels {
		out = append(out, l.When)
	}
	out = append(out, p.Degradation.Recover)
	for _, r := range p.Recovery {
		out = append(out, r.When)
	}
	return out
}

// differ evaluates prog on s and info natively (the node tree and, when
// it has one, the flat form) and on the VM, and describes any difference.
// A VM error counts as one: a condition with a native form must not be
// able to fail.
func differ(m *vm.VM, prog *program, s *metrics.Snapshot, info *ErrorInfo) string {
	if prog.native == nil {
		if prog.flat.ok {
			return "a flat form without a native one"
		}
		return ""
	}
	var env Env
	env.Fill(s)
	env.Error = *info
	out, err := m.Run(prog.vm, &env)
	if err != nil {
		return fmt.Sprintf("the VM failed (%v) where the native form cannot", err)
	}
	if got := prog.native.evalBool(s, info); got != out.(bool) {
		return fmt.Sprintf("native %v, VM %v", got, out)
	}
	if prog.flat.ok {
		if got := prog.flat.eval(s); got != out.(bool) {
			return fmt.Sprintf("flat form %v, VM %v", got, out)
		}
	}
	return ""
}

func TestNativeMatchesVM(t *testing.T) {
	progs := shippedConditions(t)
	for _, src := range differentialExprs {
		prog, errs := compileCondition(src, true, 0)
		if len(errs) > 0 {
			t.Errorf("%q: %+v", src, errs)
			continue
		}
		progs[src] = prog
	}
	r := rand.New(rand.NewSource(1))
	var m vm.VM
	native := 0
	for src, prog := range progs {
		if prog.native != nil {
			native++
		}
		consts := constantsOf(src)
		for i := 0; i < 150; i++ {
			s, info := randomSnapshot(r, consts)
			if d := differ(&m, prog, &s, &info); d != "" {
				t.Fatalf("%q: %s on snapshot %+v, error %+v", src, d, s, info)
			}
		}
	}
	if native < len(progs)-2 {
		t.Errorf("only %d of %d conditions have a native form", native, len(progs))
	}
}

// vmOnly returns a copy of p whose conditions all run on expr's VM.
func vmOnly(p *Policy) *Policy {
	q := *p
	strip := func(c *Condition) {
		if c.prog != nil {
			cp := *c.prog
			cp.native = nil
			c.prog = &cp
		}
	}
	q.Degradation.Levels = append([]LevelRule(nil), p.Degradation.Levels...)
	for i := range q.Degradation.Levels {
		strip(&q.Degradation.Levels[i].When)
	}
	strip(&q.Degradation.Recover)
	q.Recovery = append([]RecoveryRule(nil), p.Recovery...)
	for i := range q.Recovery {
		strip(&q.Recovery[i].When)
	}
	q.compile()
	return &q
}

// TestEvaluateMatchesVMPolicy checks Policy.Evaluate and ChooseRecovery,
// native, return exactly what they return with every condition on the
// VM (the evaluation before the native evaluator existed).
func TestEvaluateMatchesVMPolicy(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for name, p := range shippedPolicies(t) {
		if !p.nativeDegrade || !p.nativeRecovery {
			// The default policy must be: it is what the benchmark measures.
			// Others may use what only the VM runs; they must still agree.
			report := t.Logf
			if name == "Default()" || strings.HasSuffix(name, "default.hcl") {
				report = t.Errorf
			}
			report("%s: not every condition is native (degradation %v, recovery %v)", name, p.nativeDegrade, p.nativeRecovery)
		}
		if (name == "Default()" || strings.HasSuffix(name, "default.hcl")) && !p.allFlat {
			t.Errorf("%s: the degradation conditions are not all flat", name)
		}
		slow := vmOnly(p)
		if slow.nativeDegrade && slow.Degradation.Enabled && len(slow.Degradation.Levels) > 0 {
			t.Fatalf("%s: vmOnly left native conditions", name)
		}
		var consts []float64
		for _, c := range conditionsOf(p) {
			consts = append(consts, constantsOf(c.Expr)...)
		}
		e, se := p.NewEvaluator(), slow.NewEvaluator()
		for i := 0; i < 300; i++ {
			s, info := randomSnapshot(r, consts)
			want := slow.Evaluate(&s)
			if got := p.Evaluate(&s); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: Evaluate %+v, on the VM %+v (snapshot %+v)", name, got, want, s)
			}
			if got := e.Evaluate(&s); !reflect.DeepEqual(got, se.Evaluate(&s)) {
				t.Fatalf("%s: Evaluator.Evaluate %+v, on the VM %+v", name, got, want)
			}
			wantRules, wantErr := slow.ChooseRecovery(info, &s)
			gotRules, gotErr := p.ChooseRecovery(info, &s)
			// The rules' compiled conditions differ (vmOnly's copies): compare the rest.
			if !reflect.DeepEqual(withoutPrograms(gotRules), withoutPrograms(wantRules)) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("%s: ChooseRecovery %v %v, on the VM %v %v (error %+v)", name, names(gotRules), gotErr, names(wantRules), wantErr, info)
			}
		}
	}
}

func withoutPrograms(rs []RecoveryRule) []RecoveryRule {
	out := append([]RecoveryRule(nil), rs...)
	for i := range out {
		out[i].When.prog = nil
	}
	return out
}

func names(rs []RecoveryRule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// levelShapes are condition shapes the flat form and the tree both
// handle, for TestEvaluateShapesMatchVM.
var levelShapes = []string{
	"latency.heartbeat > 1000",
	"!(latency.heartbeat > 1000)",
	"latency.heartbeat != 1000 && errors.rate != 0.1",
	"!(latency.heartbeat > 1000 || errors.rate > 0.1 || errors.consecutive >= 5)",
	"not (latency.heartbeat < 500 && errors.rate < 0.05 and errors.consecutive < 2.5)",
	"errors.rate in [0.5, 1, 0.25]",
	"errors.rate not in [0.5, 1]",
	"errors.consecutive in 2..6",
	"errors.consecutive not in 2..6 || health.score <= 50",
	"shards.ready_ratio < 0.5 || fleet.unhealthy_ratio > 0.3 || shard.id == 0",
	"gateway.connected && latency.heartbeat > 1000",
	"gateway.state == 'READY' || errors.rate > 0.5",
	"(errors.rate > 0.2 || latency.heartbeat > 2000) && errors.consecutive > 1",
	"gateway.last_ack_age / gateway.heartbeat_interval > 1.5",
	"errors.consecutive % 2 == 1",
	"errors.consecutive % (shard.count + 1) == 1 || max(errors.rate, 1) > 1",
}

// TestEvaluateShapesMatchVM puts each shape in every level and the
// recover block of a policy, and compares Evaluate with the VM's.
func TestEvaluateShapesMatchVM(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	levels := []string{"minimal", "moderate", "severe", "critical"}
	for i, shape := range levelShapes {
		var b strings.Builder
		b.WriteString("degradation {\n")
		for j, l := range levels {
			fmt.Fprintf(&b, "  level %q { when = %q }\n", l, levelShapes[(i+j)%len(levelShapes)])
		}
		fmt.Fprintf(&b, "  recover { when = %q }\n}\n", shape)
		p, err := LoadSource("shapes.hcl", []byte(b.String()), testOptions())
		if err != nil {
			t.Fatalf("%s: %v", b.String(), err)
		}
		slow := vmOnly(p)
		var consts []float64
		for _, c := range conditionsOf(p) {
			consts = append(consts, constantsOf(c.Expr)...)
		}
		for k := 0; k < 400; k++ {
			s, _ := randomSnapshot(r, consts)
			if got, want := p.Evaluate(&s), slow.Evaluate(&s); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s\nEvaluate %+v, on the VM %+v (snapshot %+v)", b.String(), got, want, s)
			}
		}
	}
	for _, src := range levelShapes[:9] {
		prog, errs := compileCondition(src, false, 0)
		if len(errs) > 0 || !prog.flat.ok {
			t.Errorf("%q has no flat form (%v)", src, errs)
		}
	}
}

// TestMixedPolicyFillsEnvOnce: a policy with one condition outside the
// native subset evaluates the rest natively and the VM one over an Env
// filled for this snapshot (not the previous one).
func TestMixedPolicyFillsEnvOnce(t *testing.T) {
	p, err := LoadSource("mixed.hcl", []byte(`
degradation {
  level "minimal" { when = "errors.consecutive % (shard.count + 1) == 1" }
  level "moderate" { when = "errors.rate > 0.5" }
  recover { when = "max(errors.consecutive, 0.5) < 1" }
}
recovery "odd" {
  when = "errors.consecutive % (shard.count + 1) == 1 && error.kind == 'zombie'"
  use  = "reconnect"
}
recovery "any" {
  when = "error.kind == 'zombie'"
  use  = "resume"
}
`), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if p.nativeDegrade || p.nativeRecovery || p.levels[Moderate].prog.native == nil {
		t.Fatalf("native flags %v %v", p.nativeDegrade, p.nativeRecovery)
	}
	e := p.NewEvaluator()
	for i, tt := range []struct {
		consecutive uint64
		rate        float64
		level       Level
		recover     bool
		rules       int
	}{{1, 0, Minimal, false, 2}, {2, 0, None, false, 1}, {0, 0.9, Moderate, true, 1}, {3, 0.9, Moderate, false, 2}, {0, 0, None, true, 1}} {
		s := snap(func(s *metrics.Snapshot) { s.Errors.Consecutive, s.Errors.Rate = tt.consecutive, tt.rate })
		for _, d := range []Decision{p.Evaluate(s), e.Evaluate(s)} {
			if d.Level != tt.level || d.Recover != tt.recover || d.Err != nil {
				t.Errorf("case %d: %+v, want level %s recover %v", i, d, tt.level, tt.recover)
			}
		}
		rules, err := p.ChooseRecovery(ErrorInfo{Kind: "zombie"}, s)
		if err != nil || len(rules) != tt.rules {
			t.Errorf("case %d: rules %v %v, want %d", i, names(rules), err, tt.rules)
		}
	}
}

// TestRangeLeafBoundaries checks the range leaves at the edges of their
// intervals (one raw unit either side), at the ends of the raw types and
// in between, against the VM, for constants that fall between two
// representable values.
func TestRangeLeafBoundaries(t *testing.T) {
	consts := []string{"0", "1", "-1", "1000", "999.9999995", "1000.0000001", "0.0000001", "-0.0000005", "2.5", "-2.5",
		"1e30", "-1e30", strconv.Itoa(math.MaxInt), strconv.Itoa(-math.MaxInt), "9223372036854.775807", "4004", "0.1 + 0.2"}
	consts = append(consts, "0.1", "0.30000000000000004", "1e-320", "-1e-320", "0.0", "100", "99.99999999999999")
	vars := []string{"latency.heartbeat", "gateway.down_for", "errors.consecutive", "rest.requests", "gateway.last_close_code", "shard.id",
		"error.close_code", "errors.rate", "health.score"}
	var m vm.VM
	for _, v := range vars {
		src := sources[v]
		for _, c := range consts {
			for op, mop := range map[string]string{">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="} {
				for _, text := range []string{v + " " + op + " " + c, "(" + c + ") " + mop + " " + v} {
					prog, errs := compileCondition(text, true, 0)
					if len(errs) > 0 {
						t.Fatalf("%q: %+v", text, errs)
					}
					n := prog.native
					if n == nil {
						t.Fatalf("%q has no native form", text)
					}
					// A 32-bit int field takes the generic comparison.
					generic := src.conv == convInt && strconv.IntSize != 64 && n.op == nCmp
					if n.op != nRange && n.op != nConst && !generic {
						t.Fatalf("%q: not a range leaf but %s", text, opName(n.op))
					}
					for _, raw := range boundaryRaws(n) {
						var s metrics.Snapshot
						var info ErrorInfo
						base := unsafe.Pointer(&s)
						if src.onError {
							base = unsafe.Pointer(&info)
						}
						writeRaw(unsafe.Add(base, src.off), src.conv, raw)
						if d := differ(&m, prog, &s, &info); d != "" {
							t.Fatalf("%q at raw %#x: %s (leaf %s %+v neg %v)", text, raw, d, opName(n.op), n.rt, n.neg)
						}
					}
				}
			}
		}
	}
}

// boundaryRaws returns raw values (as uint64 bits) around a leaf's ends.
func boundaryRaws(n *node) []uint64 {
	minus := int64(-1e9)
	out := []uint64{0, 1, math.MaxUint64, 1 << 63, 1<<63 - 1, 1000, 1e9, uint64(minus)}
	add := func(v uint64) { out = append(out, v-2, v-1, v, v+1, v+2) }
	dom := rawDomain{sm: n.rt.sm, x: n.rt.x}
	if n.op == nRange {
		add(dom.bits(n.rt.lo))
		add(dom.bits(n.rt.lo + n.rt.span))
	}
	if n.rt.sm != 0 {
		for _, f := range []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 0.1, -0.1, math.SmallestNonzeroFloat64} {
			out = append(out, math.Float64bits(f))
		}
	}
	return out
}

// writeRaw stores raw bits into a field of the given conversion.
func writeRaw(p unsafe.Pointer, c conv, raw uint64) {
	switch c {
	case convMillis, convInt64:
		*(*int64)(p) = int64(raw)
	case convInt:
		*(*int)(p) = int(int64(raw))
	case convCount:
		*(*uint64)(p) = raw
	case convFloat:
		*(*float64)(p) = math.Float64frombits(raw)
	}
}

// TestNativeLeaves checks "variable op constant" becomes one leaf node.
func TestNativeLeaves(t *testing.T) {
	intLeaf := nRange
	if strconv.IntSize != 64 {
		intLeaf = nCmp // a 32-bit int field takes the generic comparison
	}
	for src, want := range map[string]nop{
		"latency.heartbeat > 1000":                     nRange,
		"errors.rate > 0.1":                            nRange,
		"errors.consecutive >= 5":                      nRange,
		"errors.consecutive < 2.5":                     nRange,
		"5 <= errors.consecutive":                      nRange,
		"gateway.state == 'READY'":                     nStrEq,
		"'OPEN' != breaker.state":                      nStrEq,
		"shard.id == 3":                                intLeaf,
		"error.close_code != 4004":                     intLeaf,
		"latency.heartbeat > 1e400":                    nConst, // +Inf: never
		"errors.consecutive < -1":                      nConst, // a counter is never negative
		"gateway.sequence > 10":                        nCmp,   // int64 → int: the generic path
		"degradation.age > 1000":                       nCmp,
		"error.kind in ['zombie', 'x']":                nInStrings,
		"error.close_code in [1, 2]":                   nInInts,
		"errors.rate in [0.5, 1]":                      nTests,
		"error.kind == 'x' || error.close_code > 4000": nOr,
	} {
		prog, errs := compileCondition(src, true, 0)
		if len(errs) > 0 {
			if strings.Contains(src, "1e400") {
				continue // expr may refuse the literal; nothing to check then
			}
			t.Fatalf("%q: %+v", src, errs)
		}
		if prog.native == nil || prog.native.op != want {
			got := "nil"
			if prog.native != nil {
				got = opName(prog.native.op)
			}
			t.Errorf("%q compiled to %s, want %s", src, got, opName(want))
		}
	}
	for _, src := range []string{"errors.consecutive % shard.count == 0", "errors.consecutive % 0 == 0", "errors.rate in 0..1", "max(latency.heartbeat, 1) > 2"} {
		prog, errs := compileCondition(src, false, 0)
		if len(errs) > 0 {
			t.Fatalf("%q: %+v", src, errs)
		}
		if prog.native != nil {
			t.Errorf("%q has a native form; the subset does not cover it", src)
		}
	}
}

// TestLenCountsCharacters pins what len() means (expr counts runes).
func TestLenCountsCharacters(t *testing.T) {
	prog, errs := compileCondition("len(error.message) == 3", true, 0)
	if len(errs) > 0 || prog.native == nil {
		t.Fatalf("%+v", errs)
	}
	s := snap(nil)
	info := ErrorInfo{Message: "été"}
	var m vm.VM
	if d := differ(&m, prog, s, &info); d != "" {
		t.Fatal(d)
	}
	if !prog.native.evalBool(s, &info) {
		t.Error(`len("été") is not 3`)
	}
}

// TestEvaluateStackSnapshotDoesNotAllocate: the orchestrator evaluates a
// Snapshot on its stack; the native evaluator must not make it escape.
func TestEvaluateStackSnapshotDoesNotAllocate(t *testing.T) {
	p := Default()
	base := *snap(nil)
	var d Decision
	if n := testing.AllocsPerRun(200, func() {
		s := base
		s.Errors.Rate = 0.3
		d = p.Evaluate(&s)
	}); n != 0 {
		t.Errorf("Policy.Evaluate of a stack Snapshot allocates %v times", n)
	}
	if d.Level != Moderate {
		t.Errorf("level %s", d.Level)
	}
	var rules []RecoveryRule
	if n := testing.AllocsPerRun(200, func() {
		s := base
		rules, _ = p.appendRecovery(nil, rules[:0], ErrorInfo{Kind: "zombie"}, &s)
	}); n != 0 {
		t.Errorf("native recovery choice of a stack Snapshot allocates %v times", n)
	}
}

// randomSnapshot returns a snapshot and an error whose values go both
// ways of usual thresholds and of consts (the conditions' constants), and
// reach the ends of each field's type.
func randomSnapshot(r *rand.Rand, consts []float64) (metrics.Snapshot, ErrorInfo) {
	var s metrics.Snapshot
	var info ErrorInfo
	near := func() float64 {
		if len(consts) == 0 || r.Intn(2) == 0 {
			return float64(r.Intn(3000)) / float64(1+r.Intn(4))
		}
		return consts[r.Intn(len(consts))]
	}
	strs := []string{"", "READY", "RESUMING", "DISCONNECTED", "CLOSED", "OPEN", "HALF_OPEN", "HEALTHY", "CRITICAL", "NONE",
		"MINIMAL", "zombie", "handshake_timeout", "invalid_session", "close", "conn", " zombie ", "read: ECONNRESET",
		"i/o timeout", "été", "stable", "improving", "degrading", "Ready"}
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names) // the same values from the same seed
	for _, name := range names {
		src := sources[name]
		base := unsafe.Pointer(&s)
		if src.onError {
			base = unsafe.Pointer(&info)
		}
		p := unsafe.Add(base, src.off)
		switch src.conv {
		case convMillis:
			d := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, int64(near() * 1e6), int64(near()*1e6) + 1, int64(near()*1e6) - 1,
				int64(near() * 1e6), r.Int63n(1e13) - 1e12}[r.Intn(10)]
			*(*int64)(p) = d
		case convCount:
			u := []uint64{0, 1, 2, 3, 5, 10, 40, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64, uint64(near()), uint64(near()) + 1,
				uint64(r.Intn(60))}[r.Intn(13)]
			*(*uint64)(p) = u
		case convInt, convInt64:
			v := []int64{0, 1, -1, 4004, 1006, 4009, math.MaxInt64, math.MinInt64, int64(near()), int64(near()) - 1,
				int64(r.Intn(60) - 5)}[r.Intn(11)]
			if src.conv == convInt {
				*(*int)(p) = int(v)
			} else {
				*(*int64)(p) = v
			}
		case convFloat:
			f := []float64{0, math.Copysign(0, -1), 0.05, 0.1, math.Nextafter(0.1, 1), 0.2, 1, 97, 100, math.NaN(), math.Inf(1),
				math.Inf(-1), near(), r.Float64(), -r.Float64()}[r.Intn(15)]
			*(*float64)(p) = f
		case convString:
			*(*string)(p) = strs[r.Intn(len(strs))]
		case convBool:
			*(*bool)(p) = r.Intn(2) == 0
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Time = t0.Add(time.Duration(r.Int63n(int64(time.Hour))))
	s.Degradation.Level = []string{"", "NONE", "MINIMAL", "CRITICAL"}[r.Intn(4)]
	switch r.Intn(3) {
	case 0:
		s.Degradation.Since = t0
	case 1:
		s.Degradation.Since = s.Time.Add(time.Minute)
	}
	return s, info
}

// constantsOf returns the numbers written in a condition, and the
// neighbours that matter for counters (the integers either side).
func constantsOf(src string) []float64 {
	var out []float64
	for _, f := range strings.FieldsFunc(src, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == 'e') }) {
		var v float64
		if _, err := fmt.Sscan(f, &v); err == nil {
			out = append(out, v, math.Floor(v), math.Ceil(v), v+1, v-1)
		}
	}
	return out
}

// TestRangeLeafExample pins the example docs/policy.md gives: the
// heartbeat passes `> 1000` from 1,000,000,001 ns on.
func TestRangeLeafExample(t *testing.T) {
	prog, errs := compileCondition("latency.heartbeat > 1000", false, 0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rt := prog.native.rt
	if lo := int64(rawDomain{sm: rt.sm, x: rt.x}.bits(rt.lo)); lo != 1_000_000_001 || rt.lo+rt.span != math.MaxUint64 {
		t.Errorf("range from %d ns, span %#x", lo, rt.span)
	}
}

// TestLadder checks which policies evaluate their levels bottom-up, and
// that those decide as the VM does.
func TestLadder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		levels [4]string // minimal to critical; "" = not declared
		ladder bool
	}{
		{"default thresholds", [4]string{
			"latency.heartbeat > 1000 || errors.rate > 0.1 || errors.consecutive >= 5",
			"latency.heartbeat > 2000 || errors.rate > 0.2 || errors.consecutive >= 10",
			"latency.heartbeat > 4000 || errors.rate > 0.4 || errors.consecutive >= 20",
			"latency.heartbeat > 8000 || errors.rate > 0.8 || errors.consecutive >= 40"}, true},
		{"fewer terms higher up", [4]string{
			"latency.heartbeat > 1000 || errors.rate > 0.1", "", "errors.rate > 0.4", "errors.rate >= 0.9 && gateway.down_for > 60000"}, true},
		{"equal thresholds", [4]string{"errors.rate > 0.1", "errors.rate > 0.1", "", ""}, true},
		{"a lower threshold higher up", [4]string{"errors.rate > 0.2", "errors.rate > 0.1", "", ""}, false},
		{"a new variable higher up", [4]string{"errors.rate > 0.2", "errors.rate > 0.4 || shards.unhealthy_ratio > 0.5", "", ""}, false},
		{"negated ranges", [4]string{"errors.consecutive not in 0..4", "errors.consecutive not in 0..9", "", ""}, true},
		{"negated ranges the wrong way", [4]string{"errors.consecutive not in 0..9", "errors.consecutive not in 0..4", "", ""}, false},
		{"not flat", [4]string{"errors.rate > 0.1", "errors.rate > 0.2 && gateway.state == 'READY'", "", ""}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("degradation {\n")
			for i, when := range tt.levels {
				if when != "" {
					fmt.Fprintf(&b, "  level %q { when = %q }\n", []string{"minimal", "moderate", "severe", "critical"}[i], when)
				}
			}
			b.WriteString("  recover { when = \"errors.rate < 0.05\" }\n}\n")
			p, err := LoadSource("ladder.hcl", []byte(b.String()), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			if p.ladder != tt.ladder {
				t.Errorf("ladder %v, want %v", p.ladder, tt.ladder)
			}
			slow := vmOnly(p)
			var consts []float64
			for _, c := range conditionsOf(p) {
				consts = append(consts, constantsOf(c.Expr)...)
			}
			r := rand.New(rand.NewSource(6))
			for i := 0; i < 600; i++ {
				s, _ := randomSnapshot(r, consts)
				if got, want := p.Evaluate(&s), slow.Evaluate(&s); !reflect.DeepEqual(got, want) {
					t.Fatalf("Evaluate %+v, on the VM %+v (snapshot %+v)", got, want, s)
				}
			}
		})
	}
	shorthand, err := LoadSource("shorthand.hcl", []byte(`degradation {
  thresholds {
    latency            = "300ms"
    error_rate         = 0.15
    consecutive_errors = 3
  }
}`), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	def, err := Load("../../policies/default.hcl", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*Policy{"Default()": Default(), "default.hcl": def, "the thresholds shorthand": shorthand} {
		if !p.ladder {
			t.Errorf("%s: the levels are not a ladder", name)
		}
	}
}

// TestImpliesIsSound checks, over generated threshold conditions, that
// whenever implies(a, b) says a implies b, no snapshot has a hold and b
// not (on the VM), and that it says so often enough to matter.
func TestImpliesIsSound(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	vars := []string{"latency.heartbeat", "errors.rate", "errors.consecutive", "shard.id"}
	consts := []string{"0", "1", "2.5", "5", "10", "1000", "0.1", "0.2", "-1"}
	ops := []string{">", ">=", "<", "<=", "==", "!="}
	cond := func() string {
		n := 1 + r.Intn(3)
		var terms []string
		for i := 0; i < n; i++ {
			terms = append(terms, vars[r.Intn(len(vars))]+" "+ops[r.Intn(len(ops))]+" "+consts[r.Intn(len(consts))])
		}
		c := strings.Join(terms, []string{" || ", " && "}[r.Intn(2)])
		if r.Intn(4) == 0 {
			c = "!(" + c + ")"
		}
		return c
	}
	type compiled struct {
		src  string
		prog *program
	}
	var cs []compiled
	var numbers []float64
	for i := 0; i < 150; i++ {
		src := cond()
		prog, errs := compileCondition(src, false, 0)
		if len(errs) > 0 {
			t.Fatalf("%q: %+v", src, errs)
		}
		cs = append(cs, compiled{src, prog})
		numbers = append(numbers, constantsOf(src)...)
	}
	snaps := make([]metrics.Snapshot, 150)
	for i := range snaps {
		snaps[i], _ = randomSnapshot(r, numbers)
	}
	var m vm.VM
	holds := func(prog *program, s *metrics.Snapshot) bool {
		var env Env
		env.Fill(s)
		out, err := m.Run(prog.vm, &env)
		if err != nil {
			t.Fatal(err)
		}
		return out.(bool)
	}
	found := 0
	for _, a := range cs {
		for _, b := range cs {
			if !implies(a.prog.native, b.prog.native) {
				continue
			}
			found++
			for i := range snaps {
				if holds(a.prog, &snaps[i]) && !holds(b.prog, &snaps[i]) {
					t.Fatalf("implies(%q, %q), but on %+v the first holds and the second does not", a.src, b.src, snaps[i])
				}
			}
		}
	}
	if found < 300 {
		t.Errorf("implies held for only %d pairs", found)
	}
}
