// Package policies holds lifeline's shipped policy files: default.hcl (the
// built-in defaults written out with the reasons) and the presets by bot
// size, small.hcl, medium.hcl and large.hcl. They are embedded so that the
// binary and core/config can use them without the source tree.
package policies

import "embed"

// FS holds every *.hcl file of this directory, by base name
// ("small.hcl").
//
//go:embed *.hcl
var FS embed.FS
