package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The coordination block: without it, no fleet; each mistake is one
// diagnostic at the attribute, saying what to write instead.
func TestCoordinationBlock(t *testing.T) {
	cases := []struct {
		name string
		src  string
		env  map[string]string
		want *Coordination // checked fields: Kind, URL, BucketPrefix, ProcessID, LeaseTTL, Interval, SaveInterval
		err  string        // substring of the only error, "" for none
		at   string        // "line:col" of that error
	}{
		{name: "no block", src: `connection {}`},
		{name: "defaults", src: `coordination "nats" { url = "nats://127.0.0.1:4222" }`,
			want: &Coordination{Kind: "nats", URL: "nats://127.0.0.1:4222", BucketPrefix: "lifeline", LeaseTTL: 10 * time.Second,
				SaveInterval: 5 * time.Second}},
		{name: "process id from the environment", env: map[string]string{"HOSTNAME": "bot-2"},
			src: `coordination "nats" {
  url        = "nats://127.0.0.1:4222"
  process_id = env("HOSTNAME")
  lease_ttl  = "2s"
  interval   = "200ms"
}`,
			want: &Coordination{Kind: "nats", URL: "nats://127.0.0.1:4222", BucketPrefix: "lifeline", ProcessID: "bot-2",
				LeaseTTL: 2 * time.Second, Interval: 200 * time.Millisecond, SaveInterval: 5 * time.Second}},
		{name: "empty process id is the default", src: `coordination "nats" {
  url        = "nats://127.0.0.1:4222"
  process_id = env("POD_NAME", "")
}`,
			want: &Coordination{Kind: "nats", URL: "nats://127.0.0.1:4222", BucketPrefix: "lifeline", LeaseTTL: 10 * time.Second,
				SaveInterval: 5 * time.Second}},
		{name: "missing url", src: `coordination "nats" {
  bucket_prefix = "bot"
}`, err: "Missing NATS URL", at: "1:1"},
		{name: "http url", src: `coordination "nats" {
  url = "http://127.0.0.1:4222"
}`, err: `the scheme must be nats, tls, ws or wss; got "http"`, at: "2:9"},
		{name: "no host", src: `coordination "nats" {
  url = "nats-1"
}`, err: "is not a server URL", at: "2:9"},
		{name: "lease too short", src: `coordination "nats" {
  url       = "nats://a:4222"
  lease_ttl = "10ms"
}`, err: "lease_ttl must be between 100ms and 10m0s", at: "3:15"},
		{name: "interval against the default lease", src: `coordination "nats" {
  url      = "nats://a:4222"
  interval = "6s"
}`, err: "interval (6s) must be at most half of lease_ttl (10s)", at: "3:14"},
		{name: "unset environment variable", src: `coordination "nats" {
  url        = "nats://a:4222"
  process_id = env("NO_SUCH_VARIABLE")
}`, err: "NO_SUCH_VARIABLE is not set", at: "3:16"},
		{name: "unknown kind", src: `coordination "etcd" {
  url = "nats://a:4222"
}`, err: `the only kind is "nats"`, at: "1:14"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			p, diags := Decode("p.hcl", []byte(tc.src), opts)
			if tc.err != "" {
				if !diags.HasErrors() || len(diags.Errs()) != 1 {
					t.Fatalf("diagnostics %v, want one error containing %q", diags, tc.err)
				}
				d := diags[0]
				at := ""
				if d.Subject != nil {
					at = fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
				}
				if !strings.Contains(d.Summary+": "+d.Detail, tc.err) || at != tc.at {
					t.Fatalf("error %q at %s, want %q at %s", d.Summary+": "+d.Detail, at, tc.err, tc.at)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected diagnostics: %v", diags)
			}
			if tc.want == nil {
				if p.Coordination != nil {
					t.Fatalf("Coordination = %+v, want nil (in-process)", p.Coordination)
				}
				return
			}
			c := p.Coordination
			if c == nil {
				t.Fatal("Coordination = nil")
			}
			w := tc.want
			if c.Kind != w.Kind || c.URL != w.URL || c.BucketPrefix != w.BucketPrefix || c.ProcessID != w.ProcessID ||
				c.LeaseTTL != w.LeaseTTL || c.Interval != w.Interval || c.SaveInterval != w.SaveInterval || c.Replicas != 1 {
				t.Fatalf("Coordination = %+v, want %+v", *c, *w)
			}
		})
	}
}

// Relocate (core/config's layered decode) keeps the coordination block,
// with its ranges moved.
func TestRelocateKeepsCoordination(t *testing.T) {
	src := []byte("coordination \"nats\" {\n  url = \"nats://a:4222\"\n  lease_ttl = \"3s\"\n}\n")
	p, diags := Decode("p.hcl", src, testOptions())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	q := p.Relocate("moved.hcl", func(r hcl.Range) hcl.Range { r.Filename = "moved.hcl"; r.Start.Line += 10; return r })
	c := q.Coordination
	if c == nil || c == p.Coordination || c.URL != "nats://a:4222" || c.LeaseTTL != 3*time.Second {
		t.Fatalf("relocated Coordination = %+v", c)
	}
	if r := c.Ranges.Of("lease_ttl"); r.Filename != "moved.hcl" || r.Start.Line != 13 {
		t.Fatalf("lease_ttl range %v, want moved.hcl line 13", r)
	}
}

// The fleet.* variables read Snapshot.Fleet: a level on the fleet's
// unhealthy share fires on the fleet's figures, not the process's.
func TestFleetVariables(t *testing.T) {
	src := []byte(`degradation {
  level "moderate" {
    when    = "fleet.unhealthy_ratio > 0.3 && fleet.processes >= 2 && fleet.available && fleet.worst_ack_age > 1000"
    actions = ["disable_analytics"]
  }
  recover {
    when = "fleet.unhealthy_ratio < 0.1"
  }
}`)
	p, diags := Decode("p.hcl", src, testOptions())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	cases := []struct {
		name  string
		fleet metrics.Fleet
		want  Level
	}{
		{"healthy fleet", metrics.Fleet{Coordinated: true, Available: true, Processes: 3, Shards: 64, Owned: 64, Ready: 64,
			WorstAckAge: 2 * time.Second}, None},
		{"a third of the fleet's shards down", metrics.Fleet{Coordinated: true, Available: true, Processes: 3, Shards: 64,
			Owned: 64, Ready: 40, Unhealthy: 24, UnhealthyRatio: 24.0 / 64, WorstAckAge: 2 * time.Second}, Moderate},
		{"coordinator unreachable", metrics.Fleet{Coordinated: true, Available: false, Processes: 3, Shards: 64,
			UnhealthyRatio: 0.5, WorstAckAge: 2 * time.Second}, None},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s metrics.Snapshot
			s.Fleet = tc.fleet
			s.Shards.Total = 21 // the process's own shards are all fine
			if d := p.Evaluate(&s); d.Level != tc.want {
				t.Fatalf("level %v, want %v (%s)", d.Level, tc.want, d.Reason)
			}
		})
	}
}
