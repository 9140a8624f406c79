package coord

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// fleetHealth is a Fleet's HealthBoard: a process's health rides on its
// heartbeat key, so the view is one listing of the members bucket and a
// dead process's figures disappear with its lease.
type fleetHealth struct {
	f *Fleet
}

// Publish implements HealthBoard.
func (b *fleetHealth) Publish(h ProcessHealth) {
	m := b.f.member
	m.mu.Lock()
	m.health = h
	m.mu.Unlock()
}

// View implements HealthBoard.
func (b *fleetHealth) View(ctx context.Context) (FleetView, error) {
	f := b.f
	m := f.member
	members, err := m.listMembers(ctx)
	if err != nil {
		return FleetView{}, err
	}
	var leader string
	var e Entry
	err = f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.members.Get(ctx, leaderKey)
		return err
	})
	switch {
	case err == nil:
		var v holderValue
		if json.Unmarshal(e.Value, &v) == nil {
			leader = v.Process
		}
	case errors.Is(err, ErrNotFound):
	default:
		return FleetView{}, err
	}
	procs := make([]ProcessView, 0, len(members))
	for _, v := range members {
		procs = append(procs, ProcessView{
			ID: v.ID, Leader: v.ID == leader, Leaving: v.Leaving,
			Owned: slices.Clone(v.Owned), Health: v.Health,
		})
	}
	slices.SortFunc(procs, func(a, b ProcessView) int { return strings.Compare(a.ID, b.ID) })
	return summarize(f.s.ShardCount, leader, procs), nil
}

// errorsIsAny reports whether err matches any of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
