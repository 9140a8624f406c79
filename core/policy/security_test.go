package policy

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr/builtin"
)

// A condition can call the functions of Functions and nothing else: none
// of expr's other built-ins, no method of the values it reads, no Go
// function reached through the environment.
func TestConditionsCallOnlyDocumentedFunctions(t *testing.T) {
	documented := map[string]bool{}
	for _, f := range Functions {
		documented[f.Name] = true
	}
	refused := 0
	for _, name := range builtin.Names {
		if documented[name] {
			continue
		}
		for _, src := range []string{name + "() == nil", name + "(errors.rate) == 0", name + `("x", "y") == ""`} {
			if _, errs := compileCondition(src, true, 0); len(errs) == 0 {
				t.Errorf("%q compiled: %s is not a documented function", src, name)
			}
		}
		refused++
	}
	if refused < 40 {
		t.Fatalf("only %d of expr's built-ins checked", refused)
	}
	// The methods of every type a condition can reach.
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		for _, rt := range []reflect.Type{typ, reflect.PointerTo(typ)} {
			for i := 0; i < rt.NumMethod(); i++ {
				call := rt.Method(i).Name + "()"
				if path != "" {
					call = path + "." + call
				}
				for _, src := range []string{call + " == nil", call + " == 0", call + ` == ""`} {
					if _, errs := compileCondition(src, true, 0); len(errs) == 0 {
						t.Errorf("%q compiled: a method reached through the environment", src)
					}
				}
			}
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Tag.Get("expr")
			if name == "" {
				name = f.Name
			}
			if path != "" {
				name = path + "." + name
			}
			walk(name, f.Type)
		}
	}
	walk("", reflect.TypeOf(Env{}))
	// The documented ones work.
	for _, src := range []string{`duration("1s") > 0`, "abs(-1) == 1", "min(1, 2) == 1", "max(1, 2) == 2",
		"floor(1.5) == 1", "ceil(1.5) == 2", "round(1.5) == 2", `len("ab") == 2`, `lower("A") == "a"`,
		`upper("a") == "A"`, `trim(" a ") == "a"`} {
		if _, errs := compileCondition(src, true, 0); len(errs) > 0 {
			t.Errorf("%q: %+v", src, errs)
		}
	}
}

// A range in a condition is built as an array every time the condition
// runs: a large or unbounded one is refused when the policy loads, with a
// diagnostic at the range, instead of failing (or allocating) at every
// tick.
func TestConditionRangesAreBounded(t *testing.T) {
	tests := []struct {
		src  string
		want string // "" compiles
	}{
		{"error.close_code in 4000..4014", ""},
		{"error.close_code not in 4010..4014", ""},
		{"errors.consecutive in -5..5", ""},
		{"errors.consecutive in 0..4095", ""},
		{"errors.consecutive in 0..4096", "Range too large"},
		{"(1..100000000)[0] == 1", "Range too large"},
		{"len(1..100000000) > 0", "Range too large"},
		// The widest range an int holds (its size overflows an int); as
		// math.MaxInt, so the literal is valid on 32-bit platforms too.
		{fmt.Sprintf("errors.total in %d..%d", -math.MaxInt, math.MaxInt), "Range too large"},
		{"errors.consecutive in 1..errors.total", "Range bounds must be constant"},
		{"let n = 100000000; errors.consecutive in 1..n", "Range bounds must be constant"},
		{"errors.consecutive in 5..1", ""}, // empty
	}
	for _, tt := range tests {
		_, errs := compileCondition(tt.src, true, 0)
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("%q: %+v", tt.src, errs)
		case tt.want != "" && (len(errs) == 0 || errs[0].summary != tt.want):
			t.Errorf("%q: %+v, want %q", tt.src, errs, tt.want)
		}
	}
	// Through a whole file: the diagnostic points into the condition.
	src := "degradation {\n  level \"minimal\" {\n    when = \"errors.consecutive in 1..10000000\"\n  }\n}\n"
	_, diags := Decode("p.hcl", []byte(src), Options{})
	if got := strings.Join(DiagnosticLines(diags), "\n"); !strings.Contains(got, "p.hcl:3:36: error: Range too large") {
		t.Fatalf("diagnostics: %s", got)
	}
}
