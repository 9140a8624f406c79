// Package sdk is what a lifeline plugin imports. A plugin is a separate
// program that lifeline starts and talks to over gRPC (hashicorp/go-plugin,
// with mutual TLS set up automatically); a crash, hang or bug in it cannot
// take the bot down. There are three kinds, each a small interface whose
// methods take a context first:
//
//   - HealthCheck: Check judges part of the bot's health (a database,
//     an API the bot needs) and returns a Result (passed, value, threshold,
//     unit, message) that counts in lifeline's health score and policy.
//   - RecoveryStrategy: Applies and Recover, given the connection failure
//     (ErrorInfo) and the metrics Snapshot; a strategy recovers by asking
//     the host to resume, reconnect or re-identify.
//   - DegradationAction: Apply and Rollback, given the degradation level
//     being entered or left.
//
// Each describes itself with Info: a name, a version, a description and the
// configuration keys it reads (the host checks the policy against them).
// One binary may serve any number of plugins of any kinds; its main function
// is a call to Serve:
//
//	func main() {
//		sdk.Serve(sdk.Plugins{
//			HealthChecks: []sdk.HealthCheck{sdk.NewHealthCheck(
//				sdk.Info{Name: "disk", Version: "1.0.0"},
//				func(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
//					return sdk.Result{Passed: true, Message: "plenty of room"}, nil
//				})},
//		})
//	}
//
// The policy names the binary in a plugin block and uses its plugins: a
// check block with plugin = "NAME" runs the health check named like the
// check block (or the binary's only health check), and a level's actions and
// a recovery rule's use name actions and strategies as "NAME.action".
// docs/plugins.md is the guide.
//
// # Calling back into the host
//
// Every request carries a Host: read the current Snapshot, request a
// resume, reconnect or re-identify, set or clear a feature flag, or log a
// line through the host's logger. All of them travel over one connection per
// plugin process, opened through go-plugin's broker when the host configures
// the process, not one per call. Logging to standard error (see Logger) also
// reaches the host's log.
//
// # Testing
//
// Package sdk/sdktest runs a plugin in the test's own process or builds and
// runs it as a subprocess, with a fake host that records what the plugin
// asked for.
//
// # Compatibility promise
//
// The wire protocol has a version, ProtocolVersion (1 today), negotiated with
// go-plugin's VersionedPlugins when the host starts a plugin.
//
//   - Within a protocol version, the protocol only grows: new fields and new
//     methods may be added, and both sides ignore what they do not know
//     (proto3 rules), but no field or method is removed, renumbered or given
//     a new meaning. A plugin built with any sdk speaking version N keeps
//     working with every lifeline that supports N, and the other way round.
//   - A change that cannot be made that way is a new protocol version.
//     lifeline keeps supporting the previous version for at least one minor
//     release after the new one ships, so plugins can be rebuilt at leisure.
//   - When the host and a plugin share no version, the host refuses the
//     plugin with an error naming both sides' versions; the rest of the bot
//     runs on.
//   - The Go API of this package follows the module's semantic version:
//     within a major version, existing identifiers keep their meaning and
//     signatures. The request structs (CheckRequest, RecoveryRequest,
//     ActionRequest) and Info may gain fields; construct them with field
//     names. The interfaces HealthCheck, RecoveryStrategy and
//     DegradationAction do not gain methods within a major version; new
//     capabilities come as optional interfaces.
//
// The sdk never imports lifeline's core, so a plugin's dependency graph
// holds only the sdk, go-plugin, gRPC and protobuf.
package sdk
