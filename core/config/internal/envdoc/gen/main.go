// Command gen rewrites the environment variable table of
// docs/configuration.md from core/config's settings table:
//
//	go run ./internal/envdoc/gen -doc ../../docs/configuration.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/config/internal/envdoc"
)

func main() {
	path := flag.String("doc", "docs/configuration.md", "the Markdown file to update")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "envdoc:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := envdoc.Splice(doc, envdoc.Table(config.Settings()))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}
