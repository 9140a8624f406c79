// Package lifeline keeps a Discord bot connected and useful when Discord,
// the network or the bot's own dependencies fail.
//
// A small core runs the connection loop over discordgo, a circuit breaker
// and a health monitor; HCL policy files decide when to degrade and when to
// recover. This root package is the bot author's front door; the parts live
// under core/. See README.md and docs/architecture.md.
package lifeline
