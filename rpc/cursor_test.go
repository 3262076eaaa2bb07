package rpc

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// TestCursorAcrossRestart: a cursor from before the node restarted on
// the same data directory is cursor_expired with a message that says so,
// even once the new run has as many events (the old daemon numbered its
// events from 1 on every open, so such a cursor silently replayed other
// events); a cursor of the current run still resumes.
func TestCursorAcrossRestart(t *testing.T) {
	ctx := ctxT(t)
	p := cluster(t).Add("alice")
	c := serve(t, p, nil).dial()
	all := subscribe(t, c, api.SubscribeParams{Cursor: api.CursorOldest})
	if _, err := c.Create(ctx, api.CreateParams{Name: "before"}); err != nil {
		t.Fatal(err)
	}
	es := all.await(t, "an event", func(es []api.Event) bool { return len(es) > 0 })
	old := es[0].Cursor
	oldBoot := p.BootID()

	p.Restart()
	if p.BootID() == oldBoot {
		t.Fatalf("the boot ID %s survived a restart", oldBoot)
	}
	c2 := serve(t, p, nil).dial()
	// Events of the new run, until it has passed the old cursor's Seq.
	for p.LastEvent() < cursorSeq(t, old) {
		if _, err := c2.Create(ctx, api.CreateParams{Name: "after"}); err != nil {
			t.Fatal(err)
		}
	}
	err := c2.Subscribe(ctx, api.SubscribeParams{Cursor: old}, func(e api.Event) {
		t.Errorf("replayed %+v from a cursor of the previous run", e)
	})
	wantCode(t, err, api.CodeCursorExpired)
	if !strings.Contains(err.Error(), "restarted") {
		t.Errorf("the error does not say the daemon restarted: %v", err)
	}

	// The new run's own cursors work.
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	var cursor string
	done := make(chan error, 1)
	go func() {
		done <- c2.SubscribeWith(sub, api.SubscribeParams{}, client.SubscribeOptions{Ready: func(cur string) {
			cursor = cur
			cancel()
		}}, func(api.Event) {})
	}()
	<-done
	if !strings.HasPrefix(cursor, p.BootID()+"-") {
		t.Fatalf("cursor %q lacks the boot ID %s", cursor, p.BootID())
	}
	resumed := subscribe(t, c2, api.SubscribeParams{Cursor: cursor})
	if _, err := c2.Create(ctx, api.CreateParams{Name: "later"}); err != nil {
		t.Fatal(err)
	}
	resumed.await(t, "an event after the current run's cursor", func(es []api.Event) bool { return len(es) > 0 })
}

// TestSubscribeReady: Ready is called once, with the subscription's
// cursor, before any event; a message sent from inside Ready (after the
// daemon confirmed the subscription) arrives as an event exactly once,
// and is also in history read there: nothing stored after Ready is
// missed by a caller that reads history in it.
func TestSubscribeReady(t *testing.T) {
	ctx := ctxT(t)
	ca, cb, _ := pair(t, nil)
	var (
		mu      sync.Mutex
		readies int
		cursor  string
		hist    []api.Message
		got     []api.Event
		changed = make(chan struct{}, 1)
	)
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- cb.SubscribeWith(sub, api.SubscribeParams{Channel: "log"}, client.SubscribeOptions{Ready: func(cur string) {
			mu.Lock()
			readies++
			cursor = cur
			early := len(got)
			mu.Unlock()
			if early != 0 {
				t.Errorf("%d events before Ready", early)
			}
			// Another node sends, then this one reads history: the message
			// is durable at alice before Send returns, and reaches bob later,
			// so it must come as an event.
			if _, err := ca.Send(ctx, "log", "during"); err != nil {
				t.Error(err)
			}
			if _, err := cb.Send(ctx, "log", "own"); err != nil {
				t.Error(err)
			}
			h, err := cb.History(ctx, api.HistoryParams{Channel: "log"})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			hist = h
			mu.Unlock()
		}}, func(e api.Event) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	for {
		mu.Lock()
		n, m := countText(got, "during"), countText(got, "own")
		mu.Unlock()
		if n > 0 && m > 0 {
			break
		}
		select {
		case <-changed:
		case err := <-done:
			t.Fatalf("the subscription ended: %v", err)
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if readies != 1 || cursor == "" {
		t.Fatalf("Ready called %d times, cursor %q", readies, cursor)
	}
	for _, text := range []string{"during", "own"} {
		if n := countText(got, text); n != 1 {
			t.Errorf("%q came %d times as an event, want once", text, n)
		}
	}
	if len(got) > 0 && cursorSeq(t, got[0].Cursor) <= cursorSeq(t, cursor) {
		t.Errorf("first event %s is not after Ready's cursor %s", got[0].Cursor, cursor)
	}
	own := false
	for _, m := range hist {
		own = own || m.Text == "own"
	}
	if !own {
		t.Errorf("history read in Ready lacks the message this node sent there: %+v", hist)
	}
}
