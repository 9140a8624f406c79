// Package guide_test checks that docs/plugins.md shows the code samples in
// this directory exactly as they are, and that its policies (and those of
// the built-in plugins' READMEs) decode and fit the plugins they name. The samples themselves are ordinary packages,
// built, vetted and tested with the rest of the repository, so the guide's
// code is known to compile and work.
package guide_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
)

const repoRoot = "../../.."

// goBlocks returns the ```go blocks of a markdown file.
func goBlocks(t *testing.T, path string) []string {
	return fencedBlocks(t, path, "go")
}

// fencedBlocks returns the ```lang blocks of a markdown file.
func fencedBlocks(t *testing.T, path, lang string) []string {
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
		case cur == nil && line == "```"+lang:
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
		t.Fatalf("%s: unterminated ```%s block", path, lang)
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

// The guide's policies are valid, and the samples serve what they name: each
// ```hcl block of docs/plugins.md decodes, and every plugin it declares is a
// sample of this directory that, built and started by lifeline's plugin
// host, accepts the block's uses and config (the host refuses a plugin that
// does not serve a named check, action or strategy, or whose config does not
// fit). The guide's sha256 pins are illustrations and are not checked.
func TestGuidePoliciesFitTheSamples(t *testing.T) {
	blocks := fencedBlocks(t, filepath.Join(repoRoot, "docs", "plugins.md"), "hcl")
	if len(blocks) == 0 {
		t.Fatal("docs/plugins.md has no policy")
	}
	bin := t.TempDir()
	built := map[string]bool{}
	seen := 0
	for i, b := range blocks {
		p, err := policy.LoadSource(fmt.Sprintf("docs/plugins.md hcl block %d", i+1), []byte(b), policy.Options{
			LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Errorf("hcl block %d: %v", i+1, err)
			continue
		}
		specs := pluginhost.SpecsFromPolicy(p)
		for j := range specs {
			name := specs[j].Name
			if specs[j].Path != "./bin/"+name {
				t.Errorf("hcl block %d: plugin %q has path %q, want ./bin/%s", i+1, name, specs[j].Path, name)
				continue
			}
			if !built[name] {
				out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "bin", name), "./"+name).CombinedOutput()
				if err != nil {
					t.Fatalf("hcl block %d: plugin %q is not a sample of examples/plugins/guide: %v\n%s", i+1, name, err, out)
				}
				built[name] = true
			}
			specs[j].SHA256 = ""
			seen++
		}
		h := pluginhost.New(pluginhost.Options{BaseDir: bin})
		err = h.Reconcile(context.Background(), specs)
		h.Stop()
		if err != nil {
			t.Errorf("hcl block %d: %v", i+1, err)
		}
	}
	if seen == 0 {
		t.Fatal("no policy of the guide declares a plugin")
	}
}

// The built-in plugins' READMEs: each one's example policy decodes, names
// its plugin as ./bin/NAME, and the plugin host starts the built binary
// with it (it refuses a plugin that does not serve what the policy uses or
// whose config does not fit its declared keys).
func TestBuiltinPluginReadmePoliciesFit(t *testing.T) {
	base := t.TempDir()
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./plugins/...")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./plugins/...: %v\n%s", err, out)
	}
	readmes, err := filepath.Glob(filepath.Join(repoRoot, "plugins", "*", "README.md"))
	if err != nil || len(readmes) == 0 {
		t.Fatalf("no plugin READMEs (%v)", err)
	}
	for _, readme := range readmes {
		name := filepath.Base(filepath.Dir(readme))
		blocks := fencedBlocks(t, readme, "hcl")
		if len(blocks) != 1 {
			t.Errorf("plugins/%s/README.md has %d hcl examples, want 1", name, len(blocks))
			continue
		}
		p, err := policy.LoadSource("plugins/"+name+"/README.md", []byte(blocks[0]), policy.Options{
			LookupEnv: func(string) (string, bool) { return "http://127.0.0.1:1/example", true }})
		if err != nil {
			t.Errorf("plugins/%s/README.md example: %v", name, err)
			continue
		}
		specs := pluginhost.SpecsFromPolicy(p)
		if len(specs) != 1 || specs[0].Name != name || specs[0].Path != "./bin/"+name ||
			len(specs[0].Checks)+len(specs[0].Actions)+len(specs[0].Strategies) == 0 {
			t.Errorf("plugins/%s/README.md example: want one plugin %q at ./bin/%s that the policy uses; got %+v", name, name, name, specs)
			continue
		}
		h := pluginhost.New(pluginhost.Options{BaseDir: base})
		err = h.Reconcile(context.Background(), specs)
		h.Stop()
		if err != nil {
			t.Errorf("plugins/%s/README.md example: %v", name, err)
		}
	}
}
