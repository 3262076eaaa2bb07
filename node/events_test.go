package node

import (
	"errors"
	"testing"
)

// TestSubscribeFromCursor: a subscription from a cursor gets every event
// after it exactly once, the retained ones first, then the live ones.
func TestSubscribeFromCursor(t *testing.T) {
	var b broker
	for range 10 {
		b.publish(Event{Type: EventEpoch})
	}
	s, err := b.subscribeFrom(4, true, 16)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b.publish(Event{Type: EventMessage})
	}
	for want := uint64(5); want <= 15; want++ {
		if e := <-s.C; e.Seq != want {
			t.Fatalf("event %d, want %d", e.Seq, want)
		}
	}
	select {
	case e := <-s.C:
		t.Fatalf("extra event %d", e.Seq)
	default:
	}
	if _, err := b.subscribeFrom(99, true, 1); !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("a cursor ahead of the events: %v", err)
	}
}

func TestSubscribeFromExpiredCursor(t *testing.T) {
	var b broker
	for range eventBacklog + 10 {
		b.publish(Event{Type: EventEpoch})
	}
	if _, err := b.subscribeFrom(5, true, 1); !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("a cursor past the backlog: %v", err)
	}
	s, err := b.subscribeFrom(10, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := <-s.C; e.Seq != 11 {
		t.Fatalf("first replayed event %d, want 11", e.Seq)
	}
}

// TestSlowSubscriberDropped: a subscriber that does not read is dropped,
// and the others still get every event.
func TestSlowSubscriberDropped(t *testing.T) {
	var b broker
	slow := b.subscribe(2)
	fast := b.subscribe(100)
	for range 10 {
		b.publish(Event{Type: EventEpoch})
	}
	if !slow.Dropped() {
		t.Fatal("a subscriber 8 events behind a buffer of 2 was not dropped")
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 {
		t.Fatalf("the dropped subscriber got %d events, want its buffer of 2", n)
	}
	for i := range 10 {
		if e := <-fast.C; e.Seq != uint64(i+1) {
			t.Fatalf("fast subscriber: event %d", e.Seq)
		}
	}
}
