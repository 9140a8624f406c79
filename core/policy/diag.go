package policy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// DiagnosticLine formats one diagnostic on one line, compiler style:
// "file:line:col: error: Summary: detail". It never includes source text.
func DiagnosticLine(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(sev)
	b.WriteString(": ")
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// DiagnosticLines formats every diagnostic with DiagnosticLine.
func DiagnosticLines(diags hcl.Diagnostics) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		out = append(out, DiagnosticLine(d))
	}
	return out
}

func errorsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

// WriteDiagnostics prints diagnostics the way HCL's own text writer does
// (severity and summary, "on FILE line N, in BLOCK:", the source line,
// the detail), adding a line of carets under the exact subject, e.g. the
// unknown name inside a condition string. sources maps file names to
// their content; a file missing from it is reported without source.
// Source lines that set a token are printed with the value redacted, and
// the diagnostic about a literal token shows no source at all.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, sources map[string][]byte, color bool) error {
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		writeDiagnostic(bw, d, sources, color)
	}
	return bw.Flush()
}

var tokenAssign = regexp.MustCompile(`\btoken(\s*=\s*)("(?:[^"\\]|\\.)*"?|<<-?\w+|[^\s}]+)`)

// redactLine hides the value of a `token = ...` assignment unless it is an
// env() call.
func redactLine(line []byte) []byte {
	return tokenAssign.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := tokenAssign.FindSubmatch(m)
		if bytes.HasPrefix(sub[2], []byte("env(")) {
			return m
		}
		return append(append([]byte("token"), sub[1]...), "<redacted>"...)
	})
}

func writeDiagnostic(w *bufio.Writer, d *hcl.Diagnostic, sources map[string][]byte, color bool) {
	var sevColor, reset, hi string
	if color {
		sevColor, reset, hi = "\x1b[31m", "\x1b[0m", "\x1b[1;4m"
		if d.Severity == hcl.DiagWarning {
			sevColor = "\x1b[33m"
		}
	}
	sev := "Error"
	if d.Severity == hcl.DiagWarning {
		sev = "Warning"
	}
	fmt.Fprintf(w, "%s%s%s: %s\n\n", sevColor, sev, reset, d.Summary)
	if d.Subject != nil {
		subj := *d.Subject
		src, ok := sources[subj.Filename]
		switch {
		case !ok || src == nil:
			fmt.Fprintf(w, "  on %s line %d:\n  (source code not available)\n\n", subj.Filename, subj.Start.Line)
		default:
			ctx := contextOf(src, subj.Filename, subj.Start.Byte)
			if ctx != "" {
				ctx = ", in " + ctx
			}
			fmt.Fprintf(w, "  on %s line %d%s:\n", subj.Filename, subj.Start.Line, ctx)
			if _, secret := d.Extra.(secretDiagnostic); secret {
				fmt.Fprintf(w, "  (source line not shown: it may contain a secret)\n\n")
			} else {
				writeSnippet(w, src, subj, hi, reset)
				w.WriteByte('\n')
			}
		}
	}
	if d.Detail != "" {
		fmt.Fprintf(w, "%s\n\n", d.Detail)
	}
}

func writeSnippet(w *bufio.Writer, src []byte, subj hcl.Range, hi, reset string) {
	start := min(max(subj.Start.Byte, 0), len(src))
	end := min(max(subj.End.Byte, start), len(src))
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	line := 1 + bytes.Count(src[:lineStart], []byte{'\n'})
	for ls := lineStart; ls <= len(src); line++ {
		le := bytes.IndexByte(src[ls:], '\n')
		if le < 0 {
			le = len(src)
		} else {
			le += ls
		}
		text := bytes.TrimSuffix(src[ls:le], []byte{'\r'})
		prefix := fmt.Sprintf("%4d: ", line)
		if red := redactLine(text); !bytes.Equal(red, text) {
			fmt.Fprintf(w, "%s%s\n", prefix, red)
		} else if hi != "" {
			a, b := clampRange(start-ls, end-ls, len(text))
			fmt.Fprintf(w, "%s%s%s%s%s%s\n", prefix, text[:a], hi, text[a:b], reset, text[b:])
		} else {
			fmt.Fprintf(w, "%s%s\n", prefix, text)
		}
		// Carets under the part of the subject on this line.
		a, b := clampRange(start-ls, end-ls, len(text))
		if b == a && ls <= start && start <= le {
			b = a + 1 // an empty range still gets one caret
		}
		if b > a || (ls <= start && start <= le) {
			var pad strings.Builder
			pad.WriteString(strings.Repeat(" ", len(prefix)))
			for _, r := range string(text[:min(a, len(text))]) {
				if r == '\t' {
					pad.WriteByte('\t')
				} else {
					pad.WriteByte(' ')
				}
			}
			n := utf8.RuneCount(text[min(a, len(text)):min(b, len(text))])
			if n == 0 {
				n = 1
			}
			fmt.Fprintf(w, "%s%s\n", pad.String(), strings.Repeat("^", n))
		}
		if le >= end || le >= len(src) {
			break
		}
		ls = le + 1
	}
}

func clampRange(a, b, n int) (int, int) {
	a = min(max(a, 0), n)
	b = min(max(b, a), n)
	return a, b
}

// contextOf names the block around byte offset off, e.g.
// `degradation.level "moderate"`, like HCL's diagnostics do.
func contextOf(src []byte, filename string, off int) string {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() || f == nil {
		return ""
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return ""
	}
	var parts []string
	for {
		var inner *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.Range().Start.Byte <= off && off < b.Range().End.Byte {
				inner = b
				break
			}
		}
		if inner == nil {
			break
		}
		name := inner.Type
		for _, l := range inner.Labels {
			name += fmt.Sprintf(" %q", l)
		}
		parts = append(parts, name)
		body = inner.Body
	}
	return strings.Join(parts, ".")
}
