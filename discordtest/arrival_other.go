//go:build !linux

package discordtest

import "net"

// stampListener returns ln unchanged: kernel receive timestamps are used
// on Linux only, and elsewhere frames are timed when they are read.
func stampListener(ln net.Listener) net.Listener { return ln }
