// Package policy decodes lifeline's HCL policy files into typed structs,
// compiles their expr conditions once, evaluates them against metrics
// Snapshots, and hot-reloads the file while the bot runs. docs/policy.md
// is the language reference operators read; this comment is the map for
// Go readers.
//
// # Decoding
//
// Decode (and Load, LoadSource) parse a file with hclsyntax and decode
// every block explicitly against a schema, so each attribute keeps its
// hcl.Range: a Policy's blocks carry Ranges saying which attributes the
// file set and where. Attributes the file leaves out hold their defaults
// (Default() is the empty file). Validation collects every problem of the
// file (unknown blocks and attributes, types, ranges, durations, intents,
// actions, strategies, undeclared plugins, level order, conditions) into
// one hcl.Diagnostics instead of stopping at the first. Warnings
// (privileged intents, unused plugins) accompany a valid Policy.
//
// The bot token is never read into a Policy: `token = env("NAME")` records
// NAME (Connection.TokenEnv); a literal token is an error whose diagnostic
// shows no source, and WriteDiagnostics redacts any `token = "..."` line
// it prints.
//
// # Conditions
//
// A condition is an expr expression compiled with expr.AsBool against Env,
// a typed, unit-converted copy of a metrics.Snapshot: durations are float64
// milliseconds, counters ints, rates fractions, the health score 0-100.
// Recovery rules also see `error` (ErrorInfo); other conditions may not.
// Only the functions in Functions can be called; duration("1s") is folded
// to 1000 at compile time; a condition has at most
// DefaultMaxConditionNodes nodes.
//
// A compile error inside a condition is mapped back onto the file: expr's
// rune offset is walked through the HCL string's source (escapes such as
// \" and \u00e9, $${, heredoc indentation, ${...} interpolations and
// local.NAME references) to the exact line and column, and reported as an
// hcl.Diagnostic whose Subject is that place.
//
// # Evaluation
//
// The checked expr AST is compiled a second time (native.go) into a tree
// of typed nodes that read the metrics.Snapshot directly, each variable
// through its source (source.go: the Snapshot field and the conversion
// Env's fill applies). "variable op constant" becomes a range test on the
// raw field, the interval found once by binary search (the conversions
// never decrease, so the values that pass form one interval); a condition
// that is an && or || of such tests, as every condition of the default
// policy is, runs as one branch-free loop straight from the Policy, with
// no Evaluator; and when each level's condition implies the one below
// (each raises the thresholds of the last), levels are tried from the
// least severe up, so a healthy snapshot costs one of them. Conditions outside the subset run on expr's VM over an
// Env filled once per evaluation with only the sections they read.
// Differential tests (every shipped policy, random and boundary
// snapshots) and FuzzCompiledMatchesVM check the native answer is the
// VM's. Evaluate is safe for concurrent use and does not allocate, nor
// make a caller's Snapshot escape:
//
//	Decision.Level   = the most severe level whose `when` holds (None if none)
//	Decision.Actions = the actions of every declared level up to Level, in order
//	Decision.Recover = the `recover` condition (true when degradation is disabled)
//	Decision.Reason  = `level "moderate" (policy.hcl:14): <condition>`
//
// ChooseRecovery returns the recovery rules whose condition holds for an
// error, ordered by Priority (lower first, ties in file order).
//
// # Shorthand
//
// The seed's `thresholds { latency, error_rate, consecutive_errors }` and
// `recovery_threshold` generate, for multiplier m = 1, 2, 4, 8 (minimal to
// critical):
//
//	latency.heartbeat > m*latency || errors.rate > m*error_rate || errors.consecutive >= m*consecutive_errors
//
// and the recover condition, with r = recovery_threshold:
//
//	latency.heartbeat < r*latency && errors.rate < r*error_rate && errors.consecutive < r*consecutive_errors
//
// # Reload
//
// A Watcher loads a file as generation 1, then watches its directory with
// fsnotify, waits for Debounce of quiet on the injected clock, reloads,
// and swaps an atomic pointer to the new Generation (number, SHA-256,
// path, load time, policy). Identical content is not a new generation; an
// unreadable or invalid file keeps the active generation and publishes
// POLICY_RELOAD_FAILED with one-line diagnostics; a new generation
// publishes POLICY_RELOADED and runs the OnReload callbacks. Reload does
// the same synchronously (SIGHUP, HTTP).
package policy
