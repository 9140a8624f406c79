package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
)

// secretScanner looks for secrets in everything a run produces: log lines,
// errors, events, HTTP responses, exports and recordings. It keeps, per
// source, how many bytes it read and where a secret showed up, never the
// secret itself.
type secretScanner struct {
	secrets [][]byte

	mu      sync.Mutex
	scanned map[string]int64 // bytes read, by source
	hits    []string         // "source: context", secret masked
}

func newSecretScanner(secrets ...string) *secretScanner {
	s := &secretScanner{scanned: map[string]int64{}}
	for _, sec := range secrets {
		if sec != "" {
			s.secrets = append(s.secrets, []byte(sec))
		}
	}
	return s
}

// Scan checks b, produced by source, for every secret.
func (s *secretScanner) Scan(source string, b []byte) {
	var found []string
	for _, sec := range s.secrets {
		if i := bytes.Index(b, sec); i >= 0 {
			lo, hi := max(0, i-40), min(len(b), i+len(sec)+40)
			ctx := bytes.ReplaceAll(b[lo:hi], sec, []byte("<SECRET>"))
			ctx = bytes.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' ' // NULs of /proc/PID/environ, newlines of logs
				}
				return r
			}, ctx)
			found = append(found, fmt.Sprintf("%s: …%s…", source, ctx))
		}
	}
	s.mu.Lock()
	s.scanned[source] += int64(len(b))
	s.hits = append(s.hits, found...)
	s.mu.Unlock()
}

// ScanString is Scan for a string.
func (s *secretScanner) ScanString(source, text string) { s.Scan(source, []byte(text)) }

// Hits returns every place a secret was found.
func (s *secretScanner) Hits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hits...)
}

// Scanned returns the bytes read per source.
func (s *secretScanner) Scanned() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.scanned))
	for k, v := range s.scanned {
		out[k] = v
	}
	return out
}

// Sources returns the sources scanned, sorted.
func (s *secretScanner) Sources() []string {
	m := s.Scanned()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// logSink is the io.Writer behind the run's loggers: each write (one log
// line for hclog) is scanned for secrets and counted, and the last lines
// are kept for a failure report. Nothing else is stored, so a long soak
// does not grow with its logs.
type logSink struct {
	source string
	scan   *secretScanner

	mu    sync.Mutex
	lines int64
	tail  [][]byte // ring of the last len(tail) lines
	next  int
	// watch, when set, sees every line (the recovery engine's skips are
	// only logged).
	watch func(line []byte)
}

func newLogSink(source string, scan *secretScanner, keep int) *logSink {
	return &logSink{source: source, scan: scan, tail: make([][]byte, keep)}
}

// Write implements io.Writer.
func (l *logSink) Write(p []byte) (int, error) {
	l.scan.Scan(l.source, p)
	if l.watch != nil {
		l.watch(p)
	}
	line := append([]byte(nil), p...)
	l.mu.Lock()
	l.lines++
	if len(l.tail) > 0 {
		l.tail[l.next] = line
		l.next = (l.next + 1) % len(l.tail)
	}
	l.mu.Unlock()
	return len(p), nil
}

// Lines returns how many lines were written.
func (l *logSink) Lines() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines
}

// Tail returns the last lines written, oldest first.
func (l *logSink) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for i := range l.tail {
		if line := l.tail[(l.next+i)%len(l.tail)]; line != nil {
			b.Write(line)
		}
	}
	return b.String()
}
