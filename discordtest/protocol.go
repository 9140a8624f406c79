package discordtest

import "encoding/json"

// Gateway opcodes, as Discord numbers them.
const (
	OpDispatch            = 0
	OpHeartbeat           = 1
	OpIdentify            = 2
	OpPresenceUpdate      = 3
	OpVoiceStateUpdate    = 4
	OpResume              = 6
	OpReconnect           = 7
	OpRequestGuildMembers = 8
	OpInvalidSession      = 9
	OpHello               = 10
	OpHeartbeatACK        = 11
)

// Gateway close codes the fake sends, with Discord's meanings.
const (
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidShard         = 4010
	CloseShardingRequired     = 4011
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
	CloseDisallowedIntents    = 4014
)

// Intent bits the fake knows. Any other bit in IDENTIFY closes with 4013.
const (
	IntentGuilds                      int64 = 1 << 0
	IntentGuildMembers                int64 = 1 << 1 // privileged
	IntentGuildModeration             int64 = 1 << 2
	IntentGuildExpressions            int64 = 1 << 3
	IntentGuildIntegrations           int64 = 1 << 4
	IntentGuildWebhooks               int64 = 1 << 5
	IntentGuildInvites                int64 = 1 << 6
	IntentGuildVoiceStates            int64 = 1 << 7
	IntentGuildPresences              int64 = 1 << 8 // privileged
	IntentGuildMessages               int64 = 1 << 9
	IntentGuildMessageReactions       int64 = 1 << 10
	IntentGuildMessageTyping          int64 = 1 << 11
	IntentDirectMessages              int64 = 1 << 12
	IntentDirectMessageReactions      int64 = 1 << 13
	IntentDirectMessageTyping         int64 = 1 << 14
	IntentMessageContent              int64 = 1 << 15 // privileged
	IntentGuildScheduledEvents        int64 = 1 << 16
	IntentAutoModerationConfiguration int64 = 1 << 20
	IntentAutoModerationExecution     int64 = 1 << 21
	IntentGuildMessagePolls           int64 = 1 << 24
	IntentDirectMessagePolls          int64 = 1 << 25

	// IntentsPrivileged are the intents a bot must have enabled in its
	// application settings (Options.PrivilegedIntents here); 4014 otherwise.
	IntentsPrivileged = IntentGuildMembers | IntentGuildPresences | IntentMessageContent

	// IntentsKnown is every intent bit Discord defines.
	IntentsKnown = IntentGuilds | IntentGuildMembers | IntentGuildModeration |
		IntentGuildExpressions | IntentGuildIntegrations | IntentGuildWebhooks |
		IntentGuildInvites | IntentGuildVoiceStates | IntentGuildPresences |
		IntentGuildMessages | IntentGuildMessageReactions | IntentGuildMessageTyping |
		IntentDirectMessages | IntentDirectMessageReactions | IntentDirectMessageTyping |
		IntentMessageContent | IntentGuildScheduledEvents |
		IntentAutoModerationConfiguration | IntentAutoModerationExecution |
		IntentGuildMessagePolls | IntentDirectMessagePolls
)

// maxPayloadBytes is Discord's limit on one client frame; larger ones close
// the connection with 4002.
const maxPayloadBytes = 4096

// payload is the envelope of every gateway frame.
type payload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

// outPayload is what the fake writes; S and T are null except on
// dispatches, as on Discord.
type outPayload struct {
	Op int     `json:"op"`
	D  any     `json:"d"`
	S  *int64  `json:"s"`
	T  *string `json:"t"`
}

type identifyData struct {
	Token      string          `json:"token"`
	Intents    *int64          `json:"intents"`
	Shard      *[2]int         `json:"shard"`
	Compress   bool            `json:"compress"`
	Properties json.RawMessage `json:"properties"`
}

type resumeData struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       *int64 `json:"seq"`
}

type helloData struct {
	HeartbeatInterval int64 `json:"heartbeat_interval"`
}

// User is the bot's user object as /users/@me and READY return it.
type User struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Discriminator string `json:"discriminator"`
	GlobalName    string `json:"global_name,omitempty"`
	Bot           bool   `json:"bot"`
	Avatar        string `json:"avatar,omitempty"`
}

// Message is a channel message as the REST endpoints and MESSAGE_CREATE
// carry it.
type Message struct {
	ID              string  `json:"id"`
	ChannelID       string  `json:"channel_id"`
	GuildID         string  `json:"guild_id,omitempty"`
	Author          User    `json:"author"`
	Content         string  `json:"content"`
	Timestamp       string  `json:"timestamp"`
	EditedTimestamp *string `json:"edited_timestamp"`
	Type            int     `json:"type"`
}
