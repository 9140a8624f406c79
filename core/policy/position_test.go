package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestConditionErrorColumns checks that an error inside a condition is
// located at the exact line and column of the source, whatever the string
// looks like in the file.
func TestConditionErrorColumns(t *testing.T) {
	tests := []struct {
		name string
		when string // the right-hand side of when = ...
		// mark is the text the error must start at; it must occur once in
		// the file, after "when".
		mark    string
		pre     string // extra top-level content (locals)
		wantSum string
	}{
		{"plain", `"errors.rate > 0.1 && bogus > 1"`, "bogus", "", "Unknown name in condition"},
		{"escaped quotes before", `"gateway.state == \"READY\" && bogus"`, "bogus", "", "Unknown name in condition"},
		{"unicode escape before", `"gateway.state == \"\u00e9t\u00E9\" && bogus"`, "bogus", "", "Unknown name in condition"},
		{"escaped dollar before", `"gateway.state == '$${x}' && bogus"`, "bogus", "", "Unknown name in condition"},
		{"non-ascii before", `"gateway.state == 'héllo wörld' && bogus"`, "bogus", "", "Unknown name in condition"},
		{"tab escape before", `"gateway.state == '\t' && errors.ratee > 1"`, "ratee", "", "Unknown name in condition"},
		{"after interpolation", `"errors.rate > ${local.x} && bogus"`, "bogus", "locals {\n  x = 0.25\n}\n", "Unknown name in condition"},
		{"inside interpolated local", `"errors.rate > 0 && ${local.c}"`, "nope", "locals {\n  c = \"latency.nope > 1\"\n}\n", "Unknown name in condition"},
		{"through local reference", `local.c`, "nope", "locals {\n  c = \"latency.heartbeat > 1 || latency.nope > 1\"\n}\n", "Unknown name in condition"},
		{"heredoc second line", "<<EOT\nerrors.rate > 0.1 ||\n   bogus > 2\nEOT", "bogus", "", "Unknown name in condition"},
		{"flush heredoc", "<<-EOT\n      errors.rate > 0.1 ||\n          bogus > 2\n    EOT", "bogus", "", "Unknown name in condition"},
		{"type mismatch operator", `"gateway.state > 5"`, "> 5", "", "Type mismatch in condition"},
		{"bad duration literal", `"latency.heartbeat > duration('5 sec')"`, "'5 sec'", "", "Invalid duration"},
		{"function not allowed", `"gateway.connected && now() == 1"`, "now", "", "Unknown name in condition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.pre + "degradation {\n  level \"minimal\" {\n    when = " + tt.when + "\n  }\n  recover { when = \"true\" }\n}\n"
			off := strings.LastIndex(src, tt.mark)
			if off < 0 || strings.Count(src, tt.mark) != 1 {
				t.Fatalf("mark %q must occur exactly once in:\n%s", tt.mark, src)
			}
			line := 1 + strings.Count(src[:off], "\n")
			col := 1 + len([]rune(src[strings.LastIndex(src[:off], "\n")+1:off]))
			_, diags := Decode("p.hcl", []byte(src), Options{})
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got %v", diags)
			}
			d := diags[0]
			got := fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
			want := fmt.Sprintf("%d:%d %s", line, col, tt.wantSum)
			if got != want {
				t.Errorf("got %s, want %s\n%s", got, want, src)
			}
			if d.Subject.Start.Byte != off {
				t.Errorf("byte offset %d, want %d", d.Subject.Start.Byte, off)
			}
		})
	}
}
