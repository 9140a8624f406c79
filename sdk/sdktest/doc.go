// Package sdktest runs a lifeline plugin in a plugin author's own tests,
// over the real wire protocol, with a fake host that records what the plugin
// asked of lifeline.
//
// Start serves a plugin's sdk.Plugins in the test's process (fast: no build,
// no subprocess); Build and Exec compile the plugin's main package and run it
// as lifeline would, as a subprocess over go-plugin with mutual TLS. Either
// way the returned Plugin calls the plugin's services (Check, Applies,
// Recover, Apply, Rollback) and its Host shows the recoveries, feature flags
// and log lines the plugin requested:
//
//	func TestCheck(t *testing.T) {
//		p := sdktest.Start(t, sdk.Plugins{HealthChecks: []sdk.HealthCheck{myCheck{}}}, sdktest.Options{})
//		res, err := p.Check(context.Background(), "mycheck", sdk.CheckRequest{})
//		...
//	}
package sdktest
