package lifeline

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// Every ```hcl block in the repository's Markdown (README, docs, command,
// plugin and example READMEs) is a policy that decodes: documentation an
// operator copies must work.
func TestEveryHCLSnippetInTheDocsDecodes(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```hcl\n(.*?)```")
	opts := policy.Options{LookupEnv: func(string) (string, bool) { return "x", true }}
	n := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(src, -1) {
			n++
			line := 1 + strings.Count(string(src[:strings.Index(string(src), string(m[0]))]), "\n")
			if _, diags := policy.Decode(file, m[1], opts); diags.HasErrors() {
				t.Errorf("%s:%d: hcl block %d does not decode:\n%s", file, line, i+1, strings.Join(policy.DiagnosticLines(diags), "\n"))
			}
		}
	}
	if n == 0 {
		t.Fatal("found no hcl blocks: the search is broken")
	}
	t.Logf("%d hcl blocks decoded", n)
}
