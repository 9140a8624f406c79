package pluginhost

import (
	"strconv"
	"strings"
	"unicode"
)

// safeLogText escapes the control characters of text a plugin asks the
// host to log (a message or a field name), so that a plugin cannot forge
// lines of the host's log ("...\n2026-11-27T00:00:00Z [ERROR] lifeline: ...")
// or send terminal escape sequences. Text without control characters is
// returned as it is.
func safeLogText(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// safeKeyvals returns keyvals with every key (even index) passed through
// safeLogText; values are quoted by the logger itself. When no key needs
// escaping, keyvals itself is returned: nothing is allocated.
func safeKeyvals(keyvals []any) []any {
	first := -1
	for i := 0; i < len(keyvals); i += 2 {
		if s, ok := keyvals[i].(string); ok && strings.IndexFunc(s, unicode.IsControl) >= 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return keyvals
	}
	out := append([]any(nil), keyvals...)
	for i := first; i < len(out); i += 2 {
		if s, ok := out[i].(string); ok {
			out[i] = safeLogText(s)
		}
	}
	return out
}
