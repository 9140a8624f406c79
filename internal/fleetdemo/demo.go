package fleetdemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DemoOptions configures Run. The zero value is valid apart from Binary.
type DemoOptions struct {
	// Binary is the lifeline executable the processes run. Required.
	Binary string
	// Processes is how many lifeline processes the fleet has. Default: 3.
	Processes int
	// Shards is the bot's shard count. Default: 4 per process.
	Shards int
	// Out receives the story, one line per step. Default: io.Discard.
	Out io.Writer
	// Dir holds the policy, the NATS store and the processes' logs.
	// Default: a temporary directory, removed at the end.
	Dir string
}

// Result is what the story showed, from the fake Discord's ledger.
type Result struct {
	// Processes and Shards are the fleet's size.
	Processes, Shards int
	// StartIdentifies is the IDENTIFYs of the start: one per shard.
	StartIdentifies int
	// Killed is the process killed with SIGKILL and Moved the shards it
	// ran; KillResumes and KillIdentifies what their new owners sent.
	Killed                      string
	Moved                       []int
	KillResumes, KillIdentifies int
	// LastResume is the time from the kill to the last of its shards'
	// RESUMEs.
	LastResume time.Duration
	// Rejoined is how many shards the restarted process took back by
	// handover; RejoinIdentifies the IDENTIFYs that cost.
	Rejoined, RejoinIdentifies int
	// LeaveIdentifies is the IDENTIFYs while every process left.
	LeaveIdentifies int
	// Violations, Overlaps and Lost count the ledger's broken limits,
	// shards that had two live connections at once, and lost dispatches.
	Violations, Overlaps, Lost int
	// ExitErrors lists the processes that did not exit 0 when asked to
	// stop.
	ExitErrors []string
}

// OK reports whether the story went as the fleet promises: one IDENTIFY
// per shard at the start and none after, every shard of the killed
// process RESUMEd, no broken limit, no shard run twice, no dispatch lost,
// and every process stopped cleanly.
func (r Result) OK() bool {
	return r.StartIdentifies == r.Shards && r.KillIdentifies == 0 && r.KillResumes == len(r.Moved) && len(r.Moved) > 0 &&
		r.RejoinIdentifies == 0 && r.LeaveIdentifies == 0 && r.Violations == 0 && r.Overlaps == 0 && r.Lost == 0 &&
		len(r.ExitErrors) == 0
}

// Run plays the fleet story: the processes start and share the shards,
// one is killed with SIGKILL and its shards move to the others by RESUME,
// it comes back and takes its share again by handover, and every process
// leaves gracefully. It prints each step to Out and returns what the
// ledger showed; an error means the story could not be played.
func Run(ctx context.Context, o DemoOptions) (Result, error) {
	if o.Processes <= 0 {
		o.Processes = 3
	}
	if o.Processes < 2 {
		return Result{}, errors.New("fleetdemo: a fleet needs at least 2 processes")
	}
	if o.Shards <= 0 {
		o.Shards = 4 * o.Processes
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	began := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(o.Out, "[%5.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	c, err := Start(Options{Binary: o.Binary, Dir: o.Dir, Shards: o.Shards, MaxConcurrency: 4,
		DispatchInterval: 100 * time.Millisecond})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	res := Result{Processes: o.Processes, Shards: o.Shards}
	srv := c.Fake()
	opts := c.Options()
	say("fake Discord on %s (%d shards, max_concurrency %d, heartbeat %s); NATS with JetStream on %s",
		srv.URL(), o.Shards, opts.MaxConcurrency, srv.HeartbeatInterval(), c.NATSURL())
	say("policy %s: coordination \"nats\", lease %s, heartbeat every %s", c.PolicyFile(), opts.LeaseTTL, opts.Interval)

	ids := make([]string, o.Processes)
	for i := range ids {
		ids[i] = "p" + strconv.Itoa(i+1)
	}
	for _, id := range ids {
		p, err := c.Spawn(ctx, id)
		if err != nil {
			return res, err
		}
		say("started lifeline process %s (pid %d), dashboard %s/", id, p.Pid(), p.HTTP)
	}
	owners, err := c.WaitSettled(ctx)
	if err != nil {
		return res, err
	}
	tally := Since(srv, Mark{})
	res.StartIdentifies = tally.Identifies
	say("every shard READY, each in one process, %d IDENTIFYs for %d shards:", tally.Identifies, o.Shards)
	printOwners(say, owners, ids)

	// The crash.
	res.Killed = ids[len(ids)/2]
	for s, p := range owners {
		if p == res.Killed {
			res.Moved = append(res.Moved, s)
		}
	}
	sort.Ints(res.Moved)
	mark := MarkNow(srv)
	killed := time.Now()
	if err := c.Kill(res.Killed); err != nil {
		return res, err
	}
	say("kill -9 %s (it ran shards %s): no handover; its lease runs out in %s", res.Killed, shardRange(res.Moved), opts.LeaseTTL)
	after, err := c.WaitSettled(ctx)
	if err != nil {
		return res, err
	}
	tally = Since(srv, mark)
	res.KillResumes, res.KillIdentifies = tally.Resumes, tally.Identifies
	resumed := ResumedAt(srv, mark)
	for _, s := range res.Moved {
		at, ok := resumed[s]
		if !ok {
			say("shard %d moved to %s without a RESUME", s, after[s])
			continue
		}
		res.LastResume = max(res.LastResume, at.Sub(killed))
		say("shard %d moved to %s: RESUMEd %s after the kill", s, after[s], at.Sub(killed).Round(10*time.Millisecond))
	}
	say("%d RESUMEs, %d IDENTIFYs: the killed process's sessions go on", tally.Resumes, tally.Identifies)

	// The crashed process comes back.
	mark = MarkNow(srv)
	if _, err := c.Spawn(ctx, res.Killed); err != nil {
		return res, err
	}
	say("%s restarts and joins the fleet", res.Killed)
	back, err := c.WaitSettled(ctx)
	if err != nil {
		return res, err
	}
	tally = Since(srv, mark)
	res.RejoinIdentifies = tally.Identifies
	for _, p := range back {
		if p == res.Killed {
			res.Rejoined++
		}
	}
	var gap time.Duration
	for _, g := range HandoverGaps(srv, mark) {
		gap = max(gap, g)
	}
	say("%s took %d shards back by handover (%d RESUMEs, %d IDENTIFYs; the longest a shard went without a connection: %s):",
		res.Killed, res.Rejoined, tally.Resumes, tally.Identifies, gap.Round(time.Millisecond))
	printOwners(say, back, ids)

	// Everyone leaves.
	mark = MarkNow(srv)
	for i, id := range ids {
		stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err := c.Stop(stopCtx, id)
		cancel()
		if err != nil {
			res.ExitErrors = append(res.ExitErrors, err.Error())
			say("%s did not stop cleanly: %v", id, firstLine(err.Error()))
			continue
		}
		if i < len(ids)-1 {
			say("%s stopped (SIGTERM): its shards were handed over first", id)
		} else {
			say("%s stopped (SIGTERM): the last one; its sessions stay resumable (close code 4000)", id)
		}
	}
	res.LeaveIdentifies = Since(srv, mark).Identifies

	all := Since(srv, Mark{})
	res.Violations = len(all.Violations)
	res.Overlaps = len(Overlaps(srv))
	res.Lost = len(Lost(srv))
	verdict := "OK"
	if !res.OK() {
		verdict = "FAILED"
	}
	say("%s: %d IDENTIFYs in all for %d shards, %d RESUMEs, %d broken limits, %d shards ever run twice, %d sessions with lost dispatches",
		verdict, all.Identifies, o.Shards, all.Resumes, res.Violations, res.Overlaps, res.Lost)
	return res, nil
}

// printOwners prints which process runs which shards.
func printOwners(say func(string, ...any), owners map[int]string, ids []string) {
	by := map[string][]int{}
	for s, p := range owners {
		by[p] = append(by[p], s)
	}
	for _, id := range ids {
		s := by[id]
		sort.Ints(s)
		if len(s) == 0 {
			continue
		}
		say("  %s runs %2d shards: %s", id, len(s), shardRange(s))
	}
}

// shardRange writes shard IDs compactly: "0-3 8 10-11".
func shardRange(ids []int) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ids[i]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i])+"-"+strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
