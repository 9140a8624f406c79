//go:build unix

package orchestrator_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// chromiumNames are the binaries tried, in order, when LIFELINE_CHROMIUM
// does not name one. .ci/run installs Debian's chromium.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"}

func findChromium() string {
	if p := os.Getenv("LIFELINE_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless chromium driven over the DevTools protocol: a
// WebSocket carrying JSON commands, spoken here with gorilla/websocket so
// the test needs no CDP library.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan struct{}
	ws      *websocket.Conn
	id      int
	session string
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser starts chromium headless with a fresh profile, listening for
// DevTools on a free loopback port.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := findChromium()
	if bin == "" {
		t.Skipf("no chromium binary found (tried LIFELINE_CHROMIUM and %s); install Debian's chromium (apt-get install chromium), as .ci/run does",
			strings.Join(chromiumNames, ", "))
	}
	b := &browser{t: t, exited: make(chan struct{})}
	b.cmd = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--disable-sync", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+t.TempDir(), "about:blank")
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so its helpers can be ended with it
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	urls := make(chan string, 1)
	var logTail strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			} else if logTail.Len() < 4096 {
				logTail.WriteString(sc.Text() + "\n")
			}
		}
		io.Copy(io.Discard, stderr)
		b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(b.close)
	var url string
	select {
	case url = <-urls:
	case <-b.exited:
		t.Fatalf("chromium exited before DevTools listened:\n%s", logTail.String())
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not say where DevTools listens within 60s")
	}
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	ws, _, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("DevTools at %s: %v", url, err)
	}
	b.ws = ws
	return b
}

// call sends a DevTools command (on the attached page's session when there
// is one and page is true) and returns its result, skipping the events
// that arrive meanwhile.
func (b *browser) call(page bool, method string, params any, result any) {
	b.t.Helper()
	b.id++
	msg := map[string]any{"id": b.id, "method": method, "params": params}
	if page {
		msg["sessionId"] = b.session
	}
	b.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := b.ws.WriteJSON(msg); err != nil {
		b.t.Fatalf("DevTools %s: %v", method, err)
	}
	for {
		b.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := b.ws.ReadJSON(&resp); err != nil {
			b.t.Fatalf("DevTools %s: %v", method, err)
		}
		if resp.ID != b.id {
			continue // an event, or an answer to nobody
		}
		if resp.Error != nil {
			b.t.Fatalf("DevTools %s: %s", method, resp.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(resp.Result, result); err != nil {
				b.t.Fatalf("DevTools %s result: %v", method, err)
			}
		}
		return
	}
}

// open loads url in a new page and attaches to it.
func (b *browser) open(url string) {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call(false, "Target.createTarget", map[string]any{"url": url}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call(false, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
}

// eval evaluates a JavaScript expression in the page and decodes its
// JSON-able value into v.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call(true, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		b.t.Fatalf("evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	if err := json.Unmarshal(res.Result.Value, v); err != nil {
		b.t.Fatalf("evaluate %q: %v (%s)", expr, err, res.Result.Value)
	}
}

func (b *browser) close() {
	if b.ws != nil {
		b.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = b.ws.WriteJSON(map[string]any{"id": b.id + 1, "method": "Browser.close"})
		b.ws.Close()
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
	// Helpers that outlived the browser (they share its process group).
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
}

// page is what the dashboard shows, read from its DOM.
type page struct {
	Feed        string   `json:"feed"`
	State       string   `json:"state"`
	StateText   string   `json:"stateText"`
	Verdict     string   `json:"verdict"`
	Samples     int      `json:"samples"`
	Events      int      `json:"events"`
	ScorePoints int      `json:"scorePoints"`
	ScoreLine   int      `json:"scoreLine"`
	LevelLast   string   `json:"levelLast"`
	LevelLine   string   `json:"levelLine"`
	LatencyLast string   `json:"latencyLast"`
	EventTypes  []string `json:"eventTypes"`
	Resources   []string `json:"resources"`
	Error       string   `json:"error"`
}

// readPage reads the page; while it is still loading it reports the
// exception instead.
const readPage = `(() => { try { return JSON.parse(JSON.stringify({
  feed: document.body.dataset.feed,
  state: document.body.dataset.state,
  stateText: document.getElementById("state").textContent,
  verdict: document.getElementById("verdict").textContent,
  samples: +document.body.dataset.samples,
  events: +document.body.dataset.events,
  scorePoints: +document.getElementById("plot-score").dataset.points,
  scoreLine: (document.querySelector("#plot-score polyline") || {getAttribute: () => ""}).getAttribute("points").split(" ").filter(Boolean).length,
  levelLast: document.getElementById("plot-level").dataset.last,
  levelLine: (document.querySelector("#plot-level polyline") || {getAttribute: () => ""}).getAttribute("points"),
  latencyLast: document.getElementById("plot-latency").dataset.last,
  eventTypes: Array.from(document.querySelectorAll("#event-rows td.ty")).map(td => td.textContent),
  resources: performance.getEntriesByType("resource").map(e => e.name).concat([location.href])
})); } catch (e) { return {error: String(e)}; } })()`

func (b *browser) waitPage(what string, cond func(page) bool) page {
	b.t.Helper()
	var p page
	for i := 0; i < 600; i++ {
		p = page{}
		b.eval(readPage, &p)
		if cond(p) {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("the dashboard never showed %s; last: %+v", what, p)
	return p
}

// TestDashboardInHeadlessChromium loads the dashboard in a real browser:
// it shows the current state, follows the live stream, and its plots
// update when the fake Discord injects an outage (the connection leaves
// READY, the degradation level plot rises to MINIMAL, the events list the
// lost connection). It only ever fetches from its own origin.
func TestDashboardInHeadlessChromium(t *testing.T) {
	b := startBrowser(t)
	s, web, _ := telemetrySystem(t, "1s", discordtest.Options{})
	s.start()
	defer s.stop()

	b.open(web.URL + "/")
	before := b.waitPage("READY with a live stream and plotted samples", func(p page) bool {
		return p.Feed == "stream" && p.State == "READY" && p.StateText == "READY" && p.Verdict == "pass" &&
			p.Samples >= 2 && p.ScorePoints == p.Samples && p.ScoreLine == p.Samples && p.LevelLast == "0" && p.Events > 0
	})

	if err := s.srv.Outage(discordtest.OutageRefuse, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	// Level 1 is drawn at y = 112 - 104/4 = 86.
	during := b.waitPage("the outage", func(p page) bool {
		return p.State != "READY" && p.StateText == p.State && p.LevelLast == "1" && strings.Contains(p.LevelLine, ",86.0") &&
			p.Samples > before.Samples && contains(p.EventTypes, "ERROR_OCCURRED")
	})
	s.waitRecovered("outage", "")
	after := b.waitPage("READY again", func(p page) bool {
		return p.State == "READY" && p.LevelLast == "0" && p.Samples > during.Samples
	})
	for _, r := range after.Resources {
		if !strings.HasPrefix(r, web.URL+"/") {
			t.Errorf("the dashboard fetched %s, outside its own origin %s", r, web.URL)
		}
	}
	t.Logf("samples plotted: %d before the outage, %d during, %d after; %d events listed", before.Samples, during.Samples, after.Samples, after.Events)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
