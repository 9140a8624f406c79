package policy

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const docsPath = "../../docs/policy.md"

func readDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsExamplesDecode decodes every ```hcl block of docs/policy.md.
func TestDocsExamplesDecode(t *testing.T) {
	doc := readDocs(t)
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatchIndex(doc, -1)
	if len(blocks) < 8 {
		t.Fatalf("found %d hcl examples in %s; expected one per block at least", len(blocks), docsPath)
	}
	for _, m := range blocks {
		src := doc[m[2]:m[3]]
		line := 1 + strings.Count(doc[:m[2]], "\n")
		name := fmt.Sprintf("policy.md:%d", line)
		t.Run(name, func(t *testing.T) {
			_, diags := Decode(name, []byte(src), testOptions())
			if diags.HasErrors() {
				var b bytes.Buffer
				_ = WriteDiagnostics(&b, diags, map[string][]byte{name: []byte(src)}, false)
				t.Errorf("example at %s:%d does not decode:\n%s", docsPath, line, b.String())
			}
		})
	}
}

// TestDocsCoverReference checks the reference lists every attribute,
// variable (with its type and unit, in order), function, action and
// intent the code knows.
func TestDocsCoverReference(t *testing.T) {
	doc := readDocs(t)
	for block, attrs := range blockAttrs {
		for _, a := range attrs {
			if !strings.Contains(doc, "| `"+a+"` |") {
				t.Errorf("attribute %s.%s has no table row in %s", block, a, docsPath)
			}
		}
	}
	for block := range blockAttrs {
		if !strings.Contains(doc, "## "+block) && !strings.Contains(doc, "### "+block) {
			t.Errorf("block %s has no section", block)
		}
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_.0-9]+)` \\| (\\w+) \\| ([\\w-]+) \\|")
	start := strings.Index(doc, "### Condition variables")
	end := strings.Index(doc, "### Condition functions")
	if start < 0 || end < start {
		t.Fatal("no condition variables section")
	}
	var got []string
	for _, m := range row.FindAllStringSubmatch(doc[start:end], -1) {
		got = append(got, m[1]+" "+m[2]+" "+m[3])
	}
	var want []string
	for _, v := range Variables() {
		want = append(want, v.Name+" "+v.Type+" "+v.Unit)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("variables table differs from Variables():\n--- docs\n%s\n--- code\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range Functions {
		if !strings.Contains(doc[end:], "| `"+f.Name+"(") {
			t.Errorf("function %s is not documented", f.Name)
		}
	}
	for _, a := range BuiltinActions {
		if !strings.Contains(doc, "`"+a+"`") {
			t.Errorf("action %s is not documented", a)
		}
	}
	for _, s := range BuiltinStrategies {
		if !strings.Contains(doc, "`"+s+"`") {
			t.Errorf("strategy %s is not documented", s)
		}
	}
	for _, in := range intents {
		if !strings.Contains(doc, "`"+in.Name+"`") {
			t.Errorf("intent %s is not documented", in.Name)
		}
	}
}
