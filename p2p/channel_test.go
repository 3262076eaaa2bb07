package p2p

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

var testChannel = []byte("group id of a test channel")

// okValidator accepts "ok:" messages, ignores "stale:" ones and rejects
// everything else, remembering who handed over what it rejected.
type okValidator struct {
	mu      sync.Mutex
	garbage map[peer.ID]int
}

func (v *okValidator) validate(_ context.Context, from peer.ID, data []byte) Verdict {
	switch {
	case strings.HasPrefix(string(data), "ok:"):
		return Accept
	case strings.HasPrefix(string(data), "stale:"):
		return Ignore
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.garbage == nil {
		v.garbage = make(map[peer.ID]int)
	}
	v.garbage[from]++
	return Reject
}

// rejected returns how many messages v rejected from each peer.
func (v *okValidator) rejected() map[peer.ID]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.garbage)
}

func TestTopicName(t *testing.T) {
	// sha256("group id of a test channel")
	got := TopicName(testChannel)
	if !strings.HasPrefix(got, "/spacepanda/ch/") || len(got) != len("/spacepanda/ch/")+64 {
		t.Fatalf("TopicName = %q", got)
	}
	if TopicName([]byte("other")) == got {
		t.Fatal("two channels share a topic")
	}
}

// TestChannelDelivers1000Messages is acceptance 2: a channel among 10
// hosts, connected sparsely so that messages are relayed, delivers 1,000
// messages published from every host to every host, none lost.
func TestChannelDelivers1000Messages(t *testing.T) {
	const n, perHost = 10, 100
	hosts := newHosts(t, n, nil)
	connectSparse(t, hosts, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	chans := make([]*Channel, n)
	cols := make([]*collector, n)
	vals := make([]*okValidator, n)
	for i, h := range hosts {
		vals[i] = &okValidator{}
		c, err := h.JoinChannel(testChannel, vals[i].validate)
		if err != nil {
			t.Fatal(err)
		}
		chans[i], cols[i] = c, collect(ctx, c)
	}
	waitForMeshes(t, hosts, chans)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range chans {
		wg.Go(func() {
			for k := range perHost {
				if err := c.Publish(ctx, fmt.Appendf(nil, "ok:%d:%d", i, k)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every host to receive every message", func() bool {
		for _, col := range cols {
			if col.count() < n*perHost {
				return false
			}
		}
		return true
	})
	for i, col := range cols {
		if got := col.count(); got != n*perHost {
			t.Errorf("host %d received %d distinct messages, want %d", i, got, n*perHost)
		}
		for m, times := range col.seen {
			if times != 1 {
				t.Errorf("host %d received %q %d times", i, m, times)
			}
		}
	}
	t.Logf("%d messages to %d hosts in %s", n*perHost, n, time.Since(start))
}

// TestChannelRejectsInvalid is the rest of acceptance 2: garbage that a
// rogue peer publishes is rejected by every peer it reaches directly, which
// neither delivers nor forwards it (no honest peer ever receives it from
// another honest peer) and lowers the rogue's score. A stale message is
// ignored without penalty.
func TestChannelRejectsInvalid(t *testing.T) {
	const n, garbage = 10, 3
	hosts := newHosts(t, n+1, nil)
	honest, rogue := hosts[:n], hosts[n]
	connectSparse(t, honest, 2)
	connect(t, rogue, honest[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	chans := make([]*Channel, n+1)
	cols := make([]*collector, n)
	vals := make([]*okValidator, n)
	for i, h := range honest {
		vals[i] = &okValidator{}
		c, err := h.JoinChannel(testChannel, vals[i].validate)
		if err != nil {
			t.Fatal(err)
		}
		chans[i], cols[i] = c, collect(ctx, c)
	}
	// The rogue's own validator lets anything out.
	rc, err := rogue.JoinChannel(testChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	chans[n] = rc
	waitForMeshes(t, hosts, chans)

	// A valid message from the rogue reaches everyone: the paths are open.
	if err := rc.Publish(ctx, []byte("ok:from rogue")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the rogue's valid message", func() bool {
		for _, col := range cols {
			if !col.has("ok:from rogue") {
				return false
			}
		}
		return true
	})
	if err := rc.Publish(ctx, []byte("stale:epoch 3")); err != nil {
		t.Fatal(err)
	}
	for i := range garbage {
		if err := rc.Publish(ctx, fmt.Appendf(nil, "garbage %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every honest peer that received the garbage did so from the rogue and
	// rejected all of it; its score of the rogue fell below the publish
	// threshold (3 invalid messages are -90).
	reached := func(i int) bool { return vals[i].rejected()[rogue.ID()] == garbage }
	waitFor(t, 20*time.Second, "the rogue's neighbours to reject and score it", func() bool {
		if !reached(0) {
			return false
		}
		for i := range honest {
			if s, _ := honest[i].PeerScore(rogue.ID()); reached(i) && s > -50 {
				return false
			}
		}
		return true
	})
	// Give any forwarded copy time to arrive before checking none did.
	time.Sleep(time.Second)
	direct := 0
	for i, v := range vals {
		for from, k := range v.rejected() {
			if from != rogue.ID() {
				t.Errorf("host %d received %d invalid messages from honest %s: they were forwarded", i, k, from)
			}
		}
		if reached(i) {
			direct++
		}
	}
	for i, col := range cols {
		col.mu.Lock()
		for m := range col.seen {
			if !strings.HasPrefix(m, "ok:") {
				t.Errorf("host %d delivered %q", i, m)
			}
		}
		col.mu.Unlock()
	}
	for i := range honest {
		for j := range honest {
			if s, ok := honest[i].PeerScore(honest[j].ID()); ok && s < 0 {
				t.Errorf("host %d scores honest host %d %.1f", i, j, s)
			}
		}
	}
	s, _ := honest[0].PeerScore(rogue.ID())
	t.Logf("%d of %d honest hosts got the garbage, all from the rogue; the rogue's score at host 0: %.1f", direct, n, s)
}

// TestPublishOnFreshTopic: the first message published right after joining
// a topic is not lost while the mesh forms.
func TestPublishOnFreshTopic(t *testing.T) {
	hosts := newHosts(t, 2, nil)
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := hosts[1].JoinChannel(testChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	col := collect(ctx, b)
	a, err := hosts[0].JoinChannel(testChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first message", func() bool { return col.has("first") })
}

func TestChannelLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxMessageSize = 100
	cfg.PublishWait = 10 * time.Millisecond
	h := newHost(t, cfg)
	ctx := context.Background()
	c, err := h.JoinChannel(testChannel, (&okValidator{}).validate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.JoinChannel(testChannel, nil); !errors.Is(err, ErrChannelJoined) {
		t.Errorf("second JoinChannel: %v, want ErrChannelJoined", err)
	}
	if err := c.Publish(ctx, make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized Publish: %v, want ErrTooLarge", err)
	}
	if err := c.Publish(ctx, []byte("garbage")); !errors.Is(err, ErrMessageRejected) {
		t.Errorf("Publish of what the validator rejects: %v, want ErrMessageRejected", err)
	}
	// Alone in the topic, Publish waits PublishWait, then sends to nobody.
	if err := c.Publish(ctx, []byte("ok:alone")); err != nil {
		t.Errorf("Publish alone: %v", err)
	}
	c.Close()
	if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
	// A closed channel can be joined again.
	c, err = h.JoinChannel(testChannel, nil)
	if err != nil {
		t.Fatalf("rejoining: %v", err)
	}
	c.Close()
}

// TestSlowValidatorTimesOut is a validator stuck on one message: its
// context must end after ValidateTimeout, its late verdict must not count
// (the message is not delivered), and the channel must go on delivering.
func TestSlowValidatorTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hosts := newHosts(t, 2, func(_ int, cfg *Config) { cfg.ValidateTimeout = timeout })
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ended := make(chan time.Duration, 1)
	slow := func(ctx context.Context, _ peer.ID, data []byte) Verdict {
		if strings.HasPrefix(string(data), "slow:") {
			start := time.Now()
			select {
			case <-ctx.Done():
				ended <- time.Since(start)
			case <-time.After(10 * time.Second):
			}
		}
		return Accept
	}
	b, err := hosts[1].JoinChannel(testChannel, slow)
	if err != nil {
		t.Fatal(err)
	}
	col := collect(ctx, b)
	a, err := hosts[0].JoinChannel(testChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, []byte("slow:1")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ended:
		t.Logf("validator's context ended after %s", d)
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck validator's context did not end")
	}
	if err := a.Publish(ctx, []byte("ok:2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the message after the stuck one", func() bool { return col.has("ok:2") })
	if col.has("slow:1") {
		t.Error("a verdict returned after the timeout was counted")
	}
}

// TestChannelDeliversInOrder is one sender's burst: what arrives must
// arrive in the order it was sent. A member reads each sender's messages
// in order and waits for sync after a gap, so a reordered burst (pubsub's
// default validates each message in a goroutine of its own) sent most of
// a busy channel through sync.
func TestChannelDeliversInOrder(t *testing.T) {
	const n = 2000
	hosts := newHosts(t, 2, nil)
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var val okValidator
	a, err := hosts[0].JoinChannel(testChannel, val.validate)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hosts[1].JoinChannel(testChannel, val.validate)
	if err != nil {
		t.Fatal(err)
	}
	waitForMeshes(t, hosts, []*Channel{a, b})
	go func() {
		for k := range n {
			if err := a.Publish(ctx, fmt.Appendf(nil, "ok:%d", k)); err != nil {
				return
			}
		}
		a.Publish(ctx, []byte("ok:end"))
	}()
	last, got, reordered := -1, 0, 0
	for {
		m, err := b.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if string(m.Data) == "ok:end" {
			break
		}
		var k int
		if _, err := fmt.Sscanf(string(m.Data), "ok:%d", &k); err != nil {
			t.Fatalf("message %q", m.Data)
		}
		if k < last {
			reordered++
		}
		last = max(last, k)
		got++
	}
	t.Logf("%d of %d delivered", got, n)
	if reordered > 0 {
		t.Fatalf("%d of %d messages arrived after a later one", reordered, got)
	}
}
