package gaps

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// TestResumeGatewayURLIgnored: READY carries resume_gateway_url, the
// gateway Discord wants a RESUME on. discordgo v0.29.0 has no field for it
// in Ready (checked here by reflection) and its Open always dials the URL
// it cached from GET /gateway, so after a dropped connection it RESUMEs on
// the original gateway. The fake serves both and records which path each
// connection used: /gateway, not /resume. On Discord, a RESUME on the
// wrong gateway may be refused, and the session is then lost.
//
// lifeline: core/conn keeps READY's resume_gateway_url and RESUMEs there
// (TestConnResumeSendsSessionAndSeq and TestResumeURL in core/gateway;
// TestResumableFaultsResumeWithoutLoss/dropped_TCP in
// core/conn/integration_test.go for the whole recovery).
func TestResumeGatewayURLIgnored(t *testing.T) {
	t.Parallel()
	for _, f := range reflect.VisibleFields(reflect.TypeOf(discordgo.Ready{})) {
		if strings.HasPrefix(f.Tag.Get("json"), "resume_gateway_url") {
			t.Fatalf("discordgo.Ready.%s holds resume_gateway_url: check whether Open uses it now", f.Name)
		}
	}

	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatInterval: 1500 * time.Millisecond,
		HeartbeatTimeout: 10 * time.Second, SessionExpiry: 30 * time.Second})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	var told string
	for _, f := range frames(srv, 1, discordtest.Sent, discordtest.OpDispatch) {
		if f.Type != "READY" {
			continue
		}
		var ready struct {
			D struct {
				ResumeGatewayURL string `json:"resume_gateway_url"`
			} `json:"d"`
		}
		if err := json.Unmarshal(f.Payload, &ready); err != nil {
			t.Fatalf("READY in the ledger: %v", err)
		}
		told = ready.D.ResumeGatewayURL
	}
	if told != srv.ResumeURL() || told == srv.GatewayURL() {
		t.Fatalf("READY's resume_gateway_url %q: want the fake's resume URL %q, distinct from %q", told, srv.ResumeURL(), srv.GatewayURL())
	}

	afterHeartbeat(t, srv, 1)
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "RESUMED", 1, isResumed)
	sess := srv.Ledger().Sessions()[0]
	if len(sess.Resumes) != 1 {
		t.Fatalf("%d RESUMEs, want 1", len(sess.Resumes))
	}
	r := sess.Resumes[0]
	first, _ := srv.Ledger().Connection(1)
	c, _ := srv.Ledger().Connection(r.ConnID)
	t.Logf("READY said resume_gateway_url=%s; after the drop discordgo RESUMEd on connection %d at path %s?%s (first connection: %s)",
		told, c.ID, c.Path, c.Query, first.Path)
	if r.Path != "/gateway" || c.Path != first.Path {
		t.Fatalf("discordgo RESUMEd on %s (first connection %s): it follows resume_gateway_url now", r.Path, first.Path)
	}
	afterHeartbeat(t, srv, c.ID)
	_ = s.Close()
}
