package discordtest

import "errors"

var (
	// ErrInvalidOptions is returned by NewServer when an Options field holds
	// an impossible value (a negative duration or limit, a bad Scale).
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNotLoopback is returned by NewServer when Options.Addr is not a
	// loopback address and Options.AllowNonLoopback is false.
	ErrNotLoopback = errors.New("address is not loopback")
	// ErrClosed is returned by Server methods called after Close.
	ErrClosed = errors.New("server closed")
	// ErrInvalidFault is returned by Inject (and the scenario parser) when
	// a Fault is malformed: an unknown kind, a missing or stray parameter.
	ErrInvalidFault = errors.New("invalid fault")
	// ErrUnknownChannel is returned by EmitMessage for a channel ID that
	// belongs to none of the bot's guilds.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrInvalidScenario is returned (wrapped, with every diagnostic's file,
	// line and reason) when a scenario file does not parse or validate.
	ErrInvalidScenario = errors.New("invalid scenario")
)
