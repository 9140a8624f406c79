package policy

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/expr-lang/expr/vm"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// FuzzDecode feeds arbitrary files to the decoder and compiler. Whatever
// the input: no panic; every diagnostic points inside the file; printing
// the diagnostics works; and a policy that decodes evaluates, with the
// native evaluator agreeing with expr's VM on every condition.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.hcl", "testdata/invalid/*.hcl", "../../policies/*.hcl"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if src, err := os.ReadFile(file); err == nil {
				f.Add(src)
			}
		}
	}
	envs := fuzzEnvs()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, diags := Decode("fuzz.hcl", src, testOptions())
		for _, d := range diags {
			if d.Subject == nil {
				continue
			}
			s := d.Subject
			if s.Start.Byte < 0 || s.End.Byte < s.Start.Byte || s.End.Byte > len(src)+1 || s.Start.Line < 1 || s.Start.Column < 1 {
				t.Fatalf("diagnostic %q has range %+v outside the %d-byte file", DiagnosticLine(d), *s, len(src))
			}
		}
		var out bytes.Buffer
		if err := WriteDiagnostics(&out, diags, map[string][]byte{"fuzz.hcl": src}, false); err != nil {
			t.Fatal(err)
		}
		if p == nil {
			if !diags.HasErrors() {
				t.Fatal("no policy and no error")
			}
			return
		}
		d := p.Evaluate(snap(nil))
		if d.Level > Critical {
			t.Fatalf("level %d", d.Level)
		}
		var conds []Condition
		for _, l := range p.Degradation.Levels {
			conds = append(conds, l.When)
		}
		conds = append(conds, p.Degradation.Recover)
		for _, r := range p.Recovery {
			conds = append(conds, r.When)
		}
		for _, c := range conds {
			agree(t, c.Expr, c.prog, envs)
		}
	})
}

// FuzzCondition compiles arbitrary condition text: errors must lie
// inside the text, and compiled conditions must evaluate the same on
// both paths.
func FuzzCondition(f *testing.F) {
	for _, s := range differentialExprs {
		f.Add(s, true)
	}
	f.Add("errors.rat > 1", false)
	f.Add("duration('5 s') > 1", false)
	f.Add("error.kind == 'x'", false)
	envs := fuzzEnvs()
	f.Fuzz(func(t *testing.T, src string, recovery bool) {
		prog, errs := compileCondition(src, recovery, 64)
		n := utf8.RuneCountInString(src)
		for _, e := range errs {
			if e.from > n || e.to > n || (e.from >= 0 && e.to < e.from) {
				t.Fatalf("%q: error %+v outside the %d-rune text", src, e, n)
			}
		}
		if len(errs) == 0 {
			agree(t, src, prog, envs)
		}
	})
}

// fuzzInput is one snapshot and error to evaluate conditions on.
type fuzzInput struct {
	s    metrics.Snapshot
	info ErrorInfo
}

func fuzzEnvs() []fuzzInput {
	r := rand.New(rand.NewSource(7))
	envs := make([]fuzzInput, 16)
	for i := range envs {
		envs[i].s, envs[i].info = randomSnapshot(r, nil)
	}
	return envs
}

// agree checks the native form of prog, if any, decides as the VM does
// on every input.
func agree(t *testing.T, src string, prog *program, envs []fuzzInput) {
	t.Helper()
	if prog == nil {
		return
	}
	var m vm.VM
	for i := range envs {
		if d := differ(&m, prog, &envs[i].s, &envs[i].info); d != "" {
			t.Fatalf("%q: %s on %+v, error %+v", src, d, envs[i].s, envs[i].info)
		}
	}
}
