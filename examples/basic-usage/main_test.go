package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Without a token the example runs against the fake Discord: it connects,
// gets messages, answers them, and stops cleanly.
func TestRunsAgainstTheFakeWithoutAToken(t *testing.T) {
	var out syncBuffer
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
