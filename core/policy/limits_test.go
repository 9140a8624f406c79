package policy

import (
	"strconv"
	"strings"
	"testing"
)

// TestDecodeResourceLimits: inputs that would make HCL spend unbounded
// time or memory are refused.
func TestDecodeResourceLimits(t *testing.T) {
	var chain strings.Builder
	chain.WriteString("locals {\n  l0 = \"xxxxxxxxxxxxxxxx\"\n")
	for i := 1; i <= 40; i++ {
		chain.WriteString("  l" + strconv.Itoa(i) + " = \"${local.l" + strconv.Itoa(i-1) + "}${local.l" + strconv.Itoa(i-1) + "}\"\n")
	}
	chain.WriteString("}\n")
	tests := []struct{ name, src, want string }{
		{"huge literal in a template", "locals {\n a = 1e9999999\n}\ndegradation {\n level \"minimal\" {\n when = \"errors.rate > ${local.a}\"\n }\n recover { when = \"true\" }\n}\n", "p.hcl:2:6: error: Number out of range"},
		{"tiny literal", "locals {\n a = 1e-9999999\n}\n", "p.hcl:2:6: error: Number out of range"},
		{"squaring locals", "locals {\n a = 1e300\n b = local.a * local.a\n c = local.b * local.b\n}\n", "p.hcl:3:6: error: Local value too large"},
		{"doubling locals", chain.String(), "error: Local value too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("p.hcl", []byte(tt.src), Options{})
			if !strings.Contains(strings.Join(DiagnosticLines(diags), "\\n"), tt.want) {
				t.Errorf("diagnostics %v do not contain %q", DiagnosticLines(diags), tt.want)
			}
		})
	}
}
