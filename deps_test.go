package lifeline

import (
	"bufio"
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const modulePath = "github.com/lifeline-bot/lifeline"

// importRule forbids packages matching from to depend, directly or not, on
// packages matching to.
type importRule struct {
	name string
	from func(pkg string) bool
	to   func(dep string) bool
}

func under(prefix string) func(string) bool {
	full := modulePath + "/" + prefix
	return func(p string) bool { return p == full || strings.HasPrefix(p, full+"/") }
}

// dependencyRules is DESIGN.md's "dependencies point one way".
var dependencyRules = []importRule{
	{"sdk must not import core", under("sdk"), under("core")},
	{"plugins must not import core", under("plugins"), under("core")},
	{"core/* must not import core/orchestrator",
		func(p string) bool { return under("core")(p) && !under("core/orchestrator")(p) },
		under("core/orchestrator")},
	{"core must not import the root package",
		under("core"), func(d string) bool { return d == modulePath }},
}

// violations lists "pkg -> dep (rule)" for every broken rule in graph, which
// maps a package to its transitive dependencies.
func violations(graph map[string][]string, rules []importRule) []string {
	var out []string
	for pkg, deps := range graph {
		// A package's test binary (p.test) and external tests (p_test)
		// belong to p.
		owner := strings.TrimSuffix(strings.TrimSuffix(pkg, ".test"), "_test")
		for _, r := range rules {
			if !r.from(owner) {
				continue
			}
			for _, d := range deps {
				if r.to(d) {
					out = append(out, pkg+" -> "+d+" ("+r.name+")")
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestDependencyDirection(t *testing.T) {
	// -test includes the test files' imports: test code obeys the rules too.
	cmd := exec.Command("go", "list", "-test",
		"-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		// Test variants print as "pkg [pkg.test] deps...": key by pkg and
		// skip the bracketed variant name.
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		for _, d := range f[1:] {
			if !strings.HasPrefix(d, "[") {
				graph[f[0]] = append(graph[f[0]], d)
			}
		}
	}
	if len(graph) == 0 {
		t.Fatal("go list returned no packages")
	}
	if v := violations(graph, dependencyRules); len(v) > 0 {
		t.Fatalf("dependency rules broken:\n  %s", strings.Join(v, "\n  "))
	}
}

// TestDependencyRulesCatchViolations proves the checker is not vacuous.
func TestDependencyRulesCatchViolations(t *testing.T) {
	graph := map[string][]string{
		modulePath + "/sdk":               {modulePath + "/core/events"},
		modulePath + "/core/breaker":      {modulePath + "/core/orchestrator"},
		modulePath + "/core/orchestrator": {modulePath + "/core/breaker"},
		modulePath + "/plugins/httpprobe": {modulePath + "/sdk"},
	}
	got := violations(graph, dependencyRules)
	if len(got) != 2 {
		t.Fatalf("got %d violations, want 2: %v", len(got), got)
	}
}
