package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// DefaultMaxConditionNodes bounds the size of one condition (expr AST
// nodes) when Options.MaxConditionNodes is zero.
const DefaultMaxConditionNodes = 256

// Functions are the functions a condition may call, with their signatures.
// Everything else expr offers as a builtin is disabled.
var Functions = []Function{
	{"duration", "duration(s string) float", `a constant Go duration string ("1.5s", "250ms", "2m") as milliseconds; folded at compile time`},
	{"abs", "abs(x number) number", "absolute value"},
	{"min", "min(x, y number...) number", "smallest argument"},
	{"max", "max(x, y number...) number", "largest argument"},
	{"floor", "floor(x number) float", "round down"},
	{"ceil", "ceil(x number) float", "round up"},
	{"round", "round(x number) float", "round half away from zero"},
	{"len", "len(s string) int", "length of a string in characters (Unicode code points)"},
	{"lower", "lower(s string) string", "lower-case copy"},
	{"upper", "upper(s string) string", "upper-case copy"},
	{"trim", "trim(s string) string", "copy without leading and trailing white space"},
}

// Function documents one function callable from conditions.
type Function struct {
	// Name is what a condition calls.
	Name string
	// Signature shows the argument and result types.
	Signature string
	// Doc is a one-line description.
	Doc string
}

// condError is a compile error of one condition, located in runes within
// the expression text (from < 0: the whole expression).
type condError struct {
	from, to int
	summary  string
	detail   string
}

// program is one compiled condition.
type program struct {
	vm     *vm.Program
	groups group    // the Env sections the condition reads
	native *node    // nil when the native evaluator does not cover it (native.go)
	flat   flatCond // native as a flat list of range tests, when it is one
}

// compileCondition compiles src against Env. recovery says whether the
// `error` variables are visible.
func compileCondition(src string, recovery bool, maxNodes uint) (*program, []condError) {
	if strings.TrimSpace(src) == "" {
		return nil, []condError{{from: -1, summary: "Empty condition", detail: "A condition must be an expression that is true or false, e.g. \"errors.rate > 0.1\"."}}
	}
	if maxNodes == 0 {
		maxNodes = DefaultMaxConditionNodes
	}
	guard := &guardVisitor{recovery: recovery}
	opts := []expr.Option{
		expr.Env(Env{}),
		expr.AsBool(),
		expr.DisableAllBuiltins(),
		expr.MaxNodes(maxNodes),
		expr.Function("duration", durationFunc, new(func(string) float64)),
		expr.Patch(guard),
	}
	for _, f := range Functions {
		if f.Name != "duration" {
			opts = append(opts, expr.EnableBuiltin(f.Name))
		}
	}
	prog, err := expr.Compile(src, opts...)
	if len(guard.errs) > 0 {
		return nil, guard.errs
	}
	if err != nil {
		return nil, []condError{exprError(src, err)}
	}
	p := &program{vm: prog, groups: groupsOf(prog.Node())}
	p.native = compileNative(prog.Node())
	p.flat = flatten(p.native)
	return p, nil
}

func durationFunc(params ...any) (any, error) {
	s, _ := params[0].(string)
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, err
	}
	return ms(d), nil
}

// guardVisitor runs before type checking. It folds duration("...") into a
// constant, and rejects what the type checker would allow but policies do
// not: the `error` variables outside recovery rules, and duration() of a
// non-constant.
type guardVisitor struct {
	recovery bool
	errs     []condError
}

func (g *guardVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "error" && !g.recovery {
			loc := n.Location()
			g.errs = append(g.errs, condError{from: loc.From, to: loc.To,
				summary: "error is not available here",
				detail:  "The error variables (error.message, error.close_code, error.kind, ...) exist only in the conditions of recovery rules."})
		}
	case *ast.BuiltinNode:
		if !allowedFunction(n.Name) {
			loc := n.Location()
			g.errs = append(g.errs, condError{from: loc.From, to: loc.To, summary: "Function not available",
				detail: fmt.Sprintf("%s() cannot be used in a policy condition.%s", n.Name, suggest(n.Name, functionNames()))})
		}
	case *ast.BinaryNode:
		if n.Operator == ".." {
			g.checkRange(n)
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "duration" {
			return
		}
		loc := n.Location()
		if len(n.Arguments) != 1 {
			g.errs = append(g.errs, condError{from: loc.From, to: loc.To, summary: "Invalid duration() call",
				detail: "duration() takes exactly one constant string such as \"500ms\"."})
			return
		}
		s, ok := n.Arguments[0].(*ast.StringNode)
		if !ok {
			al := n.Arguments[0].Location()
			g.errs = append(g.errs, condError{from: al.From, to: al.To, summary: "Invalid duration() call",
				detail: "duration() takes a constant string such as \"500ms\"; it is converted once, when the policy loads."})
			return
		}
		d, err := time.ParseDuration(s.Value)
		if err != nil {
			al := s.Location()
			g.errs = append(g.errs, condError{from: al.From, to: al.To, summary: "Invalid duration",
				detail: fmt.Sprintf("%q is not a duration: use a number with a unit, such as \"250ms\", \"1.5s\" or \"2m\".", s.Value)})
			return
		}
		ast.Patch(node, &ast.FloatNode{Value: ms(d)})
	}
}

// MaxConditionRange is the most numbers a range (`4000..4014`) in a
// condition may hold. expr builds a range as an array each time the
// condition runs, so a range over a million numbers would allocate on every
// tick; it is refused when the policy loads instead.
const MaxConditionRange = 4096

// checkRange accepts a range whose bounds are constant integers at most
// MaxConditionRange apart.
func (g *guardVisitor) checkRange(n *ast.BinaryNode) {
	loc := n.Location()
	lo, okLo := rangeBound(n.Left)
	hi, okHi := rangeBound(n.Right)
	switch {
	case !okLo || !okHi:
		g.errs = append(g.errs, condError{from: loc.From, to: loc.To, summary: "Range bounds must be constant",
			detail: "A range such as 4000..4014 takes two whole numbers written in the condition; its size is checked when the policy loads."})
	case hi >= lo && (hi-lo >= MaxConditionRange || hi-lo < 0): // < 0: the span overflowed
		g.errs = append(g.errs, condError{from: loc.From, to: loc.To, summary: "Range too large",
			detail: fmt.Sprintf("%d..%d holds %d numbers; a condition's range holds at most %d. Compare instead: x >= %d && x <= %d.",
				lo, hi, hi-lo+1, MaxConditionRange, lo, hi)})
	}
}

// rangeBound returns the value of an integer literal, signed or not.
func rangeBound(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if v, ok := rangeBound(n.Node); ok && (n.Operator == "-" || n.Operator == "+") {
			if n.Operator == "-" {
				v = -v
			}
			return v, true
		}
	}
	return 0, false
}

// exprError turns an expr compile error into a condError with a friendlier
// message and, for unknown names, a suggestion.
func exprError(src string, err error) condError {
	var fe *file.Error
	if !errors.As(err, &fe) {
		msg := err.Error()
		if strings.HasPrefix(msg, "expected bool") {
			return condError{from: -1, summary: "Condition is not true or false",
				detail: fmt.Sprintf("A condition must produce a bool; this one %s. Compare it with something, e.g. \"... > 100\".", strings.Replace(msg, "expected bool, but ", "", 1))}
		}
		return condError{from: -1, summary: "Invalid condition", detail: msg}
	}
	ce := condError{from: fe.From, to: fe.To, summary: "Invalid condition", detail: fe.Message}
	if ce.to <= ce.from {
		ce.to = ce.from + 1
	}
	n := utf8.RuneCountInString(src)
	if ce.from > n {
		ce.from = n
	}
	if ce.to > n {
		ce.to = n
	}
	msg := fe.Message
	switch {
	case strings.HasPrefix(msg, "unknown name "):
		name := strings.TrimPrefix(msg, "unknown name ")
		ce.summary = "Unknown name in condition"
		ce.detail = fmt.Sprintf("There is no variable or function named %q.%s", name, suggest(name, topLevelNames()))
	case strings.Contains(msg, " has no field "):
		// "type policy.ErrorVars has no field rat"
		field := msg[strings.LastIndex(msg, " ")+1:]
		parent := parentName(src, fe.From)
		ce.summary = "Unknown name in condition"
		ce.detail = fmt.Sprintf("%s has no variable %q.%s", parent, field, suggest(field, fieldNames(parent)))
		if parent == "" {
			ce.detail = fmt.Sprintf("There is no variable %q.", field)
		}
	case strings.HasPrefix(msg, "invalid operation"), strings.Contains(msg, "mismatched types"):
		ce.summary = "Type mismatch in condition"
	case strings.HasPrefix(msg, "unexpected token"), strings.HasPrefix(msg, "unexpected"):
		ce.summary = "Syntax error in condition"
	case strings.Contains(msg, "maximum allowed nodes") || strings.Contains(msg, "node budget") || strings.Contains(msg, "exceeds"):
		ce.summary = "Condition too large"
		ce.from = -1
	}
	return ce
}

// parentName returns the dotted name before the member at rune offset
// from, e.g. "errors" for "errors.rat" with from at "rat".
func parentName(src string, from int) string {
	r := []rune(src)
	i := from - 1
	if i < 0 || i >= len(r) || r[i] != '.' {
		return ""
	}
	j := i
	for j > 0 && (r[j-1] == '_' || r[j-1] == '.' || r[j-1] >= 'a' && r[j-1] <= 'z' || r[j-1] >= 'A' && r[j-1] <= 'Z' || r[j-1] >= '0' && r[j-1] <= '9') {
		j--
	}
	return string(r[j:i])
}

func topLevelNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range Variables() {
		top := v.Name
		if i := strings.IndexByte(top, '.'); i >= 0 {
			top = top[:i]
		}
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	for _, f := range Functions {
		out = append(out, f.Name)
	}
	return out
}

func fieldNames(parent string) []string {
	var out []string
	for _, v := range Variables() {
		if strings.HasPrefix(v.Name, parent+".") {
			out = append(out, strings.TrimPrefix(v.Name, parent+"."))
		}
	}
	return out
}

// suggest returns " Did you mean "x"?" for the closest candidate, or a
// list of candidates when none is close.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= 2+len(name)/4 {
		return fmt.Sprintf(" Did you mean %q?", best)
	}
	if len(candidates) == 0 {
		return ""
	}
	c := append([]string(nil), candidates...)
	sort.Strings(c)
	return " Known names: " + strings.Join(c, ", ") + "."
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func allowedFunction(name string) bool {
	for _, f := range Functions {
		if f.Name == name {
			return true
		}
	}
	return false
}

func functionNames() []string {
	out := make([]string, len(Functions))
	for i, f := range Functions {
		out[i] = f.Name
	}
	return out
}

// groupsOf returns the Env sections an AST reads (all of them when it
// uses $env).
func groupsOf(n ast.Node) group {
	v := &groupVisitor{}
	ast.Walk(&n, v)
	return v.g
}

type groupVisitor struct{ g group }

func (v *groupVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		if id.Value == "$env" {
			v.g = gAll
		}
		v.g |= groupByName[id.Value]
	}
}
