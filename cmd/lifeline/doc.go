// Command lifeline is the lifeline CLI: it runs the fake Discord standalone
// (fake-discord), checks and formats policy files (policy check, policy fmt),
// and hosts the commands other parts of lifeline add.
//
// Every command lives in its own file and registers itself from init() with
// register(command{Name, Summary, Usage, Run}). The dispatcher picks the
// longest registered name that prefixes the arguments ("policy check" before
// "policy"), so commands may have several words. Each command parses its own
// flags with newFlagSet and parseFlags and returns its exit code: 0 on
// success, 1 on failure, 2 on a usage error. The context a command gets is
// cancelled on SIGINT or SIGTERM.
//
// See README.md in this directory for every command, its flags and an
// example session.
package main
