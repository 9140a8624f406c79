package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// kvResume is a ResumeStore over one bucket: key "shard.<id>" holds the
// JSON of the shard's ResumeState.
type kvResume struct {
	kv KV
}

func resumeKey(shard int) string { return "shard." + strconv.Itoa(shard) }

func (r kvResume) Save(ctx context.Context, s ResumeState) error {
	if s.Shard < 0 {
		return fmt.Errorf("coord: save resume state: negative shard %d", s.Shard)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("coord: save resume state of shard %d: %w", s.Shard, err)
	}
	if _, err := r.kv.Put(ctx, resumeKey(s.Shard), b); err != nil {
		return fmt.Errorf("coord: save resume state of shard %d: %w", s.Shard, err)
	}
	return nil
}

func (r kvResume) Load(ctx context.Context, shard int) (ResumeState, bool, error) {
	e, err := r.kv.Get(ctx, resumeKey(shard))
	if errors.Is(err, ErrNotFound) {
		return ResumeState{}, false, nil
	}
	if err != nil {
		return ResumeState{}, false, fmt.Errorf("coord: load resume state of shard %d: %w", shard, err)
	}
	var s ResumeState
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return ResumeState{}, false, fmt.Errorf("coord: load resume state of shard %d: stored value is not a resume state: %w", shard, err)
	}
	if s.Shard != shard {
		return ResumeState{}, false, fmt.Errorf("coord: load resume state of shard %d: stored state is shard %d's", shard, s.Shard)
	}
	return s, true, nil
}

func (r kvResume) Delete(ctx context.Context, shard int) error {
	if err := r.kv.Delete(ctx, resumeKey(shard), 0); err != nil {
		return fmt.Errorf("coord: delete resume state of shard %d: %w", shard, err)
	}
	return nil
}
