package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFakeTimerFiresOnAdvance(t *testing.T) {
	f := NewFake(time.Time{})
	start := f.Now()
	tm := f.NewTimer(10 * time.Second)
	f.Advance(9 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(time.Second)
	select {
	case got := <-tm.C():
		if want := start.Add(10 * time.Second); !got.Equal(want) {
			t.Fatalf("fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("timer did not fire")
	}
	if tm.Stop() {
		t.Fatal("Stop on a fired timer reported active")
	}
}

func TestFakeTickerAndStop(t *testing.T) {
	f := NewFake(time.Time{})
	tk := f.NewTicker(time.Second)
	n := 0
	for i := 0; i < 3; i++ {
		f.Advance(time.Second)
		select {
		case <-tk.C():
			n++
		default:
		}
	}
	if n != 3 {
		t.Fatalf("ticks = %d, want 3", n)
	}
	tk.Stop()
	if f.Waiters() != 0 {
		t.Fatalf("waiters after Stop = %d", f.Waiters())
	}
}

func TestFakeAfterFuncAndOrder(t *testing.T) {
	f := NewFake(time.Time{})
	var got atomic.Int64
	done := make(chan struct{})
	f.AfterFunc(2*time.Second, func() { got.Store(2); close(done) })
	tm := f.NewTimer(time.Second)
	if !f.BlockUntil(2, time.Second) {
		t.Fatal("BlockUntil did not see two waiters")
	}
	f.Advance(5 * time.Second)
	<-done
	if got.Load() != 2 {
		t.Fatal("AfterFunc did not run")
	}
	if at := <-tm.C(); !at.Equal(f.Now().Add(-4 * time.Second)) {
		t.Fatalf("first timer fired at %v, want its own deadline", at)
	}
}

func TestFakeReset(t *testing.T) {
	f := NewFake(time.Time{})
	tm := f.NewTimer(time.Second)
	if !tm.Reset(3 * time.Second) {
		t.Fatal("Reset of an active timer reported inactive")
	}
	f.Advance(2 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("reset timer fired at its old deadline")
	default:
	}
	f.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("reset timer did not fire")
	}
}

func TestOr(t *testing.T) {
	if _, ok := Or(nil).(Real); !ok {
		t.Fatal("Or(nil) is not Real")
	}
	f := NewFake(time.Time{})
	if Or(f) != Clock(f) {
		t.Fatal("Or(f) is not f")
	}
}

func TestFakeJumpFiresLateTimersAtTheNewTime(t *testing.T) {
	f := NewFake(time.Time{})
	start := f.Now()
	var seen atomic.Int64
	done := make(chan struct{})
	f.AfterFunc(time.Second, func() { seen.Store(int64(f.Now().Sub(start))); close(done) })
	tm := f.NewTimer(2 * time.Second)
	f.Jump(5 * time.Second)
	<-done
	if got := time.Duration(seen.Load()); got != 5*time.Second {
		t.Fatalf("callback saw Now() = start+%v, want start+5s (after the jump)", got)
	}
	if at := <-tm.C(); !at.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("timer fired at %v, want the jumped time", at)
	}
}
