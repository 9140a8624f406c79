package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Token is the bot token. Every way of printing it (fmt verbs, %#v,
// JSON, text marshalling) gives "[REDACTED]" or "" when empty; only
// Reveal returns the secret.
type Token struct {
	secret string
}

// redacted is what a set token prints as.
const redacted = "[REDACTED]"

// NewToken wraps a token string.
func NewToken(s string) Token { return Token{secret: s} }

// Reveal returns the token itself, for the one place that sends it to
// Discord.
func (t Token) Reveal() string { return t.secret }

// IsSet reports whether a token was given.
func (t Token) IsSet() bool { return t.secret != "" }

// String returns "[REDACTED]", or "" when no token is set.
func (t Token) String() string {
	if t.secret == "" {
		return ""
	}
	return redacted
}

// GoString redacts for %#v.
func (t Token) GoString() string { return fmt.Sprintf("config.Token(%q)", t.String()) }

// Format redacts for every fmt verb.
func (t Token) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(t.GoString()))
			return
		}
	case 'q':
		_, _ = fmt.Fprintf(f, "%q", t.String())
		return
	}
	_, _ = f.Write([]byte(t.String()))
}

// MarshalText redacts for JSON and other text encodings.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// tokenShape matches the form of a Discord bot token (base64 user id,
// timestamp, HMAC, separated by dots), so that a token pasted into the
// wrong variable is not echoed in an error either.
var tokenShape = regexp.MustCompile(`[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}`)

// maxEcho bounds how much of a bad value an error repeats.
const maxEcho = 64

// echo returns v as safe to repeat in a diagnostic: redacted when it is,
// contains or looks like the token, shortened when long.
func echo(v, token string) string {
	switch {
	case token != "" && strings.Contains(v, token):
		return redacted
	case tokenShape.MatchString(v):
		return redacted
	case len(v) > maxEcho:
		return v[:maxEcho] + "..."
	}
	return v
}

// redactText replaces the token and anything shaped like one in s.
func redactText(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, redacted)
	}
	return tokenShape.ReplaceAllString(s, redacted)
}

// redactSource blanks the token and anything shaped like one in a source
// file with asterisks of the same length, so that printed source lines
// keep their columns.
func redactSource(src []byte, token string) []byte {
	out := []byte(string(src))
	blank := func(i, j int) {
		for k := i; k < j; k++ {
			out[k] = '*'
		}
	}
	if token != "" {
		for from := 0; ; {
			i := strings.Index(string(out[from:]), token)
			if i < 0 {
				break
			}
			blank(from+i, from+i+len(token))
			from += i + len(token)
		}
	}
	for _, m := range tokenShape.FindAllIndex(out, -1) {
		blank(m[0], m[1])
	}
	return out
}

// redactDiagnostics removes the token from every text of ds.
func redactDiagnostics(ds Diagnostics, token string) {
	for i := range ds {
		d := &ds[i]
		d.Summary, d.Detail, d.Value = redactText(d.Summary, token), redactText(d.Detail, token), redactText(d.Value, token)
		if d.hcl != nil {
			c := *d.hcl
			c.Summary, c.Detail = redactText(c.Summary, token), redactText(c.Detail, token)
			d.hcl = &c
		}
	}
}
