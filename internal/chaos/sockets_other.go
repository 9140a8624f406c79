//go:build !linux

package chaos

// describeSocket is Linux-only; elsewhere a leak report names the
// descriptor alone.
func describeSocket(string) string { return "" }
