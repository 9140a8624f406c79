package flight

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// Defaults of Settings.
const (
	DefaultMaxFileBytes  = 1 << 20
	DefaultMaxTotalBytes = 8 << 20
	DefaultMaxEvents     = 64
)

// ErrNoPath is returned by Open when Settings.Path is empty.
var ErrNoPath = errors.New("flight: no recording path")

// ErrLineTooLarge is returned by Tick when one line is larger than
// MaxFileBytes; the line is not written.
var ErrLineTooLarge = errors.New("flight: line larger than the file bound")

// ErrClosed is returned by Tick after Close.
var ErrClosed = errors.New("flight: recorder closed")

// Settings configures a Recorder.
type Settings struct {
	// Path is the current file; rotated files are Path.1, Path.2, ...
	// Required.
	Path string
	// MaxFileBytes is the size at which the current file is rotated.
	// Default: DefaultMaxFileBytes (1 MiB); at most MaxTotalBytes.
	MaxFileBytes int64
	// MaxTotalBytes bounds the recording on disk, every file together.
	// Default: DefaultMaxTotalBytes (8 MiB).
	MaxTotalBytes int64
	// MaxEvents bounds the events kept in one line; the others are
	// counted in Line.Dropped. Default: DefaultMaxEvents (64).
	MaxEvents int
	// Clock stamps the lines. Default: clock.Real.
	Clock clock.Clock
}

// Line is one tick of a recording.
type Line struct {
	// Time is when the tick was recorded (the Recorder's clock).
	Time time.Time `json:"time"`
	// Snapshot is the tick's metrics.
	Snapshot metrics.Snapshot `json:"snapshot"`
	// Decision is what the live policy decided, when recorded.
	Decision *DecisionRecord `json:"decision,omitempty"`
	// Level is the live engine's level after the tick ("" when unknown).
	Level string `json:"level,omitempty"`
	// Events are the events published since the previous line.
	Events []EventRecord `json:"events,omitempty"`
	// Dropped counts the events left out beyond MaxEvents.
	Dropped int `json:"dropped,omitempty"`
	// Marks are the markers set with Mark since the previous line.
	Marks []string `json:"marks,omitempty"`
}

// DecisionRecord is the JSON form of a policy.Decision.
type DecisionRecord struct {
	Level   policy.Level `json:"level"`
	Recover bool         `json:"recover"`
	Reason  string       `json:"reason,omitempty"`
}

// EventRecord is the JSON form of an events.Event; Data keeps the payload as
// published, Summary its one-line form.
type EventRecord struct {
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"`
	Shard   int             `json:"shard"`
	Summary string          `json:"summary,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Stats are a Recorder's counters.
type Stats struct {
	Lines     uint64 // lines written
	Rotations uint64 // files rotated
	Deleted   uint64 // rotated files deleted to hold MaxTotalBytes
	Dropped   uint64 // events left out beyond MaxEvents
	Bytes     int64  // bytes on disk now, every file together
	Files     int    // files on disk now, the current one included
}

// Recorder writes a recording. Its methods are safe for concurrent use;
// a nil *Recorder accepts every call and does nothing.
type Recorder struct {
	s   Settings
	clk clock.Clock

	mu      sync.Mutex
	f       *os.File
	size    int64
	rotated []rotatedFile // oldest first
	nextSeq int
	pending []EventRecord
	dropped int
	marks   []string
	stats   Stats
	closed  bool
}

type rotatedFile struct {
	seq  int
	size int64
}

// Open starts a recording at s.Path, rotating a current file a previous run
// left there and counting its rotated files against the bound.
func Open(s Settings) (*Recorder, error) {
	if s.Path == "" {
		return nil, ErrNoPath
	}
	if s.MaxTotalBytes <= 0 {
		s.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if s.MaxFileBytes <= 0 {
		s.MaxFileBytes = DefaultMaxFileBytes
	}
	if s.MaxFileBytes > s.MaxTotalBytes {
		s.MaxFileBytes = s.MaxTotalBytes
	}
	if s.MaxEvents <= 0 {
		s.MaxEvents = DefaultMaxEvents
	}
	r := &Recorder{s: s, clk: clock.Or(s.Clock), nextSeq: 1}
	rot, err := listRotated(s.Path)
	if err != nil {
		return nil, err
	}
	for _, seq := range rot {
		fi, err := os.Stat(rotatedName(s.Path, seq))
		if err != nil {
			return nil, fmt.Errorf("flight: open %s: %w", s.Path, err)
		}
		r.rotated = append(r.rotated, rotatedFile{seq: seq, size: fi.Size()})
		r.nextSeq = seq + 1
	}
	if fi, err := os.Stat(s.Path); err == nil && fi.Size() > 0 {
		if err := r.rotateLocked(fi.Size()); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(s.Path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("flight: open %s: %w", s.Path, err)
	}
	r.f = f
	if err := r.enforceLocked(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func rotatedName(path string, seq int) string { return path + "." + strconv.Itoa(seq) }

// listRotated returns the sequence numbers of path's rotated files, in
// increasing order.
func listRotated(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("flight: list %s: %w", dir, err)
	}
	var seqs []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n <= 0 || strconv.Itoa(n) != rest {
			continue
		}
		seqs = append(seqs, n)
	}
	sort.Ints(seqs)
	return seqs, nil
}

// Event buffers e for the next line. It fits events.Listener.
func (r *Recorder) Event(e events.Event) {
	if r == nil {
		return
	}
	rec := EventRecord{Type: e.Type.String(), Time: e.Time, Shard: e.Shard}
	if e.Data != nil {
		rec.Summary = e.String()
		if b, err := json.Marshal(e.Data); err == nil {
			rec.Data = b
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= r.s.MaxEvents {
		r.dropped++
		r.stats.Dropped++
		return
	}
	r.pending = append(r.pending, rec)
}

// Mark attaches a named marker (say "fault injected") to the next line;
// policy test assertions can measure time from it.
func (r *Recorder) Mark(name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.marks = append(r.marks, name)
	r.mu.Unlock()
}

// Tick writes one line: s, the live decision d and level, and the events
// and marks buffered since the previous line. Its signature fits
// orchestrator.Config.OnTick through a closure.
func (r *Recorder) Tick(s metrics.Snapshot, d policy.Decision, level policy.Level) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	line := Line{
		Time:     r.clk.Now(),
		Snapshot: s,
		Decision: &DecisionRecord{Level: d.Level, Recover: d.Recover, Reason: d.Reason},
		Level:    level.String(),
		Events:   r.pending,
		Dropped:  r.dropped,
		Marks:    r.marks,
	}
	r.pending, r.dropped, r.marks = nil, 0, nil
	return r.writeLocked(line)
}

// WriteLine writes a line as given (its Time included); for tools that
// build recordings, and tests.
func (r *Recorder) WriteLine(l Line) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return r.writeLocked(l)
}

func (r *Recorder) writeLocked(l Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("flight: encode line: %w", err)
	}
	b = append(b, '\n')
	n := int64(len(b))
	if n > r.s.MaxFileBytes {
		return fmt.Errorf("flight: %d-byte line, file bound %d: %w", n, r.s.MaxFileBytes, ErrLineTooLarge)
	}
	if r.size > 0 && r.size+n > r.s.MaxFileBytes {
		if err := r.f.Close(); err != nil {
			return fmt.Errorf("flight: close %s: %w", r.s.Path, err)
		}
		if err := r.rotateLocked(r.size); err != nil {
			return err
		}
		f, err := os.OpenFile(r.s.Path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("flight: open %s: %w", r.s.Path, err)
		}
		r.f, r.size = f, 0
	}
	r.size += n // counted before enforcing, so room is made for this line
	if err := r.enforceLocked(); err != nil {
		r.size -= n
		return err
	}
	if _, err := r.f.Write(b); err != nil {
		return fmt.Errorf("flight: write %s: %w", r.s.Path, err)
	}
	r.stats.Lines++
	return nil
}

// rotateLocked renames the current file (of size bytes) to the next
// rotated name.
func (r *Recorder) rotateLocked(size int64) error {
	name := rotatedName(r.s.Path, r.nextSeq)
	if err := os.Rename(r.s.Path, name); err != nil {
		return fmt.Errorf("flight: rotate %s: %w", r.s.Path, err)
	}
	r.rotated = append(r.rotated, rotatedFile{seq: r.nextSeq, size: size})
	r.nextSeq++
	r.stats.Rotations++
	return nil
}

// enforceLocked deletes the oldest rotated files until every file together
// fits MaxTotalBytes.
func (r *Recorder) enforceLocked() error {
	total := r.size
	for _, f := range r.rotated {
		total += f.size
	}
	for total > r.s.MaxTotalBytes && len(r.rotated) > 0 {
		old := r.rotated[0]
		if err := os.Remove(rotatedName(r.s.Path, old.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("flight: delete old recording: %w", err)
		}
		r.rotated = r.rotated[1:]
		total -= old.size
		r.stats.Deleted++
	}
	return nil
}

// Stats returns the counters and the recording's size on disk.
func (r *Recorder) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Bytes = r.size
	for _, f := range r.rotated {
		st.Bytes += f.size
	}
	st.Files = len(r.rotated) + 1
	return st
}

// Close closes the current file. Later Ticks fail with ErrClosed.
func (r *Recorder) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("flight: close %s: %w", r.s.Path, err)
	}
	return nil
}
