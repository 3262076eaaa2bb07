package main_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// The benchmarks measure what a client of the socket sees: real
// spacepandad processes, the Go client over the unix socket. Set-up
// (daemons, channel, invite, accept) happens once per benchmark run, off
// the clock.

func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

func dialBench(ctx context.Context, b *testing.B, d *proctest.Daemon) *client.Client {
	b.Helper()
	c, err := client.Dial(ctx, d.Socket)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchPair starts alice and bob (bootstrapping from her) and puts both
// in a channel of alice's; it returns the channel ID.
func benchPair(ctx context.Context, b *testing.B) (alice, bob *proctest.Daemon, ch string) {
	b.Helper()
	alice = proctest.New(b, "alice")
	alice.Start(ctx)
	bob = proctest.New(b, "bob", "--bootstrap", alice.ID(ctx).Addrs[0])
	bob.Start(ctx)
	var c struct{ Channel string }
	alice.CLI(ctx, &c, "channel", "create", "bench")
	alice.Invite(ctx, c.Channel, bob.ID(ctx).PeerID)
	bob.AcceptFrom(ctx, c.Channel)
	return alice, bob, c.Channel
}

// reportPercentiles adds p50 and p99 of ds, in milliseconds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q * float64(len(ds)-1))
		return float64(ds[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkRPCPing is the round trip of node.ping, a no-op: the socket,
// the framing and jrpc2 on both sides.
func BenchmarkRPCPing(b *testing.B) {
	ctx := benchContext(b)
	d := proctest.New(b, "alice")
	d.Start(ctx)
	c := dialBench(ctx, b, d)
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, ds)
}

// BenchmarkSendAck is message.send to its response, which the daemon
// gives once the message is durable and published, in a channel with a
// second member.
func BenchmarkSendAck(b *testing.B) {
	ctx := benchContext(b)
	alice, _, ch := benchPair(ctx, b)
	c := dialBench(ctx, b, alice)
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := c.Send(ctx, ch, fmt.Sprintf("ack %d", i)); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, ds)
}

// BenchmarkSendToWatch is the latency from alice's send to the message
// event on bob's subscription, one message at a time.
func BenchmarkSendToWatch(b *testing.B) {
	ctx := benchContext(b)
	alice, bob, ch := benchPair(ctx, b)
	ca, cb := dialBench(ctx, b, alice), dialBench(ctx, b, bob)

	var mu sync.Mutex
	waiting := map[string]chan time.Time{}
	sctx, stop := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- cb.Subscribe(sctx, api.SubscribeParams{Channel: ch}, func(e api.Event) {
			if e.Type != "message" || e.Message == nil {
				return
			}
			now := time.Now()
			mu.Lock()
			w := waiting[e.Message.Text]
			delete(waiting, e.Message.Text)
			mu.Unlock()
			if w != nil {
				w <- now
			}
		})
	}()
	b.Cleanup(func() { stop(); <-subDone })

	expect := func(text string) chan time.Time {
		w := make(chan time.Time, 1)
		mu.Lock()
		waiting[text] = w
		mu.Unlock()
		return w
	}
	await := func(w chan time.Time, text string, limit time.Duration) (time.Time, bool) {
		select {
		case at := <-w:
			return at, true
		case err := <-subDone:
			b.Fatalf("bob's subscription ended: %v", err)
		case <-time.After(limit):
			mu.Lock()
			delete(waiting, text)
			mu.Unlock()
		}
		return time.Time{}, false
	}
	// Warm up until bob's subscription is live and the gossip mesh carries
	// alice's messages to him; until then a send may reach him only by
	// sync, which is not what is measured.
	for i := 0; ; i++ {
		if i == 60 {
			b.Fatal("bob never watched a warm-up message")
		}
		text := fmt.Sprintf("warm %d", i)
		w := expect(text)
		if _, err := ca.Send(ctx, ch, text); err != nil {
			b.Fatal(err)
		}
		if _, ok := await(w, text, time.Second); ok {
			break
		}
	}

	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		text := fmt.Sprintf("watch %d", i)
		w := expect(text)
		t0 := time.Now()
		if _, err := ca.Send(ctx, ch, text); err != nil {
			b.Fatal(err)
		}
		at, ok := await(w, text, time.Minute)
		if !ok {
			b.Fatalf("bob did not watch %q within a minute", text)
		}
		ds = append(ds, at.Sub(t0))
	}
	b.StopTimer()
	reportPercentiles(b, ds)
}
