package flightlive_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

var recordIncidents = flag.String("record-incidents", "", "record the shipped incidents into this directory (real time, about 4 minutes); skipped when empty")

// incidentScript injects one incident's faults at offsets from the start of
// the recording; each step says when it runs and what it does.
type incidentStep struct {
	at   time.Duration
	mark string
	do   func(*discordtest.Server) error
}

var incidentScripts = map[string][]incidentStep{
	"rolling-outage": {
		{20 * time.Second, "fault", func(s *discordtest.Server) error {
			if err := s.Outage(discordtest.OutageRefuse, 40*time.Second); err != nil {
				return err
			}
			return s.DropConnections()
		}},
		{60 * time.Second, "fault cleared", nil},
	},
	"zombie-storm": {
		{20 * time.Second, "fault", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{45 * time.Second, "", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{70 * time.Second, "", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{85 * time.Second, "fault cleared", nil},
	},
	"rate-limit-storm": {
		{20 * time.Second, "fault", func(s *discordtest.Server) error {
			return s.RESTRateLimitStorm(false, 2*time.Second, 40*time.Second)
		}},
		{60 * time.Second, "fault cleared", nil},
	},
	"slow-recovery": {
		{20 * time.Second, "fault", func(s *discordtest.Server) error { return s.RESTErrors(0.5, 500, 30*time.Second) }},
		{50 * time.Second, "", func(s *discordtest.Server) error {
			if err := s.RESTErrors(0.1, 503, 60*time.Second); err != nil {
				return err
			}
			return s.RESTLatency(1500*time.Millisecond, 60*time.Second)
		}},
		{110 * time.Second, "fault cleared", nil},
	},
}

// TestRecordIncidents records the incidents shipped under
// testdata/incidents/: lifeline with policies/medium.hcl, one tick a second,
// against the fake Discord (Scale 10) with a bot sending a message every
// 250ms, while the script injects its faults. It is a generator, run by
// hand: go test ./internal/flightlive -run RecordIncidents -record-incidents ../../testdata/incidents
func TestRecordIncidents(t *testing.T) {
	if *recordIncidents == "" {
		t.Skip("generator: pass -record-incidents DIR")
	}
	p, err := policy.Load("../../policies/medium.hcl", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, script := range incidentScripts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recordIncident(t, p, filepath.Join(*recordIncidents, name+".jsonl"), script, 4*time.Minute)
		})
	}
}

func recordIncident(t *testing.T, p *policy.Policy, path string, script []incidentStep, length time.Duration) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 10, Guilds: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	old, _ := filepath.Glob(path + "*")
	for _, f := range old {
		os.Remove(f)
	}
	rec, err := flight.Open(flight.Settings{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(orchestrator.Config{
		Token:          srv.Token(),
		Policy:         p,
		RESTTransport:  srv.Transport(),
		GatewayDialer:  srv.Dialer(),
		IdentifyWindow: srv.IdentifyWindow(),
		OnTick: func(s metrics.Snapshot, d policy.Decision, l policy.Level) {
			if err := rec.Tick(s, d, l); err != nil {
				t.Errorf("record: %v", err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.AddEventListener(events.All, rec.Event)
	ctx, cancel := context.WithTimeout(context.Background(), length+time.Minute)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	load, stopLoad := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch := srv.Guilds()[0].ChannelID
		for load.Err() == nil {
			o.Session().ChannelMessageSend(ch, "ping") //nolint:errcheck // failures are what is recorded
			select {
			case <-load.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	for _, st := range script {
		time.Sleep(time.Until(start.Add(st.at)))
		if st.mark != "" {
			rec.Mark(st.mark)
		}
		if st.do != nil {
			if err := st.do(srv); err != nil {
				t.Errorf("%s at %s: %v", path, st.at, err)
			}
		}
	}
	time.Sleep(time.Until(start.Add(length)))
	stopLoad()
	<-done
	if err := o.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", path, rec.Stats())
}
