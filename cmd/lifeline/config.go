package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/lifeline-bot/lifeline/core/config"
)

func init() {
	register(command{
		Name:    "config export",
		Summary: "print the effective configuration (preset, policy file, environment) with the token redacted",
		Usage: `[--preset NAME] [--policy FILE] [--format hcl|json]

Builds the configuration the way lifeline does (built-in defaults, then the
preset, then the policy file, then environment variables such as
DISCORD_MAX_RECONNECT_ATTEMPTS) and prints every value to stdout. HCL output
names each value's source in a comment; JSON output has the same values.
Either output loads back as a policy file (--policy, .json for JSON) to the
same configuration. The token is written as the variable it is read from,
never its value. Problems are printed to stderr, each at the file line,
variable or flag its value came from, all at once. Exit status: 0, 1 when the
configuration is invalid.`,
		Run: runConfigExport,
	})
	register(command{
		Name:    "config presets",
		Summary: "list the presets by bot size, or print one",
		Usage: `[NAME]

Without NAME, lists the presets (small, medium, large) with whom each is for.
With NAME, prints that preset's policy file, comments included.`,
		Run: runConfigPresets,
	})
	register(command{
		Name:    "config recommend",
		Summary: "print a policy recommended for an environment and guild count, with the reasons",
		Usage: `--guilds N [--env development|staging|production]

Picks the preset for the bot's size, the shard count Discord's limits call for
(sharding from 2,500 guilds, about 1,000 guilds per shard) and settings suited
to the environment, and prints the policy with the reasons as comments.`,
		Run: runConfigRecommend,
	})
}

// configEnvLookup reads the environment through env.Getenv; an empty
// variable counts as unset.
func configEnvLookup(env *cliEnv) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v := env.Getenv(name)
		return v, v != ""
	}
}

// runConfigExport is `lifeline config export`.
func runConfigExport(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "config export")
	preset := fs.String("preset", "", "start from this preset: small, medium or large")
	file := fs.String("policy", "", "the policy file (HCL, or JSON when the name ends in .json)")
	format := fs.String("format", "hcl", "output format: hcl or json")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	f, err := config.ParseFormat(*format)
	if err != nil {
		return usageError(env, fs, "--format must be hcl or json, not %q", *format)
	}
	opts := []config.Option{config.WithEnv(configEnvLookup(env))}
	if *preset != "" {
		if _, err := config.LookupPreset(*preset); err != nil {
			return usageError(env, fs, "--preset: %v", strings.TrimPrefix(err.Error(), "config: "))
		}
		opts = append(opts, config.WithPreset(*preset))
	}
	if *file != "" {
		opts = append(opts, config.WithPolicyFile(*file))
	}
	cfg, err := config.Load(opts...)
	if err != nil {
		return printConfigError(env, err)
	}
	_ = cfg.Warnings.Write(env.Stderr, nil, false)
	out, err := config.Export(cfg, f)
	if err != nil {
		fmt.Fprintln(env.Stderr, "lifeline config export:", err)
		return 1
	}
	if _, err := env.Stdout.Write(out); err != nil {
		fmt.Fprintln(env.Stderr, "lifeline config export:", err)
		return 1
	}
	return 0
}

// printConfigError prints a Load error with every diagnostic, file ones
// with their source line and a caret.
func printConfigError(env *cliEnv, err error) int {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		_ = cerr.Write(env.Stderr, false)
		n := len(cerr.Diagnostics.Errors())
		fmt.Fprintf(env.Stderr, "lifeline: the configuration is invalid (%d problem%s)\n", n, map[bool]string{true: "", false: "s"}[n == 1])
		return 1
	}
	fmt.Fprintln(env.Stderr, "lifeline:", err)
	return 1
}

// runConfigPresets is `lifeline config presets [NAME]`.
func runConfigPresets(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "config presets")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch fs.NArg() {
	case 0:
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
		for _, p := range config.Presets() {
			fmt.Fprintf(tw, "%s\t%s\n", p.Name, p.Summary)
		}
		tw.Flush()
		fmt.Fprintln(env.Stdout, "\nUse one with 'lifeline config export --preset NAME'; print it with 'lifeline config presets NAME'.")
		return 0
	case 1:
		p, err := config.LookupPreset(fs.Arg(0))
		if err != nil {
			return usageError(env, fs, "%v", strings.TrimPrefix(err.Error(), "config: "))
		}
		_, _ = env.Stdout.Write(p.Source)
		return 0
	}
	return usageError(env, fs, "at most one preset name")
}

// runConfigRecommend is `lifeline config recommend`.
func runConfigRecommend(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "config recommend")
	envName := fs.String("env", "production", "where the bot runs: development, staging or production")
	guilds := fs.String("guilds", "", "how many servers (guilds) the bot is in")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	e, err := config.ParseEnvironment(*envName)
	if err != nil {
		return usageError(env, fs, "--env must be development, staging or production, not %q", *envName)
	}
	if *guilds == "" {
		return usageError(env, fs, "--guilds is required")
	}
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(*guilds), ",", ""))
	if err != nil || n < 0 {
		return usageError(env, fs, "--guilds must be a whole number ≥ 0, not %q", *guilds)
	}
	r, err := config.Recommend(e, n)
	if err != nil {
		fmt.Fprintln(env.Stderr, "lifeline config recommend:", strings.TrimPrefix(err.Error(), "config: "))
		return 1
	}
	_, _ = env.Stdout.Write(r.Policy)
	return 0
}
