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
// safeLogText; values are quoted by the logger itself.
func safeKeyvals(keyvals []any) []any {
	out := make([]any, len(keyvals))
	for i, kv := range keyvals {
		if s, ok := kv.(string); ok && i%2 == 0 {
			kv = safeLogText(s)
		}
		out[i] = kv
	}
	return out
}
