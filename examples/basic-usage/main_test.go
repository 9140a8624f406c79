package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// Without a token the example runs against the fake Discord: it connects,
// gets messages, answers them, and stops cleanly.
func TestRunsAgainstTheFakeWithoutAToken(t *testing.T) {
	var out testutil.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := run(ctx, "", &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"built-in fake Discord", "-> READY", "message: !ping", "message: pong", "READY -> STOPPED"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
