package cli

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// logDaemon is a daemon with a channel log that behaves as spacepandad's
// does at a subscription's start: the subscription is live before its
// confirmation (Ready), every message stored from then on is an event,
// and History is the log as it is when read.
type logDaemon struct {
	*fake
	t *testing.T

	mu        sync.Mutex
	log       []api.Message
	live      chan api.Event // the subscriber's, once live
	confirmed bool
}

func (d *logDaemon) store(from, text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := uint64(len(d.log) + 1)
	m := api.Message{Channel: chID, Seq: seq, ID: "m" + strconv.FormatUint(seq, 10), From: from, Text: text, Time: t0.Add(time.Duration(seq) * time.Minute)}
	d.log = append(d.log, m)
	if d.live != nil {
		d.live <- api.Event{Cursor: "c" + strconv.FormatUint(seq, 10), Type: "message", Time: m.Time, Channel: chID, Message: &m}
	}
}

func (d *logDaemon) History(_ context.Context, p api.HistoryParams) ([]api.Message, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.confirmed {
		d.t.Error("history read before the subscription was confirmed: a message stored in between would be in neither")
	}
	ms := d.log
	if p.Limit > 0 && len(ms) > p.Limit {
		ms = ms[len(ms)-p.Limit:]
	}
	return append([]api.Message(nil), ms...), nil
}

func (d *logDaemon) SubscribeWith(ctx context.Context, p api.SubscribeParams, o client.SubscribeOptions, fn func(api.Event)) error {
	live := make(chan api.Event, 64)
	d.mu.Lock()
	d.live = live
	d.confirmed = true
	cursor := "c" + strconv.Itoa(len(d.log))
	d.mu.Unlock()
	if o.Ready != nil {
		o.Ready(cursor)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-live:
			fn(ev)
		}
	}
}

// TestChatStartupWindow: a message another member sends while chat
// starts, between the subscription's confirmation and the history read
// (the chatReady hook, so no timing is involved), is shown exactly once,
// in order with those stored before (history) and after (events); and
// the history page is delivered before any event.
func TestChatStartupWindow(t *testing.T) {
	d := &logDaemon{fake: &fake{}, t: t}
	d.store(pidB, "before 1")
	d.store(pidA, "before 2")
	old := chatReady
	t.Cleanup(func() { chatReady = old })
	chatReady = func() { d.store(pidB, "during") }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := make(chan tea.Msg, 64)
	done := make(chan error, 1)
	go func() {
		done <- chatFeed(ctx, d, chID, func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) },
			func(m tea.Msg) { msgs <- m })
	}()

	h := newChatHarness(t)
	first := <-msgs
	if _, ok := first.(chatHistoryMsg); !ok {
		t.Fatalf("first delivery %T, want the history page", first)
	}
	h.do(first)
	d.store(pidB, "after")
	for {
		m := <-msgs
		h.do(m)
		if ev, ok := m.(chatEventMsg); ok && ev.ev.Message != nil && ev.ev.Message.Text == "after" {
			break
		}
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("chatFeed returned %v", err)
	}
	sameStrings(t, "texts", h.texts(), []string{"before 1", "before 2", "during", "after"})
}
