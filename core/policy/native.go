package policy

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/expr-lang/expr/ast"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The native evaluator. When a policy loads, each condition's checked,
// optimised expr AST is compiled a second time into a tree of typed nodes
// that read the metrics.Snapshot (and, in recovery rules, the ErrorInfo)
// directly, through the variable sources of source.go: no Env is filled,
// nothing is boxed, nothing allocates. The subset: variables, bool, int,
// float and string constants, comparisons, && || !, `in` over constant
// lists, + - * / ** on numbers, + on strings, contains, startsWith,
// endsWith, matches with a constant pattern, ?:, % by a constant, and
// every function conditions may call but duration() (folded already).
// Anything else (or any node whose type the checker left open) makes
// compileNative return nil, and that condition runs on expr's VM. expr
// stays the definition of the language: the differential tests and the
// fuzz targets compare both on every construct.
//
// "variable op constant", the shape of nearly every policy condition, is
// one leaf node. For a duration, counter or int variable the leaf is a
// range test on the raw field: the conversion (ms(d), clampInt(u), the
// identity) never decreases as the raw value grows, so the raw values for
// which "converted op constant" holds form one interval, found once by
// binary search with the generic node as the judge, and e.g.
// `latency.heartbeat > 1000` costs an integer comparison of the
// time.Duration, as hand-written Go would do it.
//
// A chain of && or || over such leaves (De Morgan applied through ! and
// `not in`) is one nTests node, and a whole condition of that shape, as
// the levels and recover conditions of the default policy and of the
// thresholds shorthand are, also has a flatCond form: Policy.Evaluate
// runs those as a branch-free loop over the tests, straight from the
// Policy.
//
// The tree is evaluated by four mutually recursive methods (evalBool,
// evalInt, evalFloat, evalString) that switch on the node's operation.
// There are no function values in it: a call through one would make the
// compiler assume the Snapshot escapes, and a caller's stack Snapshot
// would then be moved to the heap on every evaluation.

// kind is the type of a condition value.
type kind uint8

const (
	kNone kind = iota
	kBool
	kInt
	kFloat
	kString
)

// nop is a node's operation.
type nop uint8

const (
	nInvalid    nop = iota
	nConst          // the constant bv, i, f or s (by kind)
	nVar            // a variable, read through src
	nRange          // leaf: the raw field at src passes rt
	nTests          // every (all: any) of tests passes; a flattened && (||) of nRange leaves
	nStrEq          // leaf: the string at src == s
	nAnd            // every node of list
	nOr             // any node of list
	nCmp            // a cmp b; both of a's kind (bool: equality only)
	nInInts         // a is one of ints
	nInStrings      // a is one of strs
	nMatches        // re matches a
	nContains       // b is within a
	nStartsWith     // a starts with b
	nEndsWith       // a ends with b
	nCond           // a ? b : c
	nNeg            // -a
	nAdd            // a + b (numbers; strings: concatenation)
	nSub            // a - b
	nMul            // a * b
	nDiv            // a / b (floats)
	nPow            // a ** b (floats)
	nToFloat        // float64(a) of an int
	nLen            // characters of the string a
	nLower          // strings.ToLower(a)
	nUpper          // strings.ToUpper(a)
	nTrim           // strings.TrimSpace(a)
	nMod            // a % i, i a constant other than 0
	nAbs            // a < 0 ? -a : a
	nFloor          // math.Floor(a)
	nCeil           // math.Ceil(a)
	nRound          // math.Round(a)
	nMin            // the first smallest of list, as expr's min()
	nMax            // the first largest of list, as expr's max()
)

// cmpOp is a comparison.
type cmpOp uint8

const (
	cEQ cmpOp = iota
	cLT
	cLE
	cGT
	cGE
)

var cmpOps = map[string]cmpOp{"==": cEQ, "<": cLT, "<=": cLE, ">": cGT, ">=": cGE}

// rangeTest is a range leaf: the raw field at off (8 bytes: an int64, a
// uint64 or a float64) lies in an interval. The field's bits b become a
// key ordered like the values, key = b ^ (sign(b) & sm | x), with sign(b)
// all ones for a negative b and zeros otherwise:
//
//	uint64:  sm = 0,  x = 0         (key = b)
//	int64:   sm = 0,  x = 1<<63     (the sign bit flipped)
//	float64: sm = ^0, x = 1<<63     (a positive float's sign bit set, a
//	                                negative float's bits inverted)
//
// so -Inf < -1 < -0 < +0 < 1 < +Inf, and NaNs fall outside every
// interval the compiler makes (they lie beyond ±Inf). The test is then
// key - lo <= span, unsigned: one comparison, no branch on the type.
type rangeTest struct {
	off     uintptr
	sm, x   uint64
	lo      uint64
	span    uint64 // hi - lo
	neg     bool   // the result is negated (!=)
	onError bool   // off is within the ErrorInfo, not the Snapshot
}

// in reports whether the field at p lies in the interval (before neg).
func (t *rangeTest) in(p unsafe.Pointer) bool {
	b := *(*uint64)(p)
	k := b ^ (uint64(int64(b)>>63)&t.sm | t.x)
	return k-t.lo <= t.span
}

// node is one operation of a compiled condition. The fields a leaf reads
// come first.
type node struct {
	op   nop
	k    kind
	cmp  cmpOp
	neg  bool // bool nodes: the result is negated (!, !=, not in)
	stop bool // nTests: true for "any" (||), false for "all" (&&)
	src  varSource
	rt   rangeTest
	// tests are an nTests node's leaves, compact, for a loop without
	// calls.
	tests []rangeTest

	bv      bool
	f       float64
	i       int
	s       string
	a, b, c *node
	list    []node
	ints    []int
	strs    []string
	re      *regexp.Regexp
}

// compileNative returns the native form of a checked boolean AST, or nil
// when the AST leaves the subset.
func compileNative(n ast.Node) *node {
	x := native(n)
	if x == nil || x.k != kBool {
		return nil
	}
	return x
}

func (n *node) numeric() bool { return n.k == kInt || n.k == kFloat }
func (n *node) isConst() bool { return n.op == nConst }
func (n *node) isVar() bool   { return n.op == nVar }

func constBool(v bool) *node     { return &node{op: nConst, k: kBool, bv: v} }
func constInt(v int) *node       { return &node{op: nConst, k: kInt, i: v} }
func constFloat(v float64) *node { return &node{op: nConst, k: kFloat, f: v} }
func constString(v string) *node { return &node{op: nConst, k: kString, s: v} }
func unary(op nop, k kind, a *node) *node {
	return &node{op: op, k: k, a: a}
}
func binary(op nop, k kind, a, b *node) *node {
	return &node{op: op, k: k, a: a, b: b}
}

// asFloat converts an int node to float the way expr does (float64(x)).
func (n *node) asFloat() *node {
	if n.k == kFloat {
		return n
	}
	if n.isConst() {
		return constFloat(float64(n.i))
	}
	return unary(nToFloat, kFloat, n)
}

// negated returns n with its result negated.
func (n *node) negated() *node {
	c := *n
	c.neg = !c.neg
	return &c
}

// path returns "a.b" for a chain of identifier and member accesses.
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

func native(n ast.Node) *node {
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
		return nil
	case *ast.IdentifierNode, *ast.MemberNode:
		p, ok := path(n)
		if !ok {
			return nil
		}
		src, ok := sources[p]
		if !ok {
			return nil
		}
		return &node{op: nVar, k: src.k, src: src}
	case *ast.UnaryNode:
		return nativeUnary(x)
	case *ast.BinaryNode:
		return nativeBinary(x)
	case *ast.ConditionalNode:
		c, a, b := native(x.Cond), native(x.Exp1), native(x.Exp2)
		if c == nil || a == nil || b == nil || c.k != kBool || a.k != b.k {
			return nil
		}
		return &node{op: nCond, k: a.k, a: c, b: a, c: b}
	case *ast.BuiltinNode:
		return nativeBuiltin(x)
	}
	return nil
}

// nativeBuiltin handles the functions of Functions, as expr's builtins
// compute them.
func nativeBuiltin(x *ast.BuiltinNode) *node {
	var args []*node
	for _, a := range x.Arguments {
		n := native(a)
		if n == nil {
			return nil
		}
		args = append(args, n)
	}
	if len(args) == 0 {
		return nil
	}
	a := args[0]
	switch x.Name {
	case "min", "max":
		// expr's result takes the type of whichever argument wins: only
		// arguments of one type have a type known in advance.
		n := &node{op: nMin, k: a.k}
		if x.Name == "max" {
			n.op = nMax
		}
		for _, arg := range args {
			if !arg.numeric() || arg.k != a.k {
				return nil
			}
			n.list = append(n.list, *arg)
		}
		return n
	}
	if len(args) != 1 {
		return nil
	}
	switch {
	case x.Name == "len" && a.k == kString:
		return unary(nLen, kInt, a)
	case x.Name == "lower" && a.k == kString:
		return unary(nLower, kString, a)
	case x.Name == "upper" && a.k == kString:
		return unary(nUpper, kString, a)
	case x.Name == "trim" && a.k == kString:
		return unary(nTrim, kString, a)
	case x.Name == "abs" && a.numeric():
		return unary(nAbs, a.k, a)
	case x.Name == "floor" && a.numeric():
		return unary(nFloor, kFloat, a.asFloat())
	case x.Name == "ceil" && a.numeric():
		return unary(nCeil, kFloat, a.asFloat())
	case x.Name == "round" && a.numeric():
		return unary(nRound, kFloat, a.asFloat())
	}
	return nil
}

func nativeUnary(x *ast.UnaryNode) *node {
	a := native(x.Node)
	if a == nil {
		return nil
	}
	switch x.Operator {
	case "!", "not":
		if a.k == kBool {
			return a.negated()
		}
	case "-":
		switch {
		case a.isConst() && a.k == kInt:
			return constInt(-a.i)
		case a.isConst() && a.k == kFloat:
			return constFloat(-a.f)
		case a.numeric():
			return unary(nNeg, a.k, a)
		}
	case "+":
		if a.numeric() {
			return a
		}
	}
	return nil
}

func nativeBinary(x *ast.BinaryNode) *node {
	switch x.Operator {
	case "&&", "and", "||", "or":
		return nativeLogic(x)
	case "in":
		return nativeIn(x)
	case "matches":
		l := native(x.Left)
		pat, ok := x.Right.(*ast.StringNode)
		if l == nil || l.k != kString || !ok {
			return nil
		}
		re, err := regexp.Compile(pat.Value)
		if err != nil {
			return nil
		}
		return &node{op: nMatches, k: kBool, a: l, re: re}
	}
	l, r := native(x.Left), native(x.Right)
	if l == nil || r == nil {
		return nil
	}
	switch x.Operator {
	case "==":
		return nativeEqual(l, r)
	case "!=":
		if eq := nativeEqual(l, r); eq != nil {
			return eq.negated()
		}
	case "<", "<=", ">", ">=":
		return nativeCompare(x.Operator, l, r)
	case "+", "-", "*":
		return nativeArith(x.Operator, l, r)
	case "/":
		if l.numeric() && r.numeric() {
			return binary(nDiv, kFloat, l.asFloat(), r.asFloat())
		}
	case "%":
		// A zero divisor is a run-time error in expr: only a constant
		// other than 0 has a native form.
		if l.k == kInt && r.k == kInt && r.isConst() && r.i != 0 {
			return &node{op: nMod, k: kInt, a: l, i: r.i}
		}
	case "**", "^":
		if l.numeric() && r.numeric() {
			return binary(nPow, kFloat, l.asFloat(), r.asFloat())
		}
	case "contains", "startsWith", "endsWith":
		if l.k != kString || r.k != kString {
			return nil
		}
		op := map[string]nop{"contains": nContains, "startsWith": nStartsWith, "endsWith": nEndsWith}[x.Operator]
		return binary(op, kBool, l, r)
	}
	return nil
}

// nativeLogic flattens a chain of one logical operator (a || b || c
// parses as (a || b) || c) into one node.
func nativeLogic(x *ast.BinaryNode) *node {
	isAnd := func(op string) bool { return op == "&&" || op == "and" }
	isLogic := func(op string) bool { return isAnd(op) || op == "||" || op == "or" }
	and := isAnd(x.Operator)
	var terms []node
	var collect func(n ast.Node) bool
	collect = func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryNode); ok && isLogic(b.Operator) && isAnd(b.Operator) == and {
			return collect(b.Left) && collect(b.Right)
		}
		t := native(n)
		if t == nil || t.k != kBool {
			return false
		}
		terms = append(terms, *t)
		return true
	}
	if !collect(x) {
		return nil
	}
	return logic(and, terms)
}

// logic returns the && (and) or || of terms: an nTests node when every
// term is a range leaf on the Snapshot or an nTests node of the same
// operator (after De Morgan), else nAnd or nOr.
func logic(and bool, terms []node) *node {
	var tests []rangeTest
	for i := range terms {
		tt, any, single := asTests(&terms[i])
		if tt == nil || !single && any == and {
			op := nOr
			if and {
				op = nAnd
			}
			return &node{op: op, k: kBool, list: terms}
		}
		tests = append(tests, tt...)
	}
	return &node{op: nTests, k: kBool, stop: !and, tests: tests}
}

// asTests returns the range tests of a range leaf or nTests node on the
// Snapshot, with their negation applied, and whether they combine with
// || (any); single is true for one leaf, which combines either way. It
// returns nil tests for any other node.
func asTests(n *node) (tests []rangeTest, any, single bool) {
	switch {
	case n.op == nRange && !n.rt.onError:
		t := n.rt
		t.neg = n.neg
		return []rangeTest{t}, true, true
	case n.op == nTests:
		// !(a || b) = !a && !b, and !(a && b) = !a || !b.
		tests = append([]rangeTest(nil), n.tests...)
		for i := range tests {
			tests[i].neg = tests[i].neg != n.neg
		}
		return tests, n.stop != n.neg, false
	}
	return nil, false, false
}

// nativeIn handles `x in [constants]`, which expr's optimiser may have
// turned into a constant set.
func nativeIn(x *ast.BinaryNode) *node {
	l := native(x.Left)
	if l == nil {
		return nil
	}
	if c, ok := x.Right.(*ast.ConstantNode); ok {
		switch set := c.Value.(type) {
		case map[int]struct{}:
			if l.k != kInt {
				return nil
			}
			n := &node{op: nInInts, k: kBool, a: l}
			for v := range set {
				n.ints = append(n.ints, v)
			}
			sort.Ints(n.ints)
			return n
		case map[string]struct{}:
			if l.k != kString {
				return nil
			}
			n := &node{op: nInStrings, k: kBool, a: l}
			for v := range set {
				n.strs = append(n.strs, v)
			}
			sort.Strings(n.strs)
			return n
		case []any: // a folded list of literals
			var elems []*node
			for _, v := range set {
				elems = append(elems, native(&ast.ConstantNode{Value: v}))
			}
			return nativeAnyEqual(l, elems)
		}
		return nil
	}
	arr, ok := x.Right.(*ast.ArrayNode)
	if !ok {
		return nil
	}
	var elems []*node
	for _, el := range arr.Nodes {
		elems = append(elems, native(el))
	}
	return nativeAnyEqual(l, elems)
}

// nativeAnyEqual is `l in [elems]`: l equals one of elems, as expr's
// runtime.In compares them.
func nativeAnyEqual(l *node, elems []*node) *node {
	var terms []node
	for _, r := range elems {
		if r == nil {
			return nil
		}
		eq := nativeEqual(l, r)
		if eq == nil {
			return nil
		}
		terms = append(terms, *eq)
	}
	return logic(false, terms)
}

func nativeEqual(l, r *node) *node {
	if l.isVar() && r.isConst() {
		if x := leaf("==", l, r); x != nil {
			return x
		}
	}
	if l.isConst() && r.isVar() {
		if x := leaf("==", r, l); x != nil {
			return x
		}
	}
	return genericCompare("==", l, r)
}

var mirror = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}

func nativeCompare(op string, l, r *node) *node {
	if l.isVar() && r.isConst() {
		if x := leaf(op, l, r); x != nil {
			return x
		}
	}
	if l.isConst() && r.isVar() {
		if x := leaf(mirror[op], r, l); x != nil {
			return x
		}
	}
	return genericCompare(op, l, r)
}

// genericCompare compares two values as expr does: ints as ints, an int
// and a float as floats, strings bytewise, bools for equality only.
func genericCompare(op string, l, r *node) *node {
	c := cmpOps[op]
	switch {
	case l.k == kInt && r.k == kInt:
		return &node{op: nCmp, k: kBool, cmp: c, a: l, b: r}
	case l.numeric() && r.numeric():
		return &node{op: nCmp, k: kBool, cmp: c, a: l.asFloat(), b: r.asFloat()}
	case l.k == kString && r.k == kString:
		return &node{op: nCmp, k: kBool, cmp: c, a: l, b: r}
	case l.k == kBool && r.k == kBool && c == cEQ:
		return &node{op: nCmp, k: kBool, cmp: c, a: l, b: r}
	}
	return nil
}

func nativeArith(op string, l, r *node) *node {
	o := map[string]nop{"+": nAdd, "-": nSub, "*": nMul}[op]
	switch {
	case op == "+" && l.k == kString && r.k == kString:
		return binary(nAdd, kString, l, r)
	case l.k == kInt && r.k == kInt:
		return binary(o, kInt, l, r)
	case l.numeric() && r.numeric():
		return binary(o, kFloat, l.asFloat(), r.asFloat())
	}
	return nil
}

// leaf specialises "variable op constant" into one node, or returns nil
// when the variable's conversion has no leaf form.
func leaf(op string, v, c *node) *node {
	switch v.src.conv {
	case convString:
		if op != "==" || c.k != kString {
			return nil
		}
		return &node{op: nStrEq, k: kBool, src: v.src, s: c.s}
	case convMillis, convInt, convCount, convFloat:
		return rangeLeaf(op, v, c)
	}
	return nil
}

// rawDomain is the values of an 8-byte raw type as keys (see rangeTest).
type rawDomain struct {
	sm, x    uint64 // the key's parameters
	min, max uint64 // the smallest and largest keys
}

const signBit = 1 << 63

var (
	int64Domain  = rawDomain{0, signBit, 0, math.MaxUint64}
	uint64Domain = rawDomain{0, 0, 0, math.MaxUint64}
	// Floats from -Inf to +Inf; the NaNs lie outside.
	floatDomain = rawDomain{math.MaxUint64, signBit, ^math.Float64bits(math.Inf(-1)), math.Float64bits(math.Inf(1)) | signBit}
)

// bits returns the raw bits whose key is k.
func (d rawDomain) bits(k uint64) uint64 {
	if d.sm == 0 {
		return k ^ d.x
	}
	if k&signBit != 0 {
		return k &^ signBit // a positive float
	}
	return ^k
}

// rangeLeaf turns "variable op constant" over a number variable into a
// range test on the raw field. The conversion from raw to variable value
// (ms, clampInt, the identity) never decreases as the raw value grows, so
// the raw values for which the comparison holds are an interval; its ends
// are found by binary search, with the generic comparison node evaluated
// on a scratch Snapshot as the judge (so the leaf agrees with it by
// construction). A NaN float field lies in no interval, and compares
// false with anything, as in expr.
func rangeLeaf(op string, v, c *node) *node {
	if !c.numeric() {
		return nil
	}
	dom := uint64Domain
	switch v.src.conv {
	case convMillis:
		dom = int64Domain
	case convInt:
		if strconv.IntSize != 64 {
			return nil // a 32-bit int: the generic comparison
		}
		dom = int64Domain
	case convFloat:
		dom = floatDomain
	}
	var snap metrics.Snapshot
	var info ErrorInfo
	base := unsafe.Pointer(&snap)
	if v.src.onError {
		base = unsafe.Pointer(&info)
	}
	field := unsafe.Add(base, v.src.off)
	judge := func(op string) func(uint64) bool {
		g := genericCompare(op, v, c)
		return func(k uint64) bool {
			*(*uint64)(field) = dom.bits(k)
			return g.evalBool(&snap, &info)
		}
	}
	var lo, hi uint64
	var ok bool
	switch op {
	case ">", ">=":
		lo, ok = firstTrue(dom.min, dom.max, judge(op))
		hi = dom.max
	case "<", "<=":
		hi, ok = lastTrue(dom.min, dom.max, judge(op))
		lo = dom.min
	case "==":
		var okHi bool
		lo, ok = firstTrue(dom.min, dom.max, judge(">="))
		hi, okHi = lastTrue(dom.min, dom.max, judge("<="))
		ok = ok && okHi && lo <= hi
	default:
		return nil
	}
	if !ok {
		return constBool(false)
	}
	rt := rangeTest{off: v.src.off, sm: dom.sm, x: dom.x, lo: lo, span: hi - lo, onError: v.src.onError}
	return &node{op: nRange, k: kBool, src: v.src, rt: rt}
}

// firstTrue returns the smallest key in [lo, hi] for which p holds, p
// being false then true as keys grow.
func firstTrue(lo, hi uint64, p func(uint64) bool) (uint64, bool) {
	if !p(hi) {
		return 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if p(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, true
}

// lastTrue returns the largest key in [lo, hi] for which p holds, p
// being true then false as keys grow.
func lastTrue(lo, hi uint64, p func(uint64) bool) (uint64, bool) {
	if !p(lo) {
		return 0, false
	}
	for lo < hi {
		mid := hi - (hi-lo)/2
		if p(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, true
}

// at returns the address of the variable a leaf or nVar node reads.
func (n *node) at(s *metrics.Snapshot, e *ErrorInfo) unsafe.Pointer {
	if n.src.onError {
		return unsafe.Add(unsafe.Pointer(e), n.src.off)
	}
	return unsafe.Add(unsafe.Pointer(s), n.src.off)
}

// all is an nTests node's loop.
func (n *node) all(s *metrics.Snapshot) bool { return runTests(n.tests, n.stop, s) }

// runTests runs range tests on s in order: the first whose result is
// stop decides, and !stop when none is.
func runTests(tests []rangeTest, stop bool, s *metrics.Snapshot) bool {
	base := unsafe.Pointer(s)
	for i := range tests {
		t := &tests[i]
		if t.in(unsafe.Add(base, t.off)) != t.neg == stop {
			return stop
		}
	}
	return !stop
}

// flatCond is a whole condition that is one range leaf or a flattened
// && or || of them on the Snapshot (the usual shape of a level
// condition), in the form Evaluate runs fastest. Its tests have no side
// effects and cannot fail, so all of them run, without a branch per test,
// and the count that passed decides.
type flatCond struct {
	ok    bool   // the condition has this form
	need  uint64 // tests that must pass: 1 for ||, all of them for &&
	tests []flatTest
}

// flatTest is a rangeTest in flatCond's form, with one key transform for
// both kinds of field: key = b ^ ((sign(b) | 1<<63) & sm). For a float
// field sm is all ones, the float key of rangeTest. For an integer field
// sm is 0 (key = b) and rangeTest's x is folded into lo instead: with
// x = 0 or the sign bit, (b ^ x) - lo = b - (lo ^ x) modulo 2^64.
type flatTest struct {
	off  uintptr
	sm   uint64
	lo   uint64
	span uint64
	neg  uint64 // 1: the result is negated
}

// implies reports whether a holding means b holds, as far as their range
// tests show: each test of a (an || of them) lies within a test of b (an
// || of them), or, when a is an &&, one of its tests does. False when
// either is not made of range tests.
func implies(a, b *node) bool {
	if a == nil || b == nil {
		return false
	}
	at, aAny, aSingle := asTests(a)
	bt, bAny, bSingle := asTests(b)
	if at == nil || bt == nil || !bAny && !bSingle {
		return false
	}
	within := func(t rangeTest) bool {
		for _, u := range bt {
			if t.within(u) {
				return true
			}
		}
		return false
	}
	if aAny || aSingle {
		for _, t := range at {
			if !within(t) {
				return false
			}
		}
		return true
	}
	for _, t := range at {
		if within(t) {
			return true
		}
	}
	return false
}

// within reports whether every value that passes t passes u. The
// intervals do not wrap (rangeLeaf makes lo <= hi); a negated test
// passes outside its interval, so two negated tests compare reversed.
func (t rangeTest) within(u rangeTest) bool {
	if t.off != u.off || t.sm != u.sm || t.x != u.x || t.onError || u.onError || t.neg != u.neg {
		return false
	}
	tHi, uHi := t.lo+t.span, u.lo+u.span
	if !t.neg {
		return u.lo <= t.lo && tHi <= uHi
	}
	return t.lo <= u.lo && uHi <= tHi
}

// flatten returns the flatCond form of a native condition, if it has one.
func flatten(n *node) flatCond {
	if n == nil {
		return flatCond{}
	}
	tests, any, _ := asTests(n)
	if tests == nil {
		return flatCond{}
	}
	f := flatCond{ok: true, need: uint64(len(tests))}
	if any {
		f.need = 1
	}
	for _, t := range tests {
		ft := flatTest{off: t.off, lo: t.lo, span: t.span}
		if t.neg {
			ft.neg = 1
		}
		if t.sm == 0 {
			ft.lo ^= t.x
		} else {
			ft.sm = math.MaxUint64
		}
		f.tests = append(f.tests, ft)
	}
	return f
}

// eval runs every test on s and combines the results.
func (f *flatCond) eval(s *metrics.Snapshot) bool {
	base := unsafe.Pointer(s)
	var hits uint64
	for i := range f.tests {
		t := &f.tests[i]
		b := *(*uint64)(unsafe.Add(base, t.off))
		k := b ^ ((uint64(int64(b)>>63) | signBit) & t.sm)
		hits += bit(k-t.lo <= t.span) ^ t.neg
	}
	return hits >= f.need
}

// bit is 1 for true.
func bit(b bool) uint64 {
	var x uint64
	if b {
		x = 1
	}
	return x
}

func (n *node) evalBool(s *metrics.Snapshot, e *ErrorInfo) bool {
	var v bool
	switch n.op {
	case nTests:
		v = n.all(s)
	case nRange:
		v = n.rt.in(n.at(s, e))
	case nOr:
		for i := range n.list {
			if n.list[i].evalBool(s, e) {
				v = true
				break
			}
		}
	case nAnd:
		v = true
		for i := range n.list {
			if !n.list[i].evalBool(s, e) {
				v = false
				break
			}
		}
	case nStrEq:
		v = *(*string)(n.at(s, e)) == n.s
	case nConst:
		v = n.bv
	case nVar:
		v = *(*bool)(n.at(s, e))
	case nCmp:
		switch n.a.k {
		case kInt:
			v = compare(n.cmp, n.a.evalInt(s, e), n.b.evalInt(s, e))
		case kFloat:
			v = compare(n.cmp, n.a.evalFloat(s, e), n.b.evalFloat(s, e))
		case kString:
			v = compare(n.cmp, n.a.evalString(s, e), n.b.evalString(s, e))
		default:
			v = n.a.evalBool(s, e) == n.b.evalBool(s, e)
		}
	case nInInts:
		x := n.a.evalInt(s, e)
		for _, c := range n.ints {
			if c == x {
				v = true
				break
			}
		}
	case nInStrings:
		x := n.a.evalString(s, e)
		for _, c := range n.strs {
			if c == x {
				v = true
				break
			}
		}
	case nMatches:
		v = n.re.MatchString(n.a.evalString(s, e))
	case nContains:
		v = strings.Contains(n.a.evalString(s, e), n.b.evalString(s, e))
	case nStartsWith:
		v = strings.HasPrefix(n.a.evalString(s, e), n.b.evalString(s, e))
	case nEndsWith:
		v = strings.HasSuffix(n.a.evalString(s, e), n.b.evalString(s, e))
	case nCond:
		if n.a.evalBool(s, e) {
			v = n.b.evalBool(s, e)
		} else {
			v = n.c.evalBool(s, e)
		}
	default:
		panic("policy: native bool node with operation " + opName(n.op))
	}
	return v != n.neg
}

func (n *node) evalInt(s *metrics.Snapshot, e *ErrorInfo) int {
	switch n.op {
	case nConst:
		return n.i
	case nVar:
		p := n.at(s, e)
		switch n.src.conv {
		case convInt:
			return *(*int)(p)
		case convCount:
			return clampInt(*(*uint64)(p))
		case convInt64:
			return int(*(*int64)(p))
		}
	case nNeg:
		return -n.a.evalInt(s, e)
	case nAdd:
		return n.a.evalInt(s, e) + n.b.evalInt(s, e)
	case nSub:
		return n.a.evalInt(s, e) - n.b.evalInt(s, e)
	case nMul:
		return n.a.evalInt(s, e) * n.b.evalInt(s, e)
	case nLen:
		return utf8.RuneCountInString(n.a.evalString(s, e))
	case nMod:
		return n.a.evalInt(s, e) % n.i
	case nAbs:
		v := n.a.evalInt(s, e)
		if v < 0 {
			return -v
		}
		return v
	case nMin, nMax:
		v := n.list[0].evalInt(s, e)
		for i := 1; i < len(n.list); i++ {
			if x := n.list[i].evalInt(s, e); n.op == nMax && v < x || n.op == nMin && v > x {
				v = x
			}
		}
		return v
	case nCond:
		if n.a.evalBool(s, e) {
			return n.b.evalInt(s, e)
		}
		return n.c.evalInt(s, e)
	}
	panic("policy: native int node with operation " + opName(n.op))
}

func (n *node) evalFloat(s *metrics.Snapshot, e *ErrorInfo) float64 {
	switch n.op {
	case nConst:
		return n.f
	case nVar:
		p := n.at(s, e)
		switch n.src.conv {
		case convFloat:
			return *(*float64)(p)
		case convMillis:
			return ms(*(*time.Duration)(p))
		case convDegradationAge:
			return degradationAge(s)
		}
	case nToFloat:
		return float64(n.a.evalInt(s, e))
	case nNeg:
		return -n.a.evalFloat(s, e)
	case nAdd:
		return n.a.evalFloat(s, e) + n.b.evalFloat(s, e)
	case nSub:
		return n.a.evalFloat(s, e) - n.b.evalFloat(s, e)
	case nMul:
		return n.a.evalFloat(s, e) * n.b.evalFloat(s, e)
	case nDiv:
		return n.a.evalFloat(s, e) / n.b.evalFloat(s, e)
	case nPow:
		return math.Pow(n.a.evalFloat(s, e), n.b.evalFloat(s, e))
	case nAbs:
		v := n.a.evalFloat(s, e)
		if v < 0 {
			return -v
		}
		return v
	case nFloor:
		return math.Floor(n.a.evalFloat(s, e))
	case nCeil:
		return math.Ceil(n.a.evalFloat(s, e))
	case nRound:
		return math.Round(n.a.evalFloat(s, e))
	case nMin, nMax:
		v := n.list[0].evalFloat(s, e)
		for i := 1; i < len(n.list); i++ {
			if x := n.list[i].evalFloat(s, e); n.op == nMax && v < x || n.op == nMin && v > x {
				v = x
			}
		}
		return v
	case nCond:
		if n.a.evalBool(s, e) {
			return n.b.evalFloat(s, e)
		}
		return n.c.evalFloat(s, e)
	}
	panic("policy: native float node with operation " + opName(n.op))
}

func (n *node) evalString(s *metrics.Snapshot, e *ErrorInfo) string {
	switch n.op {
	case nConst:
		return n.s
	case nVar:
		if n.src.conv == convDegradationLevel {
			return degradationLevel(s)
		}
		return *(*string)(n.at(s, e))
	case nAdd:
		return n.a.evalString(s, e) + n.b.evalString(s, e)
	case nLower:
		return strings.ToLower(n.a.evalString(s, e))
	case nUpper:
		return strings.ToUpper(n.a.evalString(s, e))
	case nTrim:
		return strings.TrimSpace(n.a.evalString(s, e))
	case nCond:
		if n.a.evalBool(s, e) {
			return n.b.evalString(s, e)
		}
		return n.c.evalString(s, e)
	}
	panic("policy: native string node with operation " + opName(n.op))
}

// compare applies a comparison the way Go (and expr) does.
func compare[T int | float64 | string](c cmpOp, a, b T) bool {
	switch c {
	case cLT:
		return a < b
	case cLE:
		return a <= b
	case cGT:
		return a > b
	case cGE:
		return a >= b
	}
	return a == b
}

func opName(op nop) string {
	return [...]string{"invalid", "const", "var", "range", "tests", "str-eq", "and", "or", "cmp",
		"in-ints", "in-strings", "matches", "contains", "startsWith", "endsWith", "cond", "neg", "add", "sub", "mul", "div",
		"pow", "to-float", "len", "lower", "upper", "trim", "mod", "abs", "floor", "ceil", "round", "min", "max"}[op]
}
