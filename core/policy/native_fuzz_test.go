package policy

import (
	"fmt"
	"hash/crc32"
	"math/rand"
	"strings"
	"testing"

	"github.com/expr-lang/expr/vm"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// FuzzCompiledMatchesVM generates a condition from the fuzzer's bytes,
// from a grammar of the native subset with some constructs outside it,
// and snapshots whose values straddle the condition's constants. Wherever
// the condition compiles, its native form (and flat form) must decide
// as expr's VM does on every snapshot, and the VM must not fail where
// the native form exists.
func FuzzCompiledMatchesVM(f *testing.F) {
	for _, seed := range []string{
		"\x01\x02\x03\x04\x05\x06\x07\x08",
		"\x03\x01\x00\x02\x10\x04\x01\x03\x00\x05",
		"\x04\x02\x01\x07\x03\x09\x0b\x02\x01",
		"\x06\x00\x01\x02\x07\x00\x03\x08\x01\x05\x0a\x0c",
		"\x0a\x01\x02\x03\x0d\x04\x05\x0e\x06",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &exprGen{data: data}
		src := g.boolExpr(4)
		prog, errs := compileCondition(src, true, 0)
		if len(errs) > 0 {
			return // the generator wrote a condition expr refuses (a type mismatch, say)
		}
		r := rand.New(rand.NewSource(int64(crc32.ChecksumIEEE(data))))
		var m vm.VM
		for i := 0; i < 24; i++ {
			var s metrics.Snapshot
			var info ErrorInfo
			if i > 0 {
				s, info = randomSnapshot(r, g.consts)
			}
			if d := differ(&m, prog, &s, &info); d != "" {
				t.Fatalf("%q: %s on snapshot %+v, error %+v", src, d, s, info)
			}
		}
	})
}

// exprGen writes a condition, drawing each choice from data (zeros once
// it runs out).
type exprGen struct {
	data   []byte
	pos    int
	consts []float64 // the numbers written, for snapshots near them
}

var genVars = func() map[string][]string {
	out := map[string][]string{}
	for _, v := range Variables() {
		out[v.Type] = append(out[v.Type], v.Name)
	}
	return out
}()

var (
	genInts    = []string{"0", "1", "-1", "2", "3", "5", "10", "40", "1000", "4004", "9223372036854775807", "-9223372036854775807"}
	genFloats  = []string{"0.0", "0.1", "0.5", "2.5", "-0.5", "999.9999995", "1000.5", "0.0000001", "1e30", "100.0", "duration('1.5s')", "duration('-1ms')"}
	genStrings = []string{"'READY'", "''", "'é'", "'NONE'", "'zombie'", "'OPEN'", "'a'", "' zombie '", "'CLOSED'"}
	genRegexps = []string{"'^R'", "'zombie|ZOMBIE'", "'.*'", "'é$'", "'^[A-Z_]+$'"}
	genCmps    = []string{"<", "<=", ">", ">=", "==", "!="}
)

func (g *exprGen) next() byte {
	if g.pos >= len(g.data) {
		return 0
	}
	b := g.data[g.pos]
	g.pos++
	return b
}

func (g *exprGen) pick(n int) int { return int(g.next()) % n }

func (g *exprGen) of(list []string) string { return list[g.pick(len(list))] }

func (g *exprGen) number() string {
	var c string
	if g.pick(2) == 0 {
		c = g.of(genInts)
	} else {
		c = g.of(genFloats)
	}
	var v float64
	if _, err := fmt.Sscan(c, &v); err == nil {
		g.consts = append(g.consts, v, v+1, v-1)
	} else if strings.HasPrefix(c, "duration") {
		g.consts = append(g.consts, 1500, -1)
	}
	return c
}

func (g *exprGen) boolExpr(depth int) string {
	if depth <= 0 {
		switch g.pick(3) {
		case 0:
			return g.of(genVars["bool"])
		case 1:
			return []string{"true", "false"}[g.pick(2)]
		}
		return g.numVar() + " " + g.of(genCmps) + " " + g.number()
	}
	d := depth - 1
	switch g.pick(17) {
	case 0:
		return g.numExpr(d) + " " + g.of(genCmps) + " " + g.numExpr(d)
	case 1:
		return g.numVar() + " " + g.of(genCmps) + " " + g.number()
	case 2:
		return g.number() + " " + g.of(genCmps) + " " + g.numVar()
	case 3:
		return "(" + g.boolExpr(d) + " " + []string{"&&", "and"}[g.pick(2)] + " " + g.boolExpr(d) + ")"
	case 4:
		return "(" + g.boolExpr(d) + " " + []string{"||", "or"}[g.pick(2)] + " " + g.boolExpr(d) + ")"
	case 5:
		return []string{"!", "not "}[g.pick(2)] + "(" + g.boolExpr(d) + ")"
	case 6:
		return g.numExpr(d) + g.in() + "[" + g.number() + ", " + g.number() + ", " + g.number() + "]"
	case 7:
		return g.strExpr(d) + g.in() + "[" + g.of(genStrings) + ", " + g.of(genStrings) + "]"
	case 8:
		return g.strExpr(d) + " " + g.of(genCmps) + " " + g.strExpr(d)
	case 9:
		return g.strExpr(d) + " " + g.of([]string{"contains", "startsWith", "endsWith"}) + " " + g.strExpr(d)
	case 10:
		return g.strExpr(d) + " matches " + g.of(genRegexps)
	case 11:
		return g.of(genVars["bool"]) + " " + g.of([]string{"==", "!="}) + " " + g.boolExpr(d)
	case 12:
		return "(" + g.boolExpr(d) + " ? " + g.boolExpr(d) + " : " + g.boolExpr(d) + ")"
	case 13:
		lo := g.pick(8) - 2
		return g.of(genVars["int"]) + g.in() + fmt.Sprintf("%d..%d", lo, lo+g.pick(6))
	case 14:
		switch g.pick(6) {
		case 0:
			return g.numExpr(d) + " % " + g.of(genInts) + " == 1"
		case 1:
			return "abs(" + g.numExpr(d) + ") > " + g.number()
		case 2:
			return g.of([]string{"min", "max"}) + "(" + g.numVar() + ", " + g.number() + ", " + g.numExpr(d) + ") " + g.of(genCmps) + " " + g.number()
		case 3:
			return g.of([]string{"min", "max"}) + "(" + g.of(genVars["int"]) + ", " + g.of(genInts) + ") " + g.of(genCmps) + " " + g.number()
		case 4:
			return g.of([]string{"min", "max"}) + "(" + g.of(genVars["float"]) + ", " + g.of(genVars["float"]) + ", " + g.of(genFloats) + ") " + g.of(genCmps) + " " + g.number()
		}
		return g.of([]string{"round", "floor", "ceil"}) + "(" + g.numExpr(d) + ") == " + g.number()
	case 15:
		// Outside the native subset: must compile to the VM alone.
		switch g.pick(3) {
		case 0:
			return g.of(genVars["int"]) + " % " + g.of(genVars["int"]) + " == 0"
		case 1:
			return "max(" + g.of(genVars["int"]) + ", " + g.of(genVars["float"]) + ") > " + g.number()
		}
		return g.of(genVars["float"]) + g.in() + "0..2"
	}
	return g.boolExpr(0)
}

func (g *exprGen) in() string { return []string{" in ", " not in "}[g.pick(2)] }

func (g *exprGen) numVar() string {
	if g.pick(2) == 0 {
		return g.of(genVars["int"])
	}
	return g.of(genVars["float"])
}

func (g *exprGen) numExpr(depth int) string {
	if depth <= 0 || g.pick(3) == 0 {
		if g.pick(3) == 0 {
			return g.number()
		}
		return g.numVar()
	}
	d := depth - 1
	switch g.pick(5) {
	case 0:
		return "(" + g.numExpr(d) + " " + g.of([]string{"+", "-", "*", "/", "**"}) + " " + g.numExpr(d) + ")"
	case 1:
		return "-" + g.numExpr(d)
	case 2:
		return "len(" + g.strExpr(d) + ")"
	case 3:
		return "(" + g.boolExpr(d) + " ? " + g.numExpr(d) + " : " + g.numExpr(d) + ")"
	}
	return "+" + g.numVar()
}

func (g *exprGen) strExpr(depth int) string {
	if depth <= 0 || g.pick(3) == 0 {
		if g.pick(3) == 0 {
			return g.of(genStrings)
		}
		return g.of(genVars["string"])
	}
	d := depth - 1
	switch g.pick(4) {
	case 0:
		return "(" + g.strExpr(d) + " + " + g.strExpr(d) + ")"
	case 1:
		return g.of([]string{"lower", "upper", "trim"}) + "(" + g.strExpr(d) + ")"
	case 2:
		return "(" + g.boolExpr(d) + " ? " + g.strExpr(d) + " : " + g.strExpr(d) + ")"
	}
	return g.of(genVars["string"])
}

// TestExprGenCoversSubset checks the fuzz target's generator reaches the
// native subset's constructs, so that a short fuzz run exercises them.
func TestExprGenCoversSubset(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	seen := map[nop]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil {
			return
		}
		seen[n.op] = true
		walk(n.a)
		walk(n.b)
		walk(n.c)
		for i := range n.list {
			walk(&n.list[i])
		}
	}
	compiled, native := 0, 0
	var m vm.VM
	for i := 0; i < 1500; i++ {
		data := make([]byte, 40)
		r.Read(data)
		g := &exprGen{data: data}
		src := g.boolExpr(4)
		prog, errs := compileCondition(src, true, 0)
		if len(errs) > 0 {
			continue
		}
		compiled++
		if prog.native != nil {
			native++
			walk(prog.native)
		}
		s, info := randomSnapshot(r, g.consts)
		if d := differ(&m, prog, &s, &info); d != "" {
			t.Fatalf("%q: %s on snapshot %+v, error %+v", src, d, s, info)
		}
	}
	if compiled < 500 || native < compiled/2 {
		t.Errorf("of 1500 generated conditions %d compiled and %d have a native form", compiled, native)
	}
	for op := nConst; op <= nMax; op++ {
		if !seen[op] {
			t.Errorf("no generated condition compiled to a %s node", opName(op))
		}
	}
}
