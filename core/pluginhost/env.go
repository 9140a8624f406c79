package pluginhost

import "strings"

// DefaultEnv names the host's environment variables a plugin process gets
// when Options.Env is nil: what a program needs to run (the search path,
// home and temporary directories, the user, locale and time zone, the
// system's certificate locations) and nothing else. A plugin does not inherit
// the host's environment: the bot token, the HTTP bearer token, database
// passwords or a token under a variable of the operator's choosing
// (`token = env("MY_BOT_TOKEN")`) stay in the host. A value a plugin needs
// is passed explicitly by the policy, `config = { dsn = env("DB_DSN") }`.
// A name ending in "*" matches every variable with that prefix.
var DefaultEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL",
	"TMPDIR", "TEMP", "TMP",
	"TZ", "LANG", "LANGUAGE", "LC_*",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT", // what Windows programs need
}

// allowEnv keeps the variables of env whose names allow lists.
func allowEnv(env, allow []string) []string {
	out := make([]string, 0, len(allow))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		for _, a := range allow {
			if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(k, p) || k == a {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}
