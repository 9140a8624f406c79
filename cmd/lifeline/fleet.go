package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	// The "nats" coordination backend: `lifeline run` with a policy whose
	// coordination "nats" block joins a fleet. Only this command links
	// the NATS client; the root package and embedding bots do not.
	_ "github.com/lifeline-bot/lifeline/core/coord/natscoord"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// This file holds what `lifeline run` and `lifeline status` do for fleets:
// the --fake-url flag (several processes sharing one fake Discord, as a
// fleet's processes share Discord) and the fleet section of the status.

// fleetRunOptions are run's flags for fleets.
type fleetRunOptions struct {
	fakeURL string
}

// define adds the flags to run's FlagSet.
func (f *fleetRunOptions) define(fs *flag.FlagSet) {
	fs.StringVar(&f.fakeURL, "fake-url", "", "connect to a fake Discord already running at `URL` (lifeline fake-discord's rest= address; several processes can share it); --fake-scale gives its time scale")
}

// check validates the flags against run's others.
func (f *fleetRunOptions) check(c *runOptions) error {
	if f.fakeURL == "" {
		return nil
	}
	if c.fake {
		return fmt.Errorf("--fake-url and --fake: choose a fake already running or an embedded one")
	}
	if _, err := fakeBaseURL(f.fakeURL); err != nil {
		return err
	}
	return nil
}

// usesFake reports whether the process talks to a fake Discord (no real
// token needed).
func (f *fleetRunOptions) usesFake() bool { return f.fakeURL != "" }

// apply points cfg at the shared fake Discord: REST goes to it (and
// /gateway/bot there returns its gateway), the token is DISCORD_TOKEN or
// the fake's default one, and the identify window is the fake's scaled
// window.
func (f *fleetRunOptions) apply(c *runOptions, cfg *orchestrator.Config) error {
	if f.fakeURL == "" {
		return nil
	}
	base, err := fakeBaseURL(f.fakeURL)
	if err != nil {
		return err
	}
	cfg.RESTBaseURL = base
	if cfg.Token == "" {
		cfg.Token = discordtest.DefaultToken
	}
	cfg.IdentifyWindow = time.Duration(float64(discordtest.DefaultIdentifyWindow) / c.fakeScale)
	return nil
}

var apiSuffix = regexp.MustCompile(`/api/v[0-9]+/?$`)

// fakeBaseURL turns what `lifeline fake-discord` prints as rest=
// (http://127.0.0.1:PORT/api/v10) or its bare address into the base URL
// lifeline's REST transport sends discord.com's requests to. Only
// loopback addresses are accepted: the fake is a test double.
func fakeBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--fake-url %q: want http://127.0.0.1:PORT (the rest= address lifeline fake-discord prints)", s)
	}
	if host := u.Hostname(); host != "localhost" && !isLoopbackIP(host) {
		return "", fmt.Errorf("--fake-url %q: a fake Discord is served on loopback only", s)
	}
	u.Path = apiSuffix.ReplaceAllString(u.Path, "")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

func isLoopbackIP(host string) bool {
	return strings.HasPrefix(host, "127.") || host == "::1"
}

// statusFleet is the fleet part of /debug/lifeline that status prints.
type statusFleet struct {
	Diagnostics struct {
		Fleet *orchestrator.FleetDiagnostics `json:"fleet"`
	} `json:"diagnostics"`
}

// writeFleetStatus prints which process owns which shards, when the
// instance belongs to a fleet.
func writeFleetStatus(w io.Writer, doc statusFleet) {
	f := doc.Diagnostics.Fleet
	if f == nil {
		return
	}
	v := f.View
	fmt.Fprintf(w, "\nFleet (%s, buckets %s_*): %d processes, %d of %d shards owned, %d READY, unhealthy %.0f%%",
		f.Kind, f.BucketPrefix, v.Processes, v.Owned, v.Shards, v.Ready, 100*v.UnhealthyRatio)
	if f.ViewError != "" {
		fmt.Fprintf(w, " (last known: %s)", f.ViewError)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PROCESS\tROLE\tSHARDS\tREADY\tUNHEALTHY\tOWNS")
	list := append(v.List[:0:0], v.List...)
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	for _, p := range list {
		role := "member"
		switch {
		case p.Leaving:
			role = "leaving"
		case p.Leader:
			role = "leader"
		}
		id := p.ID
		if id == f.Process {
			id += " (this)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\n", id, role, len(p.Owned), p.Health.Ready, p.Health.Unhealthy, shardList(p.Owned))
	}
	tw.Flush()
	st := f.Stats
	fmt.Fprintf(w, "  this process: lease valid %v, store reachable %v (outages %d), shards acquired %d, handed over %d, lost %d\n",
		st.LeaseValid, !st.Unavailable, st.Outages, st.Acquired, st.Released, st.Lost)
}

// shardList writes shard IDs compactly: "0-5 8 10-12".
func shardList(ids []int) string {
	if len(ids) == 0 {
		return "-"
	}
	s := append([]int(nil), ids...)
	sort.Ints(s)
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, strconv.Itoa(s[i])+"-"+strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}
