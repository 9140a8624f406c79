package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

func init() {
	register(command{
		Name:    "plugin check",
		Summary: "start a plugin binary, shake hands, list what it serves and call each once",
		Usage: `[-config JSON] [-sha256 HEX] [-actions] [-timeout D] [-json] [-v] PATH [ARG...]

Starts the plugin at PATH exactly as lifeline does (go-plugin over gRPC with
mutual TLS, protocol version negotiation, the sha256 pin when given), prints
its protocol and sdk versions and every health check, recovery strategy and
degradation action it serves with its configuration keys, then runs one call
of each: Check on an empty snapshot, Applies for a sample close 4000 and, with
-actions, Apply at MINIMAL and Rollback (off by default: an action acts on
the world). The plugin's requests to the host are recorded, not carried out.
ARGs are passed to the plugin. Exit status: 0 when the plugin started and
answered every call, 1 otherwise.`,
		Run: runPluginCheck,
	})
}

// runPluginCheck is `lifeline plugin check PATH`.
func runPluginCheck(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "plugin check")
	cfgJSON := fs.String("config", "", "the plugin block's config, as a JSON object")
	sum := fs.String("sha256", "", "refuse the binary unless its SHA-256 is this")
	actions := fs.Bool("actions", false, "also Apply and Rollback every degradation action")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each call")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "show the plugin's log on stderr")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(env, fs, "no plugin binary given")
	}
	var cfg map[string]any
	if *cfgJSON != "" {
		if err := json.Unmarshal([]byte(*cfgJSON), &cfg); err != nil {
			return usageError(env, fs, "-config is not a JSON object: %v", err)
		}
	}
	level := hclog.Off
	if *verbose {
		level = hclog.Debug
	}
	rep, err := pluginhost.Inspect(ctx, fs.Arg(0), pluginhost.InspectOptions{
		Args: fs.Args()[1:], Config: cfg, SHA256: *sum, Actions: *actions, CallTimeout: *timeout,
		Logger: hclog.New(&hclog.LoggerOptions{Output: env.Stderr, Level: level}),
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "lifeline plugin check: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(env.Stderr, "lifeline plugin check: %v\n", err)
			return 1
		}
	} else {
		writePluginReport(env, rep)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func writePluginReport(env *cliEnv, rep *pluginhost.Report) {
	w := env.Stdout
	fmt.Fprintf(w, "plugin   %s\nsha256   %s\nprotocol %d (sdk %s)\n\n", rep.Path, rep.SHA256, rep.Protocol, rep.SDKVersion)
	for _, d := range rep.Plugins {
		fmt.Fprintf(w, "%-18s %s %s", d.Kind, d.Name, d.Version)
		if d.Description != "" {
			fmt.Fprintf(w, " — %s", d.Description)
		}
		fmt.Fprintln(w)
		for _, f := range d.Config {
			req := ""
			if f.Required {
				req = ", required"
			}
			fmt.Fprintf(w, "    config %s (%s%s)", f.Name, f.Type, req)
			if f.Description != "" {
				fmt.Fprintf(w, ": %s", f.Description)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	for _, c := range rep.Calls {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s %s (%v): %s\n", mark, c.Call, c.Name, c.Duration.Round(time.Microsecond), c.Result)
	}
	if len(rep.HostRequests) > 0 {
		fmt.Fprintf(w, "\nasked of the host: %s\n", strings.Join(rep.HostRequests, "; "))
	}
}
