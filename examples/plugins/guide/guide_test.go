// Package guide_test checks that docs/plugins.md shows the code samples in
// this directory exactly as they are. The samples themselves are ordinary
// packages, built, vetted and tested with the rest of the repository, so the
// guide's code is known to compile and work.
package guide_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const repoRoot = "../../.."

// goBlocks returns the ```go blocks of a markdown file.
func goBlocks(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "```go":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: unterminated ```go block", path)
	}
	return blocks
}

func TestGuideShowsTheSamplesUnchanged(t *testing.T) {
	blocks := goBlocks(t, filepath.Join(repoRoot, "docs", "plugins.md"))
	if len(blocks) == 0 {
		t.Fatal("docs/plugins.md has no Go code")
	}
	shown := map[string]bool{}
	for i, b := range blocks {
		header, body, _ := strings.Cut(b, "\n")
		path, ok := strings.CutPrefix(header, "// ")
		if !ok || !strings.HasPrefix(path, "examples/plugins/guide/") || !strings.HasSuffix(path, ".go") {
			t.Errorf("Go block %d must start with the path of its sample, \"// examples/plugins/guide/...go\"; it starts %q", i+1, header)
			continue
		}
		want, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Errorf("Go block %d shows %s: %v", i+1, path, err)
			continue
		}
		if body != string(want) {
			t.Errorf("Go block %d differs from %s: copy the file into docs/plugins.md again", i+1, path)
		}
		shown[path] = true
	}
	// Every sample is in the guide: none is tested but not shown.
	var missing []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || p == "guide_test.go" {
			return err
		}
		if full := "examples/plugins/guide/" + filepath.ToSlash(p); !shown[full] {
			missing = append(missing, full)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("samples not shown in docs/plugins.md: %v", missing)
	}
}
