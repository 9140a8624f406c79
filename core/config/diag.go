package config

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// ErrInvalid is returned (inside an *Error) when the configuration has
// error diagnostics: a bad policy file, environment variable or option.
var ErrInvalid = errors.New("invalid configuration")

// ErrNoToken is returned by Config.RequireToken when neither the
// environment nor an option gave a token.
var ErrNoToken = errors.New("no bot token")

// Severity is how bad a diagnostic is.
type Severity uint8

// The severities.
const (
	// SeverityError makes Load fail.
	SeverityError Severity = iota + 1
	// SeverityWarning accompanies a valid configuration.
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// Diagnostic is one problem with the configuration, located at the place
// the offending value came from: a file position, an environment variable
// or an option.
type Diagnostic struct {
	// Severity is error or warning.
	Severity Severity
	// Source is where the offending value came from. For a file or preset
	// value, Source.Range is the exact place (for a condition, inside the
	// string).
	Source Source
	// Setting is the setting's key when the diagnostic is about one
	// ("connection.intents"); empty otherwise.
	Setting string
	// Value is the offending text of an environment variable or option,
	// safe to print (a value that is or looks like the token is
	// "[REDACTED]"); empty for file values.
	Value string
	// Summary is a short title, e.g. "Value out of range".
	Summary string
	// Detail says what is wrong and what is expected.
	Detail string

	// hcl is the diagnostic in file coordinates, for printing with the
	// source line (file values only).
	hcl *hcl.Diagnostic
}

// String formats the diagnostic on one line, compiler style:
//
//	bot.hcl:12:3: error: Value out of range: retries must be between 0 and 10; got 20.
//	env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value: want a whole number from 0 to 1000000 (0 = no limit)
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.where())
	fmt.Fprintf(&b, ": %s: %s", d.Severity, d.Summary)
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// where is the diagnostic's source, with the offending value of an
// environment variable or option: `env DISCORD_SHARDS="x"`.
func (d Diagnostic) where() string {
	w := d.Source.String()
	if d.Source.Kind == SourceEnv || (d.Source.Kind == SourceOption && d.Value != "") {
		w += fmt.Sprintf("=%q", d.Value)
	}
	return w
}

// Error implements error, so that a Diagnostic can be matched on its own
// in an *Error's Unwrap list.
func (d *Diagnostic) Error() string { return d.String() }

// Diagnostics is a list of diagnostics in the order found.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns the error diagnostics.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns the warning diagnostics.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Lines formats every diagnostic with String.
func (ds Diagnostics) Lines() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// Write prints the diagnostics for people: those located in a file the
// way core/policy prints them (the source line with a caret under the
// exact place, token lines redacted), the others on one line each.
// sources maps file names to their content; Error.Sources has them.
func (ds Diagnostics) Write(w io.Writer, sources map[string][]byte, color bool) error {
	for _, d := range ds {
		if d.hcl != nil {
			if err := policy.WriteDiagnostics(w, hcl.Diagnostics{d.hcl}, sources, color); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return err
		}
	}
	return nil
}

// Error is the error Load returns for an invalid configuration. It lists
// every problem found, not just the first, and matches ErrInvalid with
// errors.Is (and, when a file could not be read, the read error too).
type Error struct {
	// Diagnostics are all problems found, warnings included.
	Diagnostics Diagnostics
	// Sources maps the policy file's and presets' names to their content,
	// for Diagnostics.Write.
	Sources map[string][]byte

	cause error
}

// Error joins the error diagnostics, one per line.
func (e *Error) Error() string {
	lines := e.Diagnostics.Errors().Lines()
	if len(lines) == 1 {
		return "config: " + lines[0]
	}
	return fmt.Sprintf("config: %d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Unwrap returns ErrInvalid, the read error when there was one, and each
// error diagnostic (as *Diagnostic).
func (e *Error) Unwrap() []error {
	out := []error{ErrInvalid}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	for i := range e.Diagnostics {
		if e.Diagnostics[i].Severity == SeverityError {
			out = append(out, &e.Diagnostics[i])
		}
	}
	return out
}

// Write prints the diagnostics with Diagnostics.Write.
func (e *Error) Write(w io.Writer, color bool) error {
	return e.Diagnostics.Write(w, e.Sources, color)
}
