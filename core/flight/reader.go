package flight

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrCorrupt is returned (in a *ParseError) when a complete line of a
// recording is not a valid Line.
var ErrCorrupt = errors.New("flight: corrupt recording")

// ErrEmpty is returned by ReadFile when the recording has no line.
var ErrEmpty = errors.New("flight: empty recording")

// ParseError says which line of which file could not be read.
type ParseError struct {
	File string
	Line int // 1-based
	Err  error
}

// Error gives "FILE:LINE: flight: corrupt recording: why".
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %v: %v", e.File, e.Line, ErrCorrupt, e.Err)
}

// Unwrap returns ErrCorrupt and the decoding error.
func (e *ParseError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Recording is a recording read back.
type Recording struct {
	// Files are the files read, in order.
	Files []string
	// Lines are the ticks, oldest first.
	Lines []Line
	// Truncated names the files whose last line was cut short and left
	// out ("FILE:LINE").
	Truncated []string
}

// ReadFile reads the recording at path: its rotated files (path.1, path.2,
// ...) in order, then path itself. A missing current file is not an error
// when rotated files exist.
func ReadFile(path string) (*Recording, error) {
	seqs, err := listRotated(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, s := range seqs {
		files = append(files, rotatedName(path, s))
	}
	if _, err := os.Stat(path); err == nil || len(files) == 0 {
		files = append(files, path)
	}
	rec := &Recording{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("flight: read recording: %w", err)
		}
		lines, trunc, err := Decode(name, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		rec.Files = append(rec.Files, name)
		rec.Lines = append(rec.Lines, lines...)
		if trunc > 0 {
			rec.Truncated = append(rec.Truncated, fmt.Sprintf("%s:%d", name, trunc))
		}
	}
	if len(rec.Lines) == 0 {
		return nil, fmt.Errorf("flight: read %s: %w", path, ErrEmpty)
	}
	return rec, nil
}

// Decode reads the lines of one file (name is used in errors). A last line
// without a newline that does not decode is left out and its number
// returned as truncated; any other bad line is a *ParseError. Empty lines
// are skipped.
func Decode(name string, r io.Reader) (lines []Line, truncated int, err error) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		raw, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, 0, fmt.Errorf("flight: read %s: %w", name, rerr)
		}
		complete := len(raw) > 0 && raw[len(raw)-1] == '\n'
		body := bytes.TrimSpace(raw)
		if len(body) > 0 {
			var l Line
			if derr := json.Unmarshal(body, &l); derr != nil {
				if !complete {
					return lines, n, nil
				}
				return nil, 0, &ParseError{File: name, Line: n, Err: derr}
			}
			if l.Time.IsZero() {
				if !complete {
					return lines, n, nil
				}
				return nil, 0, &ParseError{File: name, Line: n, Err: errors.New("line has no time")}
			}
			lines = append(lines, l)
		}
		if rerr != nil {
			return lines, 0, nil
		}
	}
}
