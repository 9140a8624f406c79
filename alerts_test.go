package lifeline_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/discordtest"
	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// alertRulesFile is the Prometheus rule file operators load;
// docs/operations.md shows it and examples/prometheus/alerts_test.yml
// tests its expressions with promtool.
const alertRulesFile = "examples/prometheus/alerts.yml"

// alertRule is one alerting rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRuleFile is a Prometheus rule file.
type alertRuleFile struct {
	Groups []struct {
		Name  string      `yaml:"name"`
		Rules []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

// loadAlertRules parses the rule file strictly (an unknown key fails) and
// checks the shape of every rule: a unique name, an expression, a `for`,
// a severity and the two annotations.
func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	src, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var f alertRuleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	var rules []alertRule
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert == "":
				t.Errorf("%s: group %s: a rule without an alert name (recording rule %q?)", alertRulesFile, g.Name, r.Record)
				continue
			case seen[r.Alert]:
				t.Errorf("%s: alert %s defined twice", alertRulesFile, r.Alert)
			case strings.TrimSpace(r.Expr) == "":
				t.Errorf("%s: alert %s has no expr", alertRulesFile, r.Alert)
			}
			seen[r.Alert] = true
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: alert %s: for %q: %v (every rule says how long, 0m for at once)", alertRulesFile, r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: alert %s: severity %q, want critical or warning", alertRulesFile, r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: alert %s has no %s annotation", alertRulesFile, r.Alert, a)
				}
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no alerting rules", alertRulesFile)
	}
	return rules
}

// docs/operations.md's "Alerts to set" shows the rule file as it is: its
// one ```yaml block is the file, byte for byte.
func TestOperationsDocShowsTheAlertRuleFile(t *testing.T) {
	file, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdownSection(string(doc), "## Alerts to set")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Alerts to set" section`)
	}
	if !strings.Contains(section, alertRulesFile) {
		t.Errorf(`docs/operations.md "Alerts to set" does not name %s`, alertRulesFile)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 1 {
		t.Fatalf(`docs/operations.md "Alerts to set": %d yaml blocks, want 1 (the rule file)`, len(blocks))
	}
	if got := blocks[0][1]; got != string(file) {
		t.Errorf("docs/operations.md \"Alerts to set\" differs from %s at line %d: copy the file into the block\n"+
			"doc:  %q\nfile: %q", alertRulesFile, firstDifferentLine(got, string(file)), lineAt(got, firstDifferentLine(got, string(file))),
			lineAt(string(file), firstDifferentLine(got, string(file))))
	}
}

// markdownSection returns the text from the heading line to the next
// heading of the same or a higher level.
func markdownSection(doc, heading string) (string, bool) {
	start := strings.Index(doc, "\n"+heading+"\n")
	if start < 0 {
		return "", false
	}
	rest := doc[start+1:]
	level := strings.Index(heading, " ")
	fenced := false
	for i := len(heading); i < len(rest); {
		nl := strings.Index(rest[i:], "\n")
		if nl < 0 {
			break
		}
		i += nl + 1
		line := rest[i:]
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if n := len(line) - len(strings.TrimLeft(line, "#")); !fenced && n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:i], true
		}
	}
	return rest, true
}

// firstDifferentLine is the 1-based number of the first line where a and
// b differ.
func firstDifferentLine(a, b string) int {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(la), len(lb)) {
		if i >= len(la) || i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return 0
}

// lineAt is line n (1-based) of s, or "" past its end.
func lineAt(s string, n int) string {
	lines := strings.Split(s, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// promToken is one token of a PromQL expression.
type promToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number or duration, 'p' punctuation or operator
	text string
}

var promTokenRE = regexp.MustCompile(`^(?:` +
	`(?P<i>[a-zA-Z_:][a-zA-Z0-9_:]*)|` +
	`(?P<s>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`" + `)|` +
	`(?P<n>[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-z]*)|` +
	`(?P<p>==|!=|=~|!~|<=|>=|[-+*/%^<>=(){}\[\],:@]))`)

// promTokens splits a PromQL expression into tokens.
func promTokens(expr string) ([]promToken, error) {
	var out []promToken
	names := promTokenRE.SubexpNames()
	for s := strings.TrimSpace(expr); s != ""; s = strings.TrimSpace(s) {
		m := promTokenRE.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("cannot read %q", s[:min(len(s), 20)])
		}
		for i := 1; i < len(m); i++ {
			if m[i] != "" {
				out = append(out, promToken{names[i][0], m[i]})
				break
			}
		}
		s = s[len(m[0]):]
	}
	return out, nil
}

// promSelector is a vector selector of an expression: a metric name and
// its label matchers.
type promSelector struct {
	name     string
	matchers []promMatcher
}

// promMatcher is one label matcher of a selector.
type promMatcher struct{ label, op, value string }

// promRefs is what an expression refers to: its selectors and the labels
// it names in by, without, on, ignoring, group_left and group_right.
type promRefs struct {
	selectors []promSelector
	grouping  []string
}

// promKeywords are the identifiers of PromQL that are not metric names
// when no parenthesis follows.
var promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"atan2": true, "group_left": true, "group_right": true}

// promAggregators are PromQL's aggregation operators: a grouping clause
// may stand between one and its parenthesis.
var promAggregators = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "count": true,
	"group": true, "stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true,
	"count_values": true, "limitk": true, "limit_ratio": true}

// promGrouping are the keywords followed by a list of label names.
var promGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true}

// parsePromRefs finds the selectors and grouping labels of a PromQL
// expression. It reads the subset the rule file uses (selectors with a
// name, aggregations, functions, binary operators with vector matching,
// ranges, offsets) and fails on anything it does not understand rather
// than miss a reference.
func parsePromRefs(expr string) (promRefs, error) {
	toks, err := promTokens(expr)
	if err != nil {
		return promRefs{}, err
	}
	var refs promRefs
	next := func(i int) promToken {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return promToken{}
	}
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch {
		case tk.kind == 'i' && promGrouping[tk.text]:
			if next(i).text != "(" {
				if tk.text == "group_left" || tk.text == "group_right" {
					continue
				}
				return refs, fmt.Errorf("%s without a label list", tk.text)
			}
			i += 2
			for ; i < len(toks) && toks[i].text != ")"; i++ {
				switch {
				case toks[i].kind == 'i':
					refs.grouping = append(refs.grouping, toks[i].text)
				case toks[i].text != ",":
					return refs, fmt.Errorf("%s (...): unexpected %q", tk.text, toks[i].text)
				}
			}
		case tk.kind == 'i' && (next(i).text == "(" || promAggregators[tk.text]):
			// a function or an aggregation; its arguments follow
		case tk.kind == 'i' && promKeywords[tk.text]:
		case tk.kind == 'i':
			sel := promSelector{name: tk.text}
			if next(i).text == "{" {
				i += 2
				for ; i < len(toks) && toks[i].text != "}"; i++ {
					if toks[i].text == "," {
						continue
					}
					if i+2 >= len(toks) || toks[i].kind != 'i' || toks[i+2].kind != 's' {
						return refs, fmt.Errorf("selector %s: cannot read its matchers", sel.name)
					}
					value := toks[i+2].text
					sel.matchers = append(sel.matchers, promMatcher{toks[i].text, toks[i+1].text, value[1 : len(value)-1]})
					i += 2
				}
				if i >= len(toks) {
					return refs, fmt.Errorf("selector %s: no closing brace", sel.name)
				}
			}
			refs.selectors = append(refs.selectors, sel)
		case tk.text == "{":
			return refs, fmt.Errorf("a selector without a metric name")
		case tk.text == "[":
			for i < len(toks) && toks[i].text != "]" {
				i++
			}
		}
	}
	if len(refs.selectors) == 0 {
		return refs, fmt.Errorf("no metric in %q", expr)
	}
	return refs, nil
}

// The reader of expressions finds what the checks need, and refuses what
// it cannot read.
func TestParsePromRefs(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		selectors []string // name{label op value ...}
		grouping  []string
		err       bool
	}{
		{expr: `lifeline_shard_state{state="FAILED"} == 1`, selectors: []string{`lifeline_shard_state{state="FAILED"}`}},
		{expr: `max by (job, instance) (lifeline_shard_connected) == 0`,
			selectors: []string{"lifeline_shard_connected{}"}, grouping: []string{"job", "instance"}},
		{expr: `histogram_quantile(0.95, sum by (le) (rate(lifeline_x_bucket{a=~"b|c", d!="e"}[5m]))) > 1`,
			selectors: []string{`lifeline_x_bucket{a=~"b|c",d!="e"}`}, grouping: []string{"le"}},
		{expr: `a < on (job) group_left () clamp_min(2 * count by (i) (b), 100) unless c offset 15m`,
			selectors: []string{"a{}", "b{}", "c{}"}, grouping: []string{"job", "i"}},
		{expr: `{__name__="x"}`, err: true},
		{expr: `x{a}`, err: true},
		{expr: `sum by x (y)`, err: true},
		{expr: `x # y`, err: true},
		{expr: `sum without (a) (x)`, selectors: []string{"x{}"}, grouping: []string{"a"}},
		{expr: `1 > 0`, err: true},
	} {
		refs, err := parsePromRefs(tc.expr)
		if tc.err {
			if err == nil {
				t.Errorf("%s: read as %+v, want an error", tc.expr, refs)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		var sels []string
		for _, s := range refs.selectors {
			var ms []string
			for _, m := range s.matchers {
				ms = append(ms, fmt.Sprintf("%s%s%q", m.label, m.op, m.value))
			}
			sels = append(sels, s.name+"{"+strings.Join(ms, ",")+"}")
		}
		if !slices.Equal(sels, tc.selectors) || !slices.Equal(refs.grouping, tc.grouping) {
			t.Errorf("%s: selectors %v grouping %v, want %v %v", tc.expr, sels, refs.grouping, tc.selectors, tc.grouping)
		}
	}
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// servedLabels maps a family's label names to the values its series carry.
type servedLabels map[string]map[string]bool

// servedFamily is a family as /metrics serves it.
type servedFamily struct {
	typ    dto.MetricType
	labels servedLabels
}

// servedFamilies indexes gathered families by name with their labels and
// values. A histogram's _bucket, _sum and _count series are what PromQL
// selects: they are indexed too, _bucket with its le label.
func servedFamilies(fams []*dto.MetricFamily) map[string]servedFamily {
	out := map[string]servedFamily{}
	add := func(name string, typ dto.MetricType, m *dto.Metric, extra ...string) {
		f, ok := out[name]
		if !ok {
			f = servedFamily{typ: typ, labels: servedLabels{}}
			out[name] = f
		}
		pairs := extra
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName(), l.GetValue())
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if f.labels[pairs[i]] == nil {
				f.labels[pairs[i]] = map[string]bool{}
			}
			f.labels[pairs[i]][pairs[i+1]] = true
		}
	}
	for _, fam := range fams {
		for _, m := range fam.GetMetric() {
			add(fam.GetName(), fam.GetType(), m)
			if fam.GetType() == dto.MetricType_HISTOGRAM {
				add(fam.GetName()+"_sum", fam.GetType(), m)
				add(fam.GetName()+"_count", fam.GetType(), m)
				for _, b := range m.GetHistogram().GetBucket() {
					add(fam.GetName()+"_bucket", fam.GetType(), m, "le", fmt.Sprint(b.GetUpperBound()))
				}
			}
		}
	}
	return out
}

// literalAlternatives are the values a regex matcher of plain
// alternatives (A|B|C) stands for; ok is false for any other regex.
func literalAlternatives(re string) ([]string, bool) {
	alts := strings.Split(re, "|")
	for _, a := range alts {
		if !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(a) {
			return nil, false
		}
	}
	return alts, true
}

var templateLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

// checkRuleAgainstMetrics reports every metric, label and label value that
// a rule uses and the served families do not have.
func checkRuleAgainstMetrics(r alertRule, served map[string]servedFamily) []string {
	refs, err := parsePromRefs(r.Expr)
	if err != nil {
		return []string{fmt.Sprintf("%s: expr: %v", r.Alert, err)}
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, r.Alert+": "+fmt.Sprintf(format, args...))
	}
	var fams []servedFamily
	for _, sel := range refs.selectors {
		f, ok := served[sel.name]
		if !ok {
			bad("metric %s is not served", sel.name)
			continue
		}
		fams = append(fams, f)
		for _, m := range sel.matchers {
			values, ok := f.labels[m.label]
			if !ok {
				bad("%s has no label %q", sel.name, m.label)
				continue
			}
			switch m.op {
			case "=":
				if !values[m.value] {
					bad("%s{%s=%q}: no such value (served: %v)", sel.name, m.label, m.value, slices.Sorted(mapKeys(values)))
				}
			case "=~":
				alts, ok := literalAlternatives(m.value)
				if !ok {
					bad("%s{%s=~%q}: only plain alternatives (A|B) can be checked", sel.name, m.label, m.value)
				}
				for _, a := range alts {
					if !values[a] {
						bad("%s{%s=~%q}: %q is not a served value (served: %v)", sel.name, m.label, m.value, a, slices.Sorted(mapKeys(values)))
					}
				}
			}
		}
	}
	if len(fams) < len(refs.selectors) {
		return problems
	}
	onEvery := func(label string) bool {
		for _, f := range fams {
			if _, ok := f.labels[label]; !ok {
				return false
			}
		}
		return true
	}
	onSome := func(label string) bool {
		for _, f := range fams {
			if _, ok := f.labels[label]; ok {
				return true
			}
		}
		return false
	}
	for _, l := range refs.grouping {
		if !targetLabels[l] && !onEvery(l) {
			bad("groups by label %q, which not every metric of the expression has", l)
		}
	}
	for _, a := range slices.Sorted(mapKeys(r.Annotations)) {
		for _, m := range templateLabel.FindAllStringSubmatch(r.Annotations[a], -1) {
			if !targetLabels[m[1]] && !onSome(m[1]) {
				bad("annotation %s uses $labels.%s, which no metric of the expression has", a, m[1])
			}
		}
	}
	return problems
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The check finds a renamed metric, a renamed label, a label value that
// is not served and a template label that is not there.
func TestCheckRuleAgainstMetricsCatchesRenames(t *testing.T) {
	served := map[string]servedFamily{
		"lifeline_shard_state": {labels: servedLabels{"shard": {"0": true}, "state": {"READY": true, "FAILED": true}}},
		"lifeline_h_bucket":    {labels: servedLabels{"shard": {"0": true}, "le": {"1": true}}},
	}
	for _, expr := range []string{
		`max by (job, shard) (lifeline_shard_state{state=~"READY|FAILED"}) + on (shard) lifeline_h_bucket{le="1"}`,
		`histogram_quantile(0.95, sum by (le, instance) (rate(lifeline_h_bucket[5m])))`,
	} {
		ok := alertRule{Alert: "A", Expr: expr, Annotations: map[string]string{"summary": "{{ $labels.shard }} {{ $labels.instance }}"}}
		if p := checkRuleAgainstMetrics(ok, served); len(p) != 0 {
			t.Errorf("%s: a rule on served metrics: %v", expr, p)
		}
	}
	for _, tc := range []struct{ expr, annotation, want string }{
		{`lifeline_shard_states == 1`, "", "lifeline_shard_states is not served"},
		{`lifeline_shard_state{status="FAILED"}`, "", `has no label "status"`},
		{`lifeline_shard_state{state="FAILING"}`, "", "no such value"},
		{`lifeline_shard_state{state=~"FAILED|ENDED"}`, "", `"ENDED" is not a served value`},
		{`lifeline_shard_state{state=~"FAIL.*"}`, "", "only plain alternatives"},
		{`sum by (shard) (lifeline_h_bucket) / sum by (le) (lifeline_shard_state)`, "", `label "le"`},
		{`lifeline_shard_state`, "{{ $labels.plugin }}", "$labels.plugin"},
		{`lifeline_shard_state{`, "", "no closing brace"},
		{`lifeline_shard_state{state=}`, "", "cannot read its matchers"},
	} {
		r := alertRule{Alert: "B", Expr: tc.expr, Annotations: map[string]string{"description": tc.annotation}}
		p := checkRuleAgainstMetrics(r, served)
		if len(p) != 1 || !strings.Contains(p[0], tc.want) {
			t.Errorf("%s %s: problems %q, want one with %q", tc.expr, tc.annotation, p, tc.want)
		}
	}
}

// alertEventually polls cond every 10 ms for up to 20 s.
func alertEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// Every metric, label and label value the alert rules use is served by a
// running lifeline: three shards against the fake Discord, one of them
// ended for good by close code 4010 (FAILED), a REST 5xx, a REST call
// that got no answer, a Cloudflare ban, a policy reload that failed and a
// plugin exit, so the families that appear only once something happened
// are there too. A rename in core/telemetry (or in the rules) fails here.
func TestAlertRulesMatchTheRealMetrics(t *testing.T) {
	rules := loadAlertRules(t)
	const shards = 3
	fake, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2 * shards, RecommendedShards: shards, MaxConcurrency: shards})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	// A real plugin process (tcpprobe, probing a listener of the test's),
	// for the plugin families read from the plugin host.
	dir := t.TempDir()
	probe := filepath.Join(dir, "tcpprobe")
	if out, err := exec.Command("go", "build", "-o", probe, "./plugins/tcpprobe").CombinedOutput(); err != nil {
		t.Fatalf("go build ./plugins/tcpprobe: %v\n%s", err, out)
	}
	policyFile := filepath.Join(dir, "policy.hcl")
	pol := fmt.Sprintf(`health {
  interval = "30s"
  check "probe" {
    plugin = "tcpprobe"
    config = { address = %q }
  }
}
plugin "tcpprobe" {
  path = %q
}
`, testutil.AcceptingListener(t), probe)
	if err := os.WriteFile(policyFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	bot, err := lifeline.New(lifeline.Config{Token: fake.Token(), IdentifyWindow: fake.IdentifyWindow(), TickInterval: 20 * time.Millisecond},
		lifeline.WithShards(0), lifeline.WithPolicyFile(policyFile), lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := bot.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := bot.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	gather := func() map[string]servedFamily {
		t.Helper()
		fams, err := bot.Telemetry().Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		return servedFamilies(fams)
	}
	has := func(name, label, value string) func() bool {
		return func() bool { return gather()[name].labels[label][value] }
	}

	// Shard 1 ends for good: 4010 (invalid shard) is not retried.
	if err := fake.CloseConnections(4010, 1); err != nil {
		t.Fatal(err)
	}
	alertEventually(t, "shard 1 FAILED in lifeline_shard_state", func() bool {
		for _, s := range bot.ShardView().Shards {
			if s.ID == 1 {
				return s.State == "FAILED"
			}
		}
		return false
	})
	fams, err := bot.Telemetry().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := countFailed(fams); n != 1 {
		t.Errorf(`lifeline_shard_state{state="FAILED"} == 1 on %d shards, want 1 (shard 1)`, n)
	}

	// REST: a 500, a request that gets no answer, a Cloudflare ban.
	sess := bot.Session()
	if err := fake.RESTErrors(1, 500, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _ = sess.User("@me")
	fake.ClearFaults()
	alertEventually(t, `lifeline_rest_requests_total{class="5xx"}`, has("lifeline_rest_requests_total", "class", "5xx"))
	gone, stop := context.WithCancel(context.Background())
	stop()
	req, err := http.NewRequestWithContext(gone, http.MethodGet, fake.RESTURL()+"/users/@me", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := sess.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request with a cancelled context got an answer")
	}
	alertEventually(t, `lifeline_rest_requests_total{class="error"}`, has("lifeline_rest_requests_total", "class", "error"))
	if err := fake.CloudflareBan(time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _ = sess.User("@me")
	fake.ClearFaults()
	alertEventually(t, `lifeline_rest_rate_limited_total{scope="cloudflare"}`, has("lifeline_rest_rate_limited_total", "scope", "cloudflare"))

	// A policy edit that does not load.
	if err := os.WriteFile(policyFile, []byte("health {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bot.ReloadPolicy(); err == nil {
		t.Fatal("a broken policy file reloaded")
	}
	alertEventually(t, `lifeline_policy_reloads_total{result="failure"}`, has("lifeline_policy_reloads_total", "result", "failure"))

	// A plugin exit, as the plugin host publishes it on the bus.
	bot.Events().Publish(events.New(time.Now(), events.Plugin{Exited: true, Name: "alerts-probe", Reason: "exit status 1", Restart: true}))
	alertEventually(t, `lifeline_plugin_exits_total{plugin="alerts-probe"}`, has("lifeline_plugin_exits_total", "plugin", "alerts-probe"))

	alertEventually(t, `lifeline_plugin_state{plugin="tcpprobe"}`, has("lifeline_plugin_state", "plugin", "tcpprobe"))

	served := gather()
	for _, r := range rules {
		for _, p := range checkRuleAgainstMetrics(r, served) {
			t.Error(p)
		}
	}
	t.Logf("%d rules checked against %d served families", len(rules), len(served))
}

// countFailed counts the shards whose lifeline_shard_state{state="FAILED"}
// is 1.
func countFailed(fams []*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		if f.GetName() != "lifeline_shard_state" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == "FAILED" && m.GetGauge().GetValue() == 1 {
					n++
				}
			}
		}
	}
	return n
}
