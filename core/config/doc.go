// Package config is lifeline's configuration manager: it builds the
// effective configuration from layers, validates it as a whole, says where
// each value came from, and exports it.
//
// # Layers
//
// Load reads, in this order, each layer overriding the ones before:
//
//  1. built-in defaults (policy.Default, spelled out in policies/default.hcl);
//  2. a preset (WithPreset: small, medium or large, policies/NAME.hcl);
//  3. the policy file (WithPolicyFile: HCL, or JSON as Export writes it);
//  4. environment variables (one per scalar setting, see Settings);
//  5. Go options (Set, WithToken, WithIntents, ...).
//
// Attributes override one by one. Groups of blocks are replaced whole by
// the highest file layer that declares any of them: the health checks, the
// degradation ladder (thresholds shorthand, levels and recover condition,
// whose meanings depend on each other), the recovery rules and the
// plugins. Environment variables and options can still set the thresholds.
//
// The token comes from the environment variable the policy names (token =
// env("NAME"), DISCORD_TOKEN by default) or WithToken, never from a file;
// Token redacts itself in every printed form, and no diagnostic or export
// repeats it.
//
// # Validation
//
// The layers are checked together by core/policy, not by rules repeated
// here: Load assembles one policy text (the file's bytes unchanged, the
// preset's attributes and blocks copied in, environment and option values
// written in), decodes it once, and maps every diagnostic back to where
// the offending value came from: file:line:col (inside a condition string,
// the exact column), "preset NAME (policies/NAME.hcl:L:C)", "env VAR" or
// "option NAME". Every problem is reported at once, in an *Error. The
// compiled policy is relocated the same way, so Decision reasons name the
// file lines operators wrote.
//
// Malformed environment values are reported before that, naming the
// variable, the value (unless it is or looks like a token) and what was
// expected:
//
//	env DISCORD_MAX_RECONNECT_ATTEMPTS="ten": error: Invalid value: want a whole number from 0 to 1000000 (0 = no limit)
//
// # Recommendations
//
// Recommend picks a preset by guild count (under 100: small; up to 1,000:
// medium; above: large), sets the shard count (none below 2,500 guilds,
// where Discord requires sharding; above, ceil(guilds / 1000), Discord's
// guideline of about 1,000 guilds per shard), adjusts it for the
// environment, and returns a policy text with the reasons.
//
// The table of environment variables in docs/configuration.md is
// generated from Settings by `go generate ./core/config`
// (internal/envdoc); a test fails when it is stale.
//
//go:generate go run ./internal/envdoc/gen -doc ../../docs/configuration.md
package config
