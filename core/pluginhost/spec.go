package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/sdk"
)

// Spec is one plugin the host should run: a policy's `plugin "NAME"` block
// and what the policy uses from it.
type Spec struct {
	// Name is the block's label; actions and strategies are "Name.x".
	Name string
	// Path is the binary. A relative path is taken from Options.BaseDir.
	Path string
	// SHA256 is the expected hex checksum of the binary; empty: not pinned.
	SHA256 string
	// Args are the process's command-line arguments.
	Args []string
	// Config is the plugin block's config, sent to the process.
	Config map[string]any

	// Checks are the policy's check blocks served by this plugin.
	Checks []CheckUse
	// Actions are the action names (after "Name.") the policy's levels use.
	Actions []string
	// Strategies are the strategy names (after "Name.") the policy's
	// recovery rules use.
	Strategies []string
}

// CheckUse is one check block served by a plugin.
type CheckUse struct {
	// Name is the check block's label, the check's name in the health
	// monitor.
	Name string
	// Config is the check block's config, laid over the plugin block's.
	Config map[string]any
	// Threshold is the check block's threshold.
	Threshold sdk.Threshold
}

// processChanged reports whether moving from a to b needs a new process:
// another binary, checksum or arguments. A change of config or uses only
// reconfigures the running process.
func processChanged(a, b Spec) bool {
	return a.Path != b.Path || !strings.EqualFold(a.SHA256, b.SHA256) || !reflect.DeepEqual(a.Args, b.Args)
}

// SpecsFromPolicy returns the plugins p declares that some check, action
// or recovery rule uses, in declaration order, with relative paths kept
// relative (Options.BaseDir resolves them: the policy file's directory).
// Declared but unused plugins are left out: the policy reports them as a
// warning and they are not started.
func SpecsFromPolicy(p *policy.Policy) []Spec {
	if p == nil {
		return nil
	}
	byName := map[string]*Spec{}
	var order []string
	for _, pl := range p.Plugins {
		byName[pl.Name] = &Spec{Name: pl.Name, Path: pl.Path, SHA256: pl.SHA256,
			Args: append([]string(nil), pl.Args...), Config: pl.Config}
		order = append(order, pl.Name)
	}
	used := map[string]bool{}
	for _, c := range p.Health.Checks {
		if s := byName[c.Plugin]; s != nil && c.Plugin != "" {
			s.Checks = append(s.Checks, CheckUse{Name: c.Name, Config: c.Config, Threshold: thresholdToSDK(c.Threshold)})
			used[c.Plugin] = true
		}
	}
	for _, l := range p.Degradation.Levels {
		for _, a := range l.Actions {
			if pl, name, ok := strings.Cut(a, "."); ok && byName[pl] != nil {
				byName[pl].Actions = appendUnique(byName[pl].Actions, name)
				used[pl] = true
			}
		}
	}
	for _, r := range p.Recovery {
		if pl, name, ok := strings.Cut(r.Use, "."); ok && byName[pl] != nil {
			byName[pl].Strategies = appendUnique(byName[pl].Strategies, name)
			used[pl] = true
		}
	}
	var out []Spec
	for _, n := range order {
		if used[n] {
			out = append(out, *byName[n])
		}
	}
	return out
}

func appendUnique(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

func thresholdToSDK(t policy.Threshold) sdk.Threshold {
	if !t.Set {
		return sdk.Threshold{}
	}
	if t.IsDuration {
		return sdk.Threshold{Set: true, IsDuration: true, Duration: t.Duration, Value: t.Duration.Seconds()}
	}
	return sdk.Threshold{Set: true, Value: t.Number}
}

// BinaryPrefix is the file name prefix Discover looks for.
const BinaryPrefix = "lifeline-plugin-"

// Discover lists the plugin binaries in dir: executable regular files named
// lifeline-plugin-NAME, as Specs named NAME with absolute paths and no uses,
// sorted by name. A policy's plugin block can then point at one, or a tool
// can list what is installed.
func Discover(dir string) ([]Spec, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: discover in %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: discover in %s: %w", dir, err)
	}
	var out []Spec
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
		if !ok || !sdk.ValidName(name) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, Spec{Name: name, Path: filepath.Join(abs, e.Name())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifyChecksum checks the binary at path against want (hex, any case).
// The error wraps ErrChecksumMismatch and names both sums.
func verifyChecksum(path, want string) error {
	got, err := FileSHA256(path)
	if err != nil {
		return fmt.Errorf("reading %s for its checksum: %w", path, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("%w: %s has sha256 %s, the policy expects %s", ErrChecksumMismatch, path, got, strings.ToLower(want))
	}
	return nil
}
