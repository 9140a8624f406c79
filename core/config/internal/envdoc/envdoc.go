// Package envdoc renders core/config's table of settings as the
// environment variable table of docs/configuration.md, and splices it
// between the markers there. `go generate ./core/config` runs it; a test
// in core/config fails when the doc is stale.
package envdoc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/lifeline-bot/lifeline/core/config"
)

// Markers delimit the generated table in the doc.
const (
	Begin = "<!-- BEGIN GENERATED env table: go generate ./core/config; do not edit -->"
	End   = "<!-- END GENERATED env table -->"
)

// ErrNoMarkers is returned by Splice when the doc lacks the markers.
var ErrNoMarkers = errors.New("envdoc: markers not found")

// Table renders the settings as a Markdown table.
func Table(settings []config.Setting) string {
	var b strings.Builder
	b.WriteString("| Variable | Setting | Value | Default | What it does |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, s := range settings {
		def := s.Default()
		if def == "" {
			def = "(none)"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", s.Env, s.Key, escape(s.Want()), escape(def), escape(s.Doc))
	}
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Splice replaces what lies between the markers of doc with table.
func Splice(doc []byte, table string) ([]byte, error) {
	i := bytes.Index(doc, []byte(Begin))
	j := bytes.Index(doc, []byte(End))
	if i < 0 || j < i {
		return nil, fmt.Errorf("%w (%q ... %q)", ErrNoMarkers, Begin, End)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(Begin)])
	out.WriteString("\n")
	out.WriteString(table)
	out.Write(doc[j:])
	return out.Bytes(), nil
}
