// Package testutil holds small helpers that lifeline's tests in several
// packages share, so that each is written once.
//
// SyncBuffer is a bytes.Buffer that a child process's output copier, a
// logger's goroutine or a command under test can write to while the test
// reads it: every method holds one mutex, so a reader sees each Write
// whole or not at all. AcceptingListener is a loopback TCP port that
// accepts and closes every connection: a target for a TCP probe plugin.
//
// It is a package of its own (not a _test.go file) because Go shares no
// test code between packages; only tests import it.
package testutil
