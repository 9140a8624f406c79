package fleetdemo

import (
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// The ledger checks catch what they look for: two sessions identified as
// the same shard at once are an overlap, and the tally counts their
// IDENTIFYs.
func TestChecksSeeTwoConnectionsOfOneShard(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 50, RecommendedShards: 2, Guilds: 4,
		IdentifyWindow: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	open := func() *discordgo.Session {
		t.Helper()
		s, err := discordgo.New("Bot " + srv.Token())
		if err != nil {
			t.Fatal(err)
		}
		s.Client, s.Dialer = srv.Client(), srv.Dialer()
		s.ShardID, s.ShardCount = 0, 2
		s.Identify.Compress = false
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	mark := MarkNow(srv)
	a := open()
	defer a.Close()
	if o := Overlaps(srv); len(o) != 0 {
		t.Fatalf("one connection reported as overlapping: %v", o)
	}
	b := open()
	defer b.Close()
	o := Overlaps(srv)
	if len(o) != 1 || o[0].Shard != 0 {
		t.Fatalf("Overlaps = %v, want shard 0 once", o)
	}
	if n := OpenConnections(srv)[0]; n != 2 {
		t.Fatalf("OpenConnections[0] = %d, want 2", n)
	}
	if tally := Since(srv, mark); tally.Identifies != 2 || tally.Resumes != 0 || len(tally.Violations) != 0 {
		t.Fatalf("tally = %+v, want 2 IDENTIFYs", tally)
	}
}

func TestShardRange(t *testing.T) {
	cases := map[string]struct {
		in   []int
		want string
	}{
		"one":   {[]int{3}, "3"},
		"runs":  {[]int{0, 1, 2, 5, 7, 8}, "0-2 5 7-8"},
		"empty": {nil, ""},
	}
	for name, tc := range cases {
		if got := shardRange(tc.in); got != tc.want {
			t.Errorf("%s: shardRange(%v) = %q, want %q", name, tc.in, got, tc.want)
		}
	}
}

func TestResultOK(t *testing.T) {
	good := Result{Processes: 3, Shards: 12, StartIdentifies: 12, Killed: "p2", Moved: []int{4, 5, 6, 7}, KillResumes: 4}
	if !good.OK() {
		t.Fatal("a clean story is not OK")
	}
	for name, mutate := range map[string]func(*Result){
		"an IDENTIFY after the kill": func(r *Result) { r.KillIdentifies = 1 },
		"a missing RESUME":           func(r *Result) { r.KillResumes = 3 },
		"a second IDENTIFY at start": func(r *Result) { r.StartIdentifies = 13 },
		"a violation":                func(r *Result) { r.Violations = 1 },
		"a shard run twice":          func(r *Result) { r.Overlaps = 1 },
		"a lost dispatch":            func(r *Result) { r.Lost = 1 },
		"a process exit error":       func(r *Result) { r.ExitErrors = []string{"p1: exit status 66"} },
		"nothing moved":              func(r *Result) { r.Moved, r.KillResumes = nil, 0 },
	} {
		r := good
		r.Moved = append([]int(nil), good.Moved...)
		mutate(&r)
		if r.OK() {
			t.Errorf("%s: the story is still OK", name)
		}
	}
}
