package lifeline_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/lifeline-bot/lifeline/core/events"
)

// TestEveryEventTypeIsReExported: a bot author subscribes through the root
// package alone (lifeline.StateChanged, ...), so every events.Type has a
// constant of the same name in lifeline.go; a new event type without one
// fails here.
func TestEveryEventTypeIsReExported(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "lifeline.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 {
			return true
		}
		if sel, ok := vs.Values[0].(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "events" && sel.Sel.Name == vs.Names[0].Name {
				have[sel.Sel.Name] = true
			}
		}
		return true
	})
	for _, typ := range append([]events.Type{events.All}, events.Types()...) {
		name := goName(typ.String())
		if !have[name] {
			t.Errorf("lifeline.go does not re-export events.%s (%s)", name, typ)
		}
	}
}

// goName turns a wire name (PLUGIN_LOGS_DROPPED) into the Go constant's
// (PluginLogsDropped); CIRCUIT_BREAKER_TRIGGERED keeps its words.
func goName(wire string) string {
	out := make([]byte, 0, len(wire))
	upper := true
	for i := 0; i < len(wire); i++ {
		c := wire[i]
		switch {
		case c == '_':
			upper = true
		case upper:
			out = append(out, c)
			upper = false
		default:
			out = append(out, c+'a'-'A')
		}
	}
	return string(out)
}
