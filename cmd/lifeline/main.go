package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
)

// command is one lifeline subcommand. Each command's file registers it from
// init() with register.
type command struct {
	// Name is the command's words as typed after "lifeline": "fake-discord",
	// "policy check", "config export".
	Name string
	// Summary is one line for `lifeline help`.
	Summary string
	// Usage is the synopsis after the name ("[-w] [-check] FILE..."),
	// optionally followed by lines that explain the arguments. A FlagSet
	// made with newFlagSet prints it, then the flags with their defaults,
	// on -h and on misuse.
	Usage string
	// Run runs the command with the arguments after its name and returns
	// the exit code: 0 on success, 1 on failure, 2 on a usage error. ctx
	// is cancelled on SIGINT or SIGTERM. Run must answer -h by printing
	// its usage to env.Stderr and doing nothing else (newFlagSet and
	// parseFlags do that): `lifeline help NAME` runs "NAME -h".
	Run func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a command may touch of the process, so tests can run
// commands in-process with buffers and a fake environment.
type cliEnv struct {
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable (os.Getenv in the binary).
	Getenv func(string) string
}

// registry maps command names to commands.
type registry struct {
	byName map[string]command
}

// commands is the registry every command file adds to through register.
var commands registry

// register adds c to the command registry. It is called from init() in each
// command's file and panics on an empty or duplicate name or a nil Run, which
// are programming errors caught by any test of the package.
func register(c command) {
	if err := commands.add(c); err != nil {
		panic(err)
	}
}

func init() {
	register(command{
		Name:    "help",
		Summary: "list the commands, or show how to use one",
		Usage:   "[NAME...]\n\nWith no NAME, lists every command. With a command's name (\"help policy check\"),\nshows its usage; with the first word of several commands (\"help policy\"), lists them.",
		Run:     runHelp,
	})
	register(command{
		Name:    "version",
		Summary: "print lifeline's module version and the Go version it was built with",
		Usage:   "",
		Run:     runVersion,
	})
}

func main() {
	if serveDemoPlugin(os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cliEnv{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args (os.Args[1:]) to the registered commands and returns
// the process exit code.
func run(ctx context.Context, env *cliEnv, args []string) int {
	return commands.dispatch(ctx, env, args)
}

// add checks and inserts c.
func (r *registry) add(c command) error {
	name := strings.Join(strings.Fields(c.Name), " ")
	switch {
	case name == "" || name != c.Name:
		return fmt.Errorf("lifeline: register: command name %q must be words separated by single spaces", c.Name)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("lifeline: register: command name %q must not start with '-'", c.Name)
	case c.Run == nil:
		return fmt.Errorf("lifeline: register: command %q has no Run", c.Name)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("lifeline: register: command %q registered twice", c.Name)
	}
	if r.byName == nil {
		r.byName = map[string]command{}
	}
	r.byName[name] = c
	return nil
}

// names returns every registered name, sorted.
func (r *registry) names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// lookup returns the command whose name is the longest prefix (in words) of
// args, and how many words of args the name took.
func (r *registry) lookup(args []string) (command, int, bool) {
	for n := len(args); n > 0; n-- {
		if c, ok := r.byName[strings.Join(args[:n], " ")]; ok {
			return c, n, true
		}
	}
	return command{}, 0, false
}

// group returns the sorted names of the commands whose first words are
// prefix ("policy" → "policy check", "policy fmt").
func (r *registry) group(prefix []string) []string {
	p := strings.Join(prefix, " ") + " "
	var out []string
	for _, n := range r.names() {
		if strings.HasPrefix(n, p) {
			out = append(out, n)
		}
	}
	return out
}

// dispatch runs the command args name; see run.
func (r *registry) dispatch(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: lifeline COMMAND [ARGS...]")
		fmt.Fprintln(env.Stderr)
		r.writeList(env.Stderr, r.names())
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		args = append([]string{"help"}, args[1:]...)
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	c, n, ok := r.lookup(args)
	if !ok {
		return r.unknown(env, args)
	}
	return c.Run(ctx, env, args[n:])
}

// unknown reports a command that is not registered: the commands of its
// group when its first words name one, every command otherwise.
func (r *registry) unknown(env *cliEnv, args []string) int {
	for n := len(args); n > 0; n-- {
		if sub := r.group(args[:n]); len(sub) > 0 {
			what := strings.Join(args[:n], " ")
			if len(args) > n {
				fmt.Fprintf(env.Stderr, "lifeline %s: unknown subcommand %q; the %s commands are:\n\n", what, args[n], what)
			} else {
				fmt.Fprintf(env.Stderr, "lifeline %s: missing subcommand; the %s commands are:\n\n", what, what)
			}
			r.writeList(env.Stderr, sub)
			return 2
		}
	}
	fmt.Fprintf(env.Stderr, "lifeline: unknown command %q; the commands are:\n\n", args[0])
	r.writeList(env.Stderr, r.names())
	return 2
}

// writeList prints the named commands with their summaries in two columns.
func (r *registry) writeList(w io.Writer, names []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, r.byName[n].Summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'lifeline help NAME' for a command's usage.")
}

// writeUsage prints c's usage: the synopsis line, the summary, then the rest
// of c.Usage.
func writeUsage(w io.Writer, c command) {
	synopsis, rest, _ := strings.Cut(c.Usage, "\n")
	line := "usage: lifeline " + c.Name
	if synopsis = strings.TrimSpace(synopsis); synopsis != "" {
		line += " " + synopsis
	}
	fmt.Fprintln(w, line)
	fmt.Fprintln(w)
	fmt.Fprintln(w, capitalize(c.Summary)+".")
	if rest = strings.Trim(rest, "\n"); rest != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, rest)
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// runHelp is `lifeline help [NAME...]`. A command's usage comes from the
// command itself: help runs it with -h, its output sent to Stdout.
func runHelp(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "help")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	args = fs.Args()
	r := &commands
	if len(args) == 0 {
		fmt.Fprintln(env.Stdout, "lifeline keeps a Discord bot connected; these are its commands:")
		fmt.Fprintln(env.Stdout)
		r.writeList(env.Stdout, r.names())
		return 0
	}
	if c, ok := r.byName[strings.Join(args, " ")]; ok {
		c.Run(ctx, &cliEnv{Stdout: env.Stdout, Stderr: env.Stdout, Getenv: env.Getenv}, []string{"-h"})
		return 0
	}
	if sub := r.group(args); len(sub) > 0 {
		fmt.Fprintf(env.Stdout, "The %s commands:\n\n", strings.Join(args, " "))
		r.writeList(env.Stdout, sub)
		return 0
	}
	fmt.Fprintf(env.Stderr, "lifeline help: unknown command %q; the commands are:\n\n", strings.Join(args, " "))
	r.writeList(env.Stderr, r.names())
	return 2
}

// newFlagSet returns a FlagSet for the command name that reports errors to
// env.Stderr and, on misuse or -h, prints the command's usage and flags
// there. Use it with parseFlags.
func newFlagSet(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("lifeline "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		if c, ok := commands.byName[name]; ok {
			writeUsage(env.Stderr, c)
		} else {
			fmt.Fprintf(env.Stderr, "usage: lifeline %s\n", name)
		}
		if hasFlags(fs) {
			fmt.Fprintln(env.Stderr)
			fmt.Fprintln(env.Stderr, "Flags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args with fs. When done is true the command should
// return code at once: 0 after -h (the full usage printed), 2 after a bad
// flag (the error and a pointer to `lifeline help NAME` printed).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	usage := fs.Usage
	fs.Usage = func() {} // flag calls it on every error; we choose below
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		usage()
		return 0, true
	default:
		helpHint(fs)
		return 2, true
	}
}

// helpHint points at the full usage of the command fs belongs to.
func helpHint(fs *flag.FlagSet) {
	fmt.Fprintf(fs.Output(), "Run 'lifeline help %s' for usage.\n", strings.TrimPrefix(fs.Name(), "lifeline "))
}

// usageError prints "lifeline NAME: message" and a pointer to the command's
// usage to env.Stderr and returns 2, for misuse found after flag parsing (a
// missing argument, a bad flag combination).
func usageError(env *cliEnv, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(env.Stderr, "Run 'lifeline help %s' for usage.\n", strings.TrimPrefix(fs.Name(), "lifeline "))
	return 2
}

// runVersion is `lifeline version`.
func runVersion(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "version")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Fprint(env.Stdout, versionText(info, ok))
	return 0
}

// versionText formats the module version (with the VCS revision when the
// binary was built from a checkout) and the Go toolchain.
func versionText(info *debug.BuildInfo, ok bool) string {
	version, goVersion := "unknown", runtime.Version()
	var extra []string
	if ok && info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if settings["vcs.modified"] == "true" {
				rev += "+dirty"
			}
			extra = append(extra, "revision "+rev)
		}
		if t := settings["vcs.time"]; t != "" {
			extra = append(extra, t)
		}
	}
	line := "lifeline " + version
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return fmt.Sprintf("%s\n%s %s/%s\n", line, goVersion, runtime.GOOS, runtime.GOARCH)
}
