// Package policy decodes lifeline's HCL policy files into typed structs,
// compiles their expr conditions once, evaluates them against metrics
// Snapshots, and hot-reloads the file while the bot runs.
//
// See docs/policy.md for the language reference.
package policy
