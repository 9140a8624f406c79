package config_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/config/internal/envdoc"
)

const docPath = "../../docs/configuration.md"

// TestDocsEnvTable fails when docs/configuration.md's table of variables
// is not what `go generate ./core/config` writes from the settings table.
func TestDocsEnvTable(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := envdoc.Splice(doc, envdoc.Table(config.Settings()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Errorf("%s is stale: run go generate ./core/config", docPath)
	}
	for _, s := range config.Settings() {
		if !strings.Contains(string(doc), "| `"+s.Env+"` |") {
			t.Errorf("%s is not documented", s.Env)
		}
	}
	if _, err := envdoc.Splice([]byte("no markers"), "x"); err == nil {
		t.Error("Splice without markers succeeded")
	}
}

// TestDocsExamplesLoad loads every HCL and JSON example of the doc.
func TestDocsExamplesLoad(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(hcl|json)\n(.*?)```").FindAllSubmatchIndex(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d examples", len(blocks))
	}
	for _, m := range blocks {
		lang, src := string(doc[m[2]:m[3]]), doc[m[4]:m[5]]
		line := 1 + bytes.Count(doc[:m[4]], []byte("\n"))
		name := fmt.Sprintf("configuration.md:%d.%s", line, lang)
		t.Run(name, func(t *testing.T) {
			if _, err := config.Load(config.WithEnv(nil), config.WithPreset("small"), config.WithPolicySource(name, src)); err != nil {
				t.Errorf("example at %s:%d does not load: %v", docPath, line, err)
			}
		})
	}
}
