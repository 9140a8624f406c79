package policy

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"unsafe"

	"github.com/expr-lang/expr/ast"
)

// The closure compiler: a checked, optimised expr AST of the common
// subset (variables, literals, arithmetic, comparisons, logic, string
// operators, `in` over constant lists, ?:, len/lower/upper/trim) becomes
// a tree of typed Go closures over *Env. Evaluating it reads struct fields
// directly, with no reflection, boxing or VM stack, which is what keeps a
// policy evaluation well under a microsecond. expr stays the language's
// definition: anything outside the subset (or any node whose type the
// checker left open) makes compileFast return nil, and that condition runs
// on expr's VM. Differential tests check that both agree.

type kind uint8

const (
	kNone kind = iota
	kBool
	kInt
	kFloat
	kString
)

type fexpr struct {
	k     kind
	konst bool // a constant: ci, cf or cs holds the value
	ci    int
	cf    float64
	cs    string
	field bool // a variable: it lives at offset off in Env
	off   uintptr
	b     func(*Env) bool
	i     func(*Env) int
	f     func(*Env) float64
	s     func(*Env) string
}

func fb(f func(*Env) bool) fexpr     { return fexpr{k: kBool, b: f} }
func fi(f func(*Env) int) fexpr      { return fexpr{k: kInt, i: f} }
func ff(f func(*Env) float64) fexpr  { return fexpr{k: kFloat, f: f} }
func fstr(f func(*Env) string) fexpr { return fexpr{k: kString, s: f} }
func (x fexpr) ok() bool             { return x.k != kNone }
func (x fexpr) numeric() bool        { return x.k == kInt || x.k == kFloat }
func bad() fexpr                     { return fexpr{} }
func constBool(v bool) fexpr         { return fb(func(*Env) bool { return v }) }
func constInt(v int) fexpr {
	x := fi(func(*Env) int { return v })
	x.konst, x.ci, x.cf = true, v, float64(v)
	return x
}
func constFloat(v float64) fexpr {
	x := ff(func(*Env) float64 { return v })
	x.konst, x.cf = true, v
	return x
}
func constString(v string) fexpr {
	x := fstr(func(*Env) string { return v })
	x.konst, x.cs = true, v
	return x
}
func (x fexpr) asFloat() func(*Env) float64 {
	if x.k == kFloat {
		return x.f
	}
	i := x.i
	return func(e *Env) float64 { return float64(i(e)) }
}

// accessors maps every condition variable to a direct read of its field
// in Env, by offset (computed once from Env's type with reflect, so it
// cannot drift from the struct). A test checks each accessor reads the
// same value as reflection does.
var accessors = buildAccessors()

func buildAccessors() map[string]fexpr {
	out := map[string]fexpr{}
	var walk func(t reflect.Type, prefix string, base uintptr)
	walk = func(t reflect.Type, prefix string, base uintptr) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, off := prefix+f.Tag.Get("expr"), base+f.Offset
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(f.Type, name+".", off)
			case reflect.Float64:
				x := ff(func(e *Env) float64 { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) })
				x.field, x.off = true, off
				out[name] = x
			case reflect.Int:
				x := fi(func(e *Env) int { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) })
				x.field, x.off = true, off
				out[name] = x
			case reflect.String:
				x := fstr(func(e *Env) string { return *(*string)(unsafe.Add(unsafe.Pointer(e), off)) })
				x.field, x.off = true, off
				out[name] = x
			case reflect.Bool:
				x := fb(func(e *Env) bool { return *(*bool)(unsafe.Add(unsafe.Pointer(e), off)) })
				x.field, x.off = true, off
				out[name] = x
			default:
				panic("policy: Env field " + name + " has an unsupported type " + f.Type.String())
			}
		}
	}
	walk(reflect.TypeOf(Env{}), "", 0)
	return out
}

// compileFast returns the closure form of a checked boolean AST, or nil
// when the AST leaves the supported subset.
func compileFast(n ast.Node) func(*Env) bool {
	x := fast(n)
	if x.k != kBool {
		return nil
	}
	return x.b
}

// path returns "a.b" for a chain of identifier/member accesses.
func path(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value, true
	case *ast.MemberNode:
		if x.Optional || x.Method {
			return "", false
		}
		prop, ok := x.Property.(*ast.StringNode)
		if !ok {
			return "", false
		}
		base, ok := path(x.Node)
		if !ok {
			return "", false
		}
		return base + "." + prop.Value, true
	}
	return "", false
}

func fast(n ast.Node) fexpr {
	switch x := n.(type) {
	case *ast.BoolNode:
		return constBool(x.Value)
	case *ast.IntegerNode:
		return constInt(x.Value)
	case *ast.FloatNode:
		return constFloat(x.Value)
	case *ast.StringNode:
		return constString(x.Value)
	case *ast.ConstantNode:
		switch v := x.Value.(type) {
		case bool:
			return constBool(v)
		case int:
			return constInt(v)
		case float64:
			return constFloat(v)
		case string:
			return constString(v)
		}
		return bad()
	case *ast.IdentifierNode, *ast.MemberNode:
		p, ok := path(n)
		if !ok {
			return bad()
		}
		if a, ok := accessors[p]; ok {
			return a
		}
		return bad()
	case *ast.UnaryNode:
		return fastUnary(x)
	case *ast.BinaryNode:
		return fastBinary(x)
	case *ast.ConditionalNode:
		c, a, b := fast(x.Cond), fast(x.Exp1), fast(x.Exp2)
		if c.k != kBool || a.k != b.k {
			return bad()
		}
		cb := c.b
		switch a.k {
		case kBool:
			return fb(func(e *Env) bool {
				if cb(e) {
					return a.b(e)
				}
				return b.b(e)
			})
		case kInt:
			return fi(func(e *Env) int {
				if cb(e) {
					return a.i(e)
				}
				return b.i(e)
			})
		case kFloat:
			return ff(func(e *Env) float64 {
				if cb(e) {
					return a.f(e)
				}
				return b.f(e)
			})
		case kString:
			return fstr(func(e *Env) string {
				if cb(e) {
					return a.s(e)
				}
				return b.s(e)
			})
		}
		return bad()
	case *ast.BuiltinNode:
		if len(x.Arguments) != 1 {
			return bad()
		}
		arg := fast(x.Arguments[0])
		if arg.k != kString {
			return bad()
		}
		s := arg.s
		switch x.Name {
		case "len":
			return fi(func(e *Env) int { return len(s(e)) })
		case "lower":
			return fstr(func(e *Env) string { return strings.ToLower(s(e)) })
		case "upper":
			return fstr(func(e *Env) string { return strings.ToUpper(s(e)) })
		case "trim":
			return fstr(func(e *Env) string { return strings.TrimSpace(s(e)) })
		}
		return bad()
	}
	return bad()
}

func fastUnary(x *ast.UnaryNode) fexpr {
	a := fast(x.Node)
	switch x.Operator {
	case "!", "not":
		if a.k != kBool {
			return bad()
		}
		f := a.b
		return fb(func(e *Env) bool { return !f(e) })
	case "-":
		switch a.k {
		case kInt:
			f := a.i
			return fi(func(e *Env) int { return -f(e) })
		case kFloat:
			f := a.f
			return ff(func(e *Env) float64 { return -f(e) })
		}
	case "+":
		if a.numeric() {
			return a
		}
	}
	return bad()
}

func fastBinary(x *ast.BinaryNode) fexpr {
	switch x.Operator {
	case "in":
		return fastIn(x)
	case "&&", "and", "||", "or":
		return fastLogic(x)
	case "matches":
		l := fast(x.Left)
		pat, ok := x.Right.(*ast.StringNode)
		if l.k != kString || !ok {
			return bad()
		}
		re, err := regexp.Compile(pat.Value)
		if err != nil {
			return bad()
		}
		s := l.s
		return fb(func(e *Env) bool { return re.MatchString(s(e)) })
	}
	l, r := fast(x.Left), fast(x.Right)
	if !l.ok() || !r.ok() {
		return bad()
	}
	switch x.Operator {
	case "&&", "and", "||", "or":
		return fastLogic(x)
	case "==", "!=":
		eq := fastEqual(l, r)
		if !eq.ok() {
			return bad()
		}
		if x.Operator == "!=" {
			f := eq.b
			return fb(func(e *Env) bool { return !f(e) })
		}
		return eq
	case "<", "<=", ">", ">=":
		return fastCompare(x.Operator, l, r)
	case "+", "-", "*":
		return fastArith(x.Operator, l, r)
	case "/":
		if !l.numeric() || !r.numeric() {
			return bad()
		}
		a, b := l.asFloat(), r.asFloat()
		return ff(func(e *Env) float64 { return a(e) / b(e) })
	case "**", "^":
		if !l.numeric() || !r.numeric() {
			return bad()
		}
		a, b := l.asFloat(), r.asFloat()
		return ff(func(e *Env) float64 { return math.Pow(a(e), b(e)) })
	case "contains", "startsWith", "endsWith":
		if l.k != kString || r.k != kString {
			return bad()
		}
		a, b := l.s, r.s
		switch x.Operator {
		case "contains":
			return fb(func(e *Env) bool { return strings.Contains(a(e), b(e)) })
		case "startsWith":
			return fb(func(e *Env) bool { return strings.HasPrefix(a(e), b(e)) })
		default:
			return fb(func(e *Env) bool { return strings.HasSuffix(a(e), b(e)) })
		}
	}
	return bad()
}

func fastEqual(l, r fexpr) fexpr {
	if x := compareConst("==", l, r); x.ok() {
		return x
	}
	if x := compareConst("==", r, l); x.ok() {
		return x
	}
	switch {
	case l.k == kInt && r.k == kInt:
		a, b := l.i, r.i
		return fb(func(e *Env) bool { return a(e) == b(e) })
	case l.numeric() && r.numeric():
		a, b := l.asFloat(), r.asFloat()
		return fb(func(e *Env) bool { return a(e) == b(e) })
	case l.k == kString && r.k == kString:
		a, b := l.s, r.s
		return fb(func(e *Env) bool { return a(e) == b(e) })
	case l.k == kBool && r.k == kBool:
		a, b := l.b, r.b
		return fb(func(e *Env) bool { return a(e) == b(e) })
	}
	return bad()
}

func fastCompare(op string, l, r fexpr) fexpr {
	if x := compareConst(op, l, r); x.ok() {
		return x
	}
	if l.konst && !r.konst {
		if x := compareConst(mirror[op], r, l); x.ok() {
			return x
		}
	}
	switch {
	case l.k == kInt && r.k == kInt:
		a, b := l.i, r.i
		switch op {
		case "<":
			return fb(func(e *Env) bool { return a(e) < b(e) })
		case "<=":
			return fb(func(e *Env) bool { return a(e) <= b(e) })
		case ">":
			return fb(func(e *Env) bool { return a(e) > b(e) })
		default:
			return fb(func(e *Env) bool { return a(e) >= b(e) })
		}
	case l.numeric() && r.numeric():
		a, b := l.asFloat(), r.asFloat()
		switch op {
		case "<":
			return fb(func(e *Env) bool { return a(e) < b(e) })
		case "<=":
			return fb(func(e *Env) bool { return a(e) <= b(e) })
		case ">":
			return fb(func(e *Env) bool { return a(e) > b(e) })
		default:
			return fb(func(e *Env) bool { return a(e) >= b(e) })
		}
	case l.k == kString && r.k == kString:
		a, b := l.s, r.s
		switch op {
		case "<":
			return fb(func(e *Env) bool { return a(e) < b(e) })
		case "<=":
			return fb(func(e *Env) bool { return a(e) <= b(e) })
		case ">":
			return fb(func(e *Env) bool { return a(e) > b(e) })
		default:
			return fb(func(e *Env) bool { return a(e) >= b(e) })
		}
	}
	return bad()
}

func fastArith(op string, l, r fexpr) fexpr {
	switch {
	case op == "+" && l.k == kString && r.k == kString:
		a, b := l.s, r.s
		return fstr(func(e *Env) string { return a(e) + b(e) })
	case l.k == kInt && r.k == kInt:
		a, b := l.i, r.i
		switch op {
		case "+":
			return fi(func(e *Env) int { return a(e) + b(e) })
		case "-":
			return fi(func(e *Env) int { return a(e) - b(e) })
		default:
			return fi(func(e *Env) int { return a(e) * b(e) })
		}
	case l.numeric() && r.numeric():
		a, b := l.asFloat(), r.asFloat()
		switch op {
		case "+":
			return ff(func(e *Env) float64 { return a(e) + b(e) })
		case "-":
			return ff(func(e *Env) float64 { return a(e) - b(e) })
		default:
			return ff(func(e *Env) float64 { return a(e) * b(e) })
		}
	}
	return bad()
}

// fastIn handles `x in [constants]`, which expr's optimiser may have
// turned into a constant set.
func fastIn(x *ast.BinaryNode) fexpr {
	l := fast(x.Left)
	switch set := constValue(x.Right).(type) {
	case map[int]struct{}:
		if l.k != kInt {
			return bad()
		}
		a := l.i
		return fb(func(e *Env) bool { _, ok := set[a(e)]; return ok })
	case map[string]struct{}:
		if l.k != kString {
			return bad()
		}
		a := l.s
		return fb(func(e *Env) bool { _, ok := set[a(e)]; return ok })
	}
	arr, ok := x.Right.(*ast.ArrayNode)
	if !ok {
		return bad()
	}
	var eqs []func(*Env) bool
	for _, el := range arr.Nodes {
		eq := fastEqual(l, fast(el))
		if !eq.ok() {
			return bad()
		}
		eqs = append(eqs, eq.b)
	}
	return fb(func(e *Env) bool {
		for _, eq := range eqs {
			if eq(e) {
				return true
			}
		}
		return false
	})
}

func constValue(n ast.Node) any {
	if c, ok := n.(*ast.ConstantNode); ok {
		return c.Value
	}
	return nil
}

var mirror = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

// compareConst specialises "variable op constant", the shape of almost
// every policy condition, into one closure.
func compareConst(op string, l, r fexpr) fexpr {
	if !r.konst || l.konst {
		return bad()
	}
	if l.field {
		if x := compareFieldConst(op, l, r); x.ok() {
			return x
		}
	}
	switch {
	case l.k == kInt && r.k == kInt:
		a, c := l.i, r.ci
		switch op {
		case "<":
			return fb(func(e *Env) bool { return a(e) < c })
		case "<=":
			return fb(func(e *Env) bool { return a(e) <= c })
		case ">":
			return fb(func(e *Env) bool { return a(e) > c })
		case ">=":
			return fb(func(e *Env) bool { return a(e) >= c })
		case "==":
			return fb(func(e *Env) bool { return a(e) == c })
		}
	case l.k == kFloat && r.numeric():
		a, c := l.f, r.cf
		switch op {
		case "<":
			return fb(func(e *Env) bool { return a(e) < c })
		case "<=":
			return fb(func(e *Env) bool { return a(e) <= c })
		case ">":
			return fb(func(e *Env) bool { return a(e) > c })
		case ">=":
			return fb(func(e *Env) bool { return a(e) >= c })
		case "==":
			return fb(func(e *Env) bool { return a(e) == c })
		}
	case l.k == kInt && r.k == kFloat:
		a, c := l.i, r.cf
		switch op {
		case "<":
			return fb(func(e *Env) bool { return float64(a(e)) < c })
		case "<=":
			return fb(func(e *Env) bool { return float64(a(e)) <= c })
		case ">":
			return fb(func(e *Env) bool { return float64(a(e)) > c })
		case ">=":
			return fb(func(e *Env) bool { return float64(a(e)) >= c })
		case "==":
			return fb(func(e *Env) bool { return float64(a(e)) == c })
		}
	case l.k == kString && r.k == kString && op == "==":
		a, c := l.s, r.cs
		return fb(func(e *Env) bool { return a(e) == c })
	}
	return bad()
}

// compareFieldConst is compareConst for a variable: the closure reads the
// field itself instead of calling the accessor.
func compareFieldConst(op string, l, r fexpr) fexpr {
	off := l.off
	switch {
	case l.k == kFloat && r.numeric():
		c := r.cf
		switch op {
		case "<":
			return fb(func(e *Env) bool { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) < c })
		case "<=":
			return fb(func(e *Env) bool { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) <= c })
		case ">":
			return fb(func(e *Env) bool { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) > c })
		case ">=":
			return fb(func(e *Env) bool { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) >= c })
		case "==":
			return fb(func(e *Env) bool { return *(*float64)(unsafe.Add(unsafe.Pointer(e), off)) == c })
		}
	case l.k == kInt && r.k == kInt:
		c := r.ci
		switch op {
		case "<":
			return fb(func(e *Env) bool { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) < c })
		case "<=":
			return fb(func(e *Env) bool { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) <= c })
		case ">":
			return fb(func(e *Env) bool { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) > c })
		case ">=":
			return fb(func(e *Env) bool { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) >= c })
		case "==":
			return fb(func(e *Env) bool { return *(*int)(unsafe.Add(unsafe.Pointer(e), off)) == c })
		}
	case l.k == kInt && r.k == kFloat:
		c := r.cf
		switch op {
		case "<":
			return fb(func(e *Env) bool { return float64(*(*int)(unsafe.Add(unsafe.Pointer(e), off))) < c })
		case "<=":
			return fb(func(e *Env) bool { return float64(*(*int)(unsafe.Add(unsafe.Pointer(e), off))) <= c })
		case ">":
			return fb(func(e *Env) bool { return float64(*(*int)(unsafe.Add(unsafe.Pointer(e), off))) > c })
		case ">=":
			return fb(func(e *Env) bool { return float64(*(*int)(unsafe.Add(unsafe.Pointer(e), off))) >= c })
		case "==":
			return fb(func(e *Env) bool { return float64(*(*int)(unsafe.Add(unsafe.Pointer(e), off))) == c })
		}
	case l.k == kString && r.k == kString && op == "==":
		c := r.cs
		return fb(func(e *Env) bool { return *(*string)(unsafe.Add(unsafe.Pointer(e), off)) == c })
	case l.k == kBool && r.k == kBool && op == "==":
		c := r.b(nil)
		return fb(func(e *Env) bool { return *(*bool)(unsafe.Add(unsafe.Pointer(e), off)) == c })
	}
	return bad()
}

// fastLogic flattens a chain of the same logical operator (a || b || c
// parses as (a || b) || c) into one closure, saving a call per link.
func fastLogic(x *ast.BinaryNode) fexpr {
	and := x.Operator == "&&" || x.Operator == "and"
	var terms []func(*Env) bool
	var collect func(n ast.Node) bool
	collect = func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") == and &&
			(b.Operator == "&&" || b.Operator == "and" || b.Operator == "||" || b.Operator == "or") {
			return collect(b.Left) && collect(b.Right)
		}
		t := fast(n)
		if t.k != kBool {
			return false
		}
		terms = append(terms, t.b)
		return true
	}
	if !collect(x) {
		return bad()
	}
	switch {
	case and && len(terms) == 2:
		a, b := terms[0], terms[1]
		return fb(func(e *Env) bool { return a(e) && b(e) })
	case and && len(terms) == 3:
		a, b, c := terms[0], terms[1], terms[2]
		return fb(func(e *Env) bool { return a(e) && b(e) && c(e) })
	case and && len(terms) == 4:
		a, b, c, d := terms[0], terms[1], terms[2], terms[3]
		return fb(func(e *Env) bool { return a(e) && b(e) && c(e) && d(e) })
	case and:
		return fb(func(e *Env) bool {
			for _, t := range terms {
				if !t(e) {
					return false
				}
			}
			return true
		})
	case len(terms) == 2:
		a, b := terms[0], terms[1]
		return fb(func(e *Env) bool { return a(e) || b(e) })
	case len(terms) == 3:
		a, b, c := terms[0], terms[1], terms[2]
		return fb(func(e *Env) bool { return a(e) || b(e) || c(e) })
	case len(terms) == 4:
		a, b, c, d := terms[0], terms[1], terms[2], terms[3]
		return fb(func(e *Env) bool { return a(e) || b(e) || c(e) || d(e) })
	default:
		return fb(func(e *Env) bool {
			for _, t := range terms {
				if t(e) {
					return true
				}
			}
			return false
		})
	}
}
