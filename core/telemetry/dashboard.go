package telemetry

import (
	_ "embed"
	"net/http"
)

// dashboardPage is the live dashboard: one HTML page with its styles and
// scripts inline. It loads nothing from elsewhere: its data comes from
// debug/lifeline and the events stream of the server that served it, and
// its Content-Security-Policy forbids any other origin.
//
//go:embed dashboard.html
var dashboardPage []byte

// dashboardCSP lets the page run its inline script and style and talk to
// its own origin only.
const dashboardCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *Handler) dashboard(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(dashboardPage)
}
