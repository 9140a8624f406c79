package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/lifeline-bot/lifeline/core/policy"
)

func init() {
	register(command{
		Name:    "policy check",
		Summary: "load policy files and report every problem with its file, line and column",
		Usage: `FILE...

Decodes, validates and compiles each policy file exactly as lifeline loads it,
including the expr conditions. Every problem is printed to stderr with
file:line:col and the source line, a caret under the exact place (inside a
condition string too); stdout gets one line per file ("ok" or its counts).
env("NAME") reads the environment (an empty variable counts as unset), so
check with the variables the bot will have. A token written in a file is
never printed. Exit status: 0 when every file is valid (warnings allowed),
1 otherwise.`,
		Run: runPolicyCheck,
	})
	register(command{
		Name:    "policy fmt",
		Summary: "rewrite policy files in the canonical HCL layout",
		Usage: `[-w | -check] FILE...

Formats each file with HCL's canonical layout (hclwrite.Format: indentation,
aligned equals signs, spacing). Without flags the formatted files go to
stdout; -w rewrites the files that change; -check lists them and changes
nothing. A file that does not parse is reported with its location and left
alone. Exit status: 0, or 1 when a file does not parse or, with -check,
when a file is not formatted.`,
		Run: runPolicyFmt,
	})
}

// runPolicyCheck is `lifeline policy check FILE...`.
func runPolicyCheck(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "policy check")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(env, fs, "no policy file given")
	}
	opts := policy.Options{LookupEnv: func(name string) (string, bool) {
		v := env.Getenv(name)
		return v, v != ""
	}}
	code := 0
	for _, file := range fs.Args() {
		if !checkPolicyFile(env, file, opts) {
			code = 1
		}
	}
	return code
}

// checkPolicyFile checks one file, prints its diagnostics to env.Stderr and
// its result line to env.Stdout, and reports whether it is valid.
func checkPolicyFile(env *cliEnv, file string, opts policy.Options) bool {
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(env.Stderr, "lifeline policy check: %v\n", err)
		fmt.Fprintf(env.Stdout, "%s: unreadable\n", file)
		return false
	}
	_, diags := policy.Decode(file, src, opts)
	writeDiagnostics(env.Stderr, diags, map[string][]byte{file: src})
	errs, warns := len(diags.Errs()), len(diags)-len(diags.Errs())
	switch {
	case errs > 0:
		fmt.Fprintf(env.Stdout, "%s: %s, %s\n", file, plural(errs, "error"), plural(warns, "warning"))
	case warns > 0:
		fmt.Fprintf(env.Stdout, "%s: ok, %s\n", file, plural(warns, "warning"))
	default:
		fmt.Fprintf(env.Stdout, "%s: ok\n", file)
	}
	return errs == 0
}

// writeDiagnostics prints each diagnostic, in source order, as a
// compiler-style location line ("file:line:col: error: Summary") followed by
// core/policy's HCL-style excerpt: the source line, carets under the
// subject, and the detail. Source lines that set a token are redacted by
// policy.WriteDiagnostics.
func writeDiagnostics(w io.Writer, diags hcl.Diagnostics, sources map[string][]byte) {
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].Subject, sorted[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil // diagnostics without a place first
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		default:
			return a.Start.Column < b.Start.Column
		}
	})
	for _, d := range sorted {
		var block bytes.Buffer
		// Writing to a bytes.Buffer cannot fail.
		_ = policy.WriteDiagnostics(&block, hcl.Diagnostics{d}, sources, false)
		header := policy.DiagnosticLine(&hcl.Diagnostic{Severity: d.Severity, Summary: d.Summary, Subject: d.Subject})
		// The block opens with "Error: Summary" (or "Warning: ..."), which
		// the location line replaces.
		first, rest, _ := strings.Cut(block.String(), "\n")
		if strings.HasSuffix(first, ": "+d.Summary) && !strings.Contains(first, " line ") {
			block.Reset()
			block.WriteString(rest)
		}
		fmt.Fprintln(w, header)
		w.Write(block.Bytes())
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// runPolicyFmt is `lifeline policy fmt [-w | -check] FILE...`.
func runPolicyFmt(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "policy fmt")
	write := fs.Bool("w", false, "rewrite the files that are not formatted")
	check := fs.Bool("check", false, "list the files that are not formatted (exit 1 if any) and change nothing")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return usageError(env, fs, "no policy file given")
	case *write && *check:
		return usageError(env, fs, "-w and -check exclude each other")
	}
	code := 0
	for _, file := range fs.Args() {
		src, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(env.Stderr, "lifeline policy fmt: %v\n", err)
			code = 1
			continue
		}
		out, diags := formatPolicy(file, src)
		if diags.HasErrors() {
			writeDiagnostics(env.Stderr, diags, map[string][]byte{file: src})
			fmt.Fprintf(env.Stderr, "lifeline policy fmt: %s does not parse; left unchanged\n", file)
			code = 1
			continue
		}
		changed := !bytes.Equal(out, src)
		switch {
		case *check:
			if changed {
				fmt.Fprintln(env.Stdout, file)
				code = 1
			}
		case *write:
			if !changed {
				continue
			}
			if err := writeFileAtomic(file, out); err != nil {
				fmt.Fprintf(env.Stderr, "lifeline policy fmt: %v\n", err)
				code = 1
				continue
			}
			fmt.Fprintln(env.Stdout, file)
		default:
			env.Stdout.Write(out)
		}
	}
	return code
}

// formatPolicy returns src in canonical layout. It refuses (returning the
// syntax errors) source that does not parse, where hclwrite.Format's
// token-level rewrite could make things worse.
func formatPolicy(file string, src []byte) ([]byte, hcl.Diagnostics) {
	if _, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos); diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), nil
}

// writeFileAtomic replaces file with data through a temporary file in the
// same directory and a rename, keeping the file's permission bits, so a
// reader (the policy watcher) never sees a half-written policy.
func writeFileAtomic(file string, data []byte) error {
	info, err := os.Stat(file)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".fmt-*")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", file, err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("rewrite %s: %w", file, err)
	}
	return nil
}
