package degrade

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/bwmarrin/discordgo"
)

// TestDiscordgoThroughTheTransport drives a real discordgo v0.29.0 Session
// whose Client uses the Transport, against the fake Discord: read-only
// mode refuses its writes with an error errors.Is recognises through
// discordgo and net/http, Essential lets one through, and the cache
// answers its reads.
func TestDiscordgoThroughTheTransport(t *testing.T) {
	srv := newFakeDiscord(t, nil)
	cnt := &counting{next: srv.Transport()}
	kit := NewKit(KitSettings{Transport: TransportSettings{Next: cnt}})
	eng, err := New(Settings{Actions: kit.Actions()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := discordgo.New("Bot " + srv.Token())
	if err != nil {
		t.Fatal(err)
	}
	s.Client = &http.Client{Transport: kit.Transport}
	s.LogLevel = -1
	ch := srv.Guilds()[0].ChannelID
	ctx := context.Background()

	m, err := s.ChannelMessageSend(ch, "hello")
	if err != nil {
		t.Fatalf("send before degrading: %v", err)
	}

	plan := Plan{{Level: Critical, Actions: []string{ActionEnableAggressiveCaching, ActionEnableReadOnlyMode}}}
	if res := eng.Apply(ctx, Target{Level: Critical, Plan: plan}); res.Err != nil || res.Level != Critical {
		t.Fatalf("apply: %+v", res)
	}
	_, err = s.ChannelMessageSend(ch, "refused")
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("send while read-only: %v, want ErrReadOnly", err)
	}
	if _, err := s.ChannelMessageEdit(ch, m.ID, "refused too"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("edit while read-only: %v, want ErrReadOnly", err)
	}
	if _, err := s.ChannelMessageSend(ch, "essential", discordgo.WithContext(Essential(ctx))); err != nil {
		t.Fatalf("essential send: %v", err)
	}
	for range 3 {
		got, err := s.ChannelMessage(ch, m.ID)
		if err != nil || got.Content != "hello" {
			t.Fatalf("read: %v %+v", err, got)
		}
	}
	gets := func() int {
		n := 0
		for _, r := range cnt.requests() {
			if r == "GET /channels/"+ch+"/messages/"+m.ID {
				n++
			}
		}
		return n
	}
	if gets() != 1 {
		t.Fatalf("%d reads reached Discord, want 1 (the rest from the cache)", gets())
	}

	if res := eng.Apply(ctx, Target{Level: None, Recover: true, Plan: plan}); res.Err != nil || res.Level != None {
		t.Fatalf("rollback: %+v", res)
	}
	if _, err := s.ChannelMessageSend(ch, "after"); err != nil {
		t.Fatalf("send after rollback: %v", err)
	}
	if _, err := s.ChannelMessage(ch, m.ID); err != nil || gets() != 2 {
		t.Fatalf("read after rollback: %v, %d reads reached Discord", err, gets())
	}
}
