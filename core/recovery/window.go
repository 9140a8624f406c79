package recovery

import "time"

// window counts events in a sliding time window. It keeps the timestamps
// within the window, oldest first; it is not safe for concurrent use (the Engine
// holds its lock).
type window struct {
	at []time.Time
}

// prune forgets the timestamps at or before now-length.
func (w *window) prune(now time.Time, length time.Duration) {
	cut := now.Add(-length)
	i := 0
	for i < len(w.at) && !w.at[i].After(cut) {
		i++
	}
	if i > 0 {
		w.at = append(w.at[:0], w.at[i:]...)
	}
}

// count returns how many timestamps lie within (now-length, now].
func (w *window) count(now time.Time, length time.Duration) int {
	w.prune(now, length)
	return len(w.at)
}

// add records now.
func (w *window) add(now time.Time) { w.at = append(w.at, now) }

// remove forgets one timestamp equal to at (the latest such), if the
// window still holds one.
func (w *window) remove(at time.Time) {
	for i := len(w.at) - 1; i >= 0; i-- {
		if w.at[i].Equal(at) {
			w.at = append(w.at[:i], w.at[i+1:]...)
			return
		}
	}
}

// windowKey names a counter: a shard's total (strategy "") or one
// strategy's attempts on a shard.
type windowKey struct {
	shard    int
	strategy string
}
