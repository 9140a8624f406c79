# lifeline — run `make help` for the targets.

GO                 ?= go
STATICCHECK        := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOTESTFLAGS        ?=
BENCHTIME          ?= 1s

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets with a line on each.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## Compile every package; the lifeline binary and the built-in plugins into bin/.
	$(GO) build ./...
	@if [ -d cmd/lifeline ]; then $(GO) build -o bin/lifeline ./cmd/lifeline; fi
	@for p in plugins/*/; do n=$$(basename $$p); $(GO) build -o bin/lifeline-plugin-$$n ./$$p || exit 1; done

.PHONY: demo
demo: ## The whole system against the embedded fake Discord: a one-minute recovery story, no token.
	$(GO) run ./cmd/lifeline demo $(DEMOFLAGS)

.PHONY: incidents
incidents: ## Re-record testdata/incidents live with policies/medium.hcl (real time, about ten minutes) and check their assertions.
	$(GO) run ./internal/cmd/record-incidents -out testdata/incidents

.PHONY: vet
vet: ## go vet on every package.
	$(GO) vet ./...

.PHONY: lint
lint: ## staticcheck at a pinned version, and gofmt.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

.PHONY: test
test: vet lint generate-check fuzz bench-smoke test-32bit cross-build ## vet, staticcheck, the generated-code check, short fuzzing, each benchmark once, core/policy on 32-bit, the other platforms' builds, then every test with the race detector.
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./...

# CI runs on linux/amd64; every package must still build where bots run too:
# Windows and 32-bit ARM (a Raspberry Pi); macOS is a Unix like Linux here.
CROSS_PLATFORMS    := windows/amd64 linux/arm
.PHONY: cross-build
cross-build: ## Build every package for the other platforms (CROSS_PLATFORMS).
	@set -e; for p in $(CROSS_PLATFORMS); do echo "build $$p"; \
		GOOS=$${p%%/*} GOARCH=$${p##*/} $(GO) build ./...; done

# The native policy evaluator reads int fields by their size: core/policy's
# tests run again as a 386 binary, where int is 32 bits. A kernel that cannot
# run 32-bit programs gets a warning; a build failure fails.
.PHONY: test-32bit
test-32bit: ## core/policy's tests built for 386 (32-bit int).
	@GOARCH=386 $(GO) test -c -o /tmp/lifeline-policy-386.test ./core/policy
	@if /tmp/lifeline-policy-386.test -test.run '^$$' >/dev/null 2>&1; then \
		echo "core/policy on 386"; cd core/policy && /tmp/lifeline-policy-386.test -test.count=1; \
	else echo "WARNING: this kernel cannot run 386 programs; core/policy's 32-bit tests skipped" >&2; fi

# Each parser's fuzz target runs a fixed number of executions in `make test`
# (pkg:Target:count, about 5 s each on a 2-core machine). A count, not a
# duration: with a duration, Go 1.26's fuzz coordinator can fail a healthy
# run with a bare "context deadline exceeded" when its deadline fires while
# a worker is mid-input (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME=30s
# (any -fuzztime value) overrides every count for a longer local run.
# Minimizing a new input is capped (its default, 60s, looks like a hang).
FUZZTIME           ?=
FUZZ_TARGETS       := core/policy:FuzzDecode:3000 core/policy:FuzzCondition:15000 \
                      core/policy:FuzzCompiledMatchesVM:5000 discordtest:FuzzParseScenario:8000 \
                      core/config:FuzzLoadLayered:300 core/config:FuzzEnvSettings:5000 \
                      core/conn:FuzzStream:15000 core/conn:FuzzScanner:20000 \
                      core/pluginhost:FuzzDescribeResponse:3000 core/pluginhost:FuzzHostRequests:3000

.PHONY: fuzz
fuzz: ## A short run of every parser's fuzz target (a fixed execution count each; FUZZTIME=1m for a timed run).
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; budget=$${rest##*:}x; \
		if [ -n "$(FUZZTIME)" ]; then budget="$(FUZZTIME)"; fi; \
		echo "fuzz $$pkg $$fn ($$budget)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $$budget -fuzzminimizetime 2s ./$$pkg > /tmp/lifeline-fuzz.log 2>&1 \
			|| { cat /tmp/lifeline-fuzz.log; exit 1; }; \
	done

# make alerts-check runs promtool (pinned) on the Prometheus rules operators
# load (examples/prometheus/alerts.yml) and on their unit tests
# (alerts_test.yml: each rule firing and not). remove_all_sd leaves
# promtool's cloud service-discovery plugins out of the build; the first
# build still takes minutes (about 12 on a busy 2-core machine), then the
# binary in bin/ is reused. CI runs it after `make test`.
PROMTOOL_VERSION   := v0.316.0
PROMTOOL           := bin/promtool-$(PROMTOOL_VERSION)/promtool

$(PROMTOOL):
	GOBIN=$(CURDIR)/$(dir $(PROMTOOL)) $(GO) install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

.PHONY: promtool alerts-check
promtool: $(PROMTOOL) ## Build the pinned promtool into bin/.

alerts-check: $(PROMTOOL) ## promtool check rules + test rules on examples/prometheus/alerts.yml.
	$(PROMTOOL) check rules examples/prometheus/alerts.yml
	$(PROMTOOL) test rules examples/prometheus/alerts_test.yml

# make soak DURATION=30m runs the chaos soak of internal/chaos for that long
# (a new seed each time, printed), under the race detector at low priority,
# and writes its figures to SOAKREPORT (Markdown, and JSON beside it);
# docs/reliability.md says what it checks. SOAKSHARDS sets the shard count.
DURATION           ?= 30m
SOAKSHARDS         ?= 3
SOAKREPORT         ?= /tmp/lifeline-soak-report.md

.PHONY: soak
soak: ## The long chaos soak: DURATION (default 30m) of every fault with every invariant checked; figures in SOAKREPORT.
	nice $(GO) test -race -count=1 -timeout 0 -run '^TestSoak$$' -v ./internal/chaos \
		-chaos.duration=$(DURATION) -chaos.shards=$(SOAKSHARDS) -chaos.report=$(SOAKREPORT)

# make fleet-test runs the fleet's process tests at full size: 64 shards over
# three `lifeline run` processes (built with -race), one fake Discord and an
# embedded NATS server, every scenario of docs/fleet.md with the ledger's
# checks and the kill -9 timing; make test runs the same with 16 shards.
.PHONY: fleet-test
fleet-test: ## The fleet's process tests at full size (64 shards over 3 processes, race detector).
	$(GO) test -race -count=1 -run '^TestFleetProcesses$$' -v ./cmd/lifeline -fleet.long

# make bench runs the benchmarks of docs/benchmarks.md's table (BENCHCOUNT
# repetitions of BENCHTIME for the micro-benchmarks, fixed iteration counts
# for the slow ones), keeps the raw benchstat-compatible output in
# docs/benchmarks.txt and regenerates docs/benchmarks.md from it.
BENCHCOUNT         ?= 5
BENCH_MICRO        := 'ExecuteClosedSuccess|ExecuteOpenRejection|ExecuteParallel|EvaluateDefault|^BenchmarkObserve$$|ObserveRESTScaling'
BENCH_PKGS         := ./core/breaker ./core/policy ./core/metrics ./core/pluginhost ./core/conn ./discordtest ./bench

.PHONY: bench
bench: ## The benchmark table: raw output in docs/benchmarks.txt, then docs/benchmarks.md (under 10 minutes).
	@set -e; out=docs/benchmarks.txt.new; : > $$out; \
	step() { echo "bench: $$*"; $(GO) test -run '^$$' -benchmem "$$@" >> $$out 2>&1 || { tail -40 $$out; exit 1; }; }; \
	step -bench $(BENCH_MICRO) -count $(BENCHCOUNT) -benchtime $(BENCHTIME) ./core/breaker ./core/policy ./core/metrics; \
	echo "bench: failsafe-go (bench/failsafe, a module of its own)"; \
	$(GO) test -C bench/failsafe -run '^$$' -benchmem -bench . -count $(BENCHCOUNT) -benchtime $(BENCHTIME) . >> $$out 2>&1 || { tail -40 $$out; exit 1; }; \
	step -bench 'PluginCheck|TenPluginChecks|TenChecksOnePlugin' -count 3 -benchtime 2000x ./core/pluginhost; \
	step -bench 'BareGRPC|InProcessCheck' -count 3 -benchtime 2000x ./bench; \
	step -bench PolicyReload -count 1 -benchtime 40x ./bench; \
	step -bench 'ZombieDetection|DropToResumed' -count 1 -benchtime 10x ./bench; \
	step -bench OutageAllReady -count 1 -benchtime 12x ./bench; \
	echo "bench: -bench IdleShards: discordgo and lifeline at once, in two processes (each measures its own heap and CPU)"; \
	$(GO) test -c -o $$out.test ./bench; \
	idle() { $$out.test -test.run '^$$' -test.bench "IdleShards/$$1" -test.benchtime 1x -idle.shards 1000 -idle.heartbeat 41.25s > $$out.$$1 2>&1; }; \
	idle discordgo & dg=$$!; idle lifeline & ll=$$!; ok=1; wait $$dg || ok=0; wait $$ll || ok=0; \
	cat $$out.discordgo $$out.lifeline >> $$out; rm -f $$out.test $$out.discordgo $$out.lifeline; \
	[ $$ok = 1 ] || { tail -40 $$out; exit 1; }; \
	mv $$out docs/benchmarks.txt
	$(GO) run ./bench/internal/report -in docs/benchmarks.txt -out docs/benchmarks.md -notes bench/internal/report/notes.md

.PHONY: bench-smoke
bench-smoke: ## Every benchmark once (-benchtime 1x) so the harness cannot rot; asserts no timings.
	$(GO) test -run '^$$' -bench . -benchtime 1x $(BENCH_PKGS) > /tmp/lifeline-bench-smoke.log 2>&1 \
		|| { cat /tmp/lifeline-bench-smoke.log; exit 1; }
	$(GO) test -C bench/failsafe -run '^$$' -bench . -benchtime 1x . > /tmp/lifeline-bench-smoke.log 2>&1 \
		|| { cat /tmp/lifeline-bench-smoke.log; exit 1; }

# The plugin protocol's Go code comes from sdk/proto/*.proto through a small
# pure-Go generator in its own module (sdk/internal/protogen): no protoc, only
# Go and the module proxy.
PROTOGEN := $(GO) -C sdk/internal/protogen run . -dir "$(CURDIR)/sdk/proto"

.PHONY: generate
generate: ## Regenerate generated code (the plugin protocol, then go generate).
	GOWORK=off $(PROTOGEN)
	$(GO) generate ./...

.PHONY: generate-check
generate-check: ## Fail if the committed generated code is stale.
	GOWORK=off $(PROTOGEN) -check

.PHONY: fmt
fmt: ## gofmt every Go file in place.
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')
