package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The story with four shards in one process: they come up in identify
// order (the story says so, one line per shard), every incident hits them
// all and every one recovers, messages from every guild (so every shard)
// arrive, and no Discord limit is broken.
func TestStoryWithFourShards(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Out: &out, Duration: MinDuration, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	story := out.String()
	t.Logf("story:\n%s", story)
	if !res.OK() {
		t.Fatalf("story did not end well: %+v", res)
	}
	if res.Shards != 4 || res.ShardsReady != 4 {
		t.Fatalf("%d shards, %d READY at the end; want 4 and 4", res.Shards, res.ShardsReady)
	}
	last := -1
	for _, p := range []string{"1 of 4 shards READY", "2 of 4 shards READY", "3 of 4 shards READY", "4 of 4 shards READY"} {
		i := strings.Index(story, p)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order", p)
		}
		last = i
	}
	var names []string
	for _, in := range res.Incidents {
		names = append(names, in.Name)
	}
	if got := strings.Join(names, ","); !strings.HasPrefix(got, "zombie,latency-spike,ratelimit-storm,error-burst,outage") {
		t.Fatalf("incidents = %s", got)
	}
	// Each shard IDENTIFYs once at the start; the incidents are RESUMEd.
	if res.Identifies < 4 || res.Resumes < 4 {
		t.Fatalf("%d IDENTIFYs and %d RESUMEs; want at least one of each per shard", res.Identifies, res.Resumes)
	}
	if !strings.Contains(story, "shards           4 in one process, 4 READY at the end") {
		t.Fatal("the summary does not show the shards")
	}
}
