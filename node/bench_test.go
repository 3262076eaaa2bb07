package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/p2p"
)

// pair is two loopback nodes in one channel, for the benchmarks.
func pair(b *testing.B) (alice, bob *nodetest.Peer, ch []byte, ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	c := nodetest.NewLoopback(b)
	alice, bob = c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	alice.Invite(ctx, info.ID, bob)
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, bob)
	return alice, bob, info.ID, ctx
}

// BenchmarkInviteToFirstMessage is create, invite (KeyPackage fetched
// from the DHT), accept, and the first message received by the invitee,
// settle window (the default, 1 s... here nodetest's 300 ms) included.
func BenchmarkInviteToFirstMessage(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := nodetest.NewLoopback(b)
	c.Configure = func(_ string, cfg *node.Config) { cfg.SettleWindow = time.Second }
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		info, err := alice.CreateChannel(ctx, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.Node.Invite(ctx, info.ID, bob.ID()); err != nil {
			b.Fatal(err)
		}
		ev := bob.AwaitEvent(ctx, "invitation", func(e node.Event) bool {
			return e.Type == node.EventInvitation && string(e.Channel) == string(info.ID)
		})
		if _, err := bob.Accept(ctx, ev.Invitation.ID); err != nil {
			b.Fatal(err)
		}
		body := fmt.Sprintf("first %d", i)
		if _, err := alice.Send(ctx, info.ID, body); err != nil {
			b.Fatal(err)
		}
		bob.AwaitEvent(ctx, "first message", func(e node.Event) bool {
			return e.Type == node.EventMessage && e.Message.Body == body
		})
	}
}

// BenchmarkLatency sends at a fixed rate from alice and reports the
// delivery latency at bob (send call to bob's event), p50 and p99.
func BenchmarkLatency(b *testing.B) {
	for _, rate := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			alice, bob, ch, ctx := pair(b)
			sub := bob.Subscribe(1 << 16)
			defer sub.Close()
			var (
				mu    sync.Mutex
				sent  = make(map[string]time.Time)
				lats  []time.Duration
				count = b.N
			)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for e := range sub.C {
					if e.Type != node.EventMessage {
						continue
					}
					mu.Lock()
					if t0, ok := sent[e.Message.Body]; ok {
						lats = append(lats, time.Since(t0))
					}
					n := len(lats)
					mu.Unlock()
					if n == count {
						return
					}
				}
			}()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			b.ResetTimer()
			for i := range count {
				<-tick.C
				body := fmt.Sprintf("m%d", i)
				mu.Lock()
				sent[body] = time.Now()
				mu.Unlock()
				if _, err := alice.Send(ctx, ch, body); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-ctx.Done():
				b.Fatal(ctx.Err())
			}
			b.StopTimer()
			slices.Sort(lats)
			b.ReportMetric(float64(lats[len(lats)*50/100].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lats[min(len(lats)-1, len(lats)*99/100)].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkThroughput is messages per second from alice to bob, each
// durable at alice before it is published and at bob before it is
// delivered, beside the same count of same-size messages on a raw
// gossipsub topic between the same two hosts (no MLS, no store).
func BenchmarkThroughput(b *testing.B) {
	const size = 256
	body := string(make([]byte, size))
	// Sends are acknowledged once durable, so a sender's throughput is
	// its sends in flight per synced write: 8 and 64 of them.
	for _, senders := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("spacepanda/senders=%d", senders), func(b *testing.B) {
			alice, bob, ch, ctx := pair(b)
			sub := bob.Subscribe(b.N + 1024)
			defer sub.Close()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + senders - 1) / senders
			for range senders {
				wg.Go(func() {
					for range per {
						if _, err := alice.Send(ctx, ch, body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			for got := 0; got < per*senders; {
				select {
				case e := <-sub.C:
					if e.Type == node.EventMessage {
						got++
					}
				case <-ctx.Done():
					b.Fatal(ctx.Err())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(per*senders)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
	b.Run("raw-gossipsub", func(b *testing.B) {
		alice, bob, _, ctx := pair(b)
		topic := make([]byte, 16)
		rand.Read(topic)
		ta, err := alice.Host().JoinChannel(topic, nil)
		if err != nil {
			b.Fatal(err)
		}
		tb, err := bob.Host().JoinChannel(topic, nil)
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, size+100) // about what MLS framing adds
		// Wait for the mesh: a first message must arrive.
		awaitRaw(ctx, b, ta, tb, msg)
		b.ResetTimer()
		start := time.Now()
		go func() {
			for i := range b.N {
				m := append([]byte(nil), msg...)
				m[0], m[1], m[2], m[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				if err := ta.Publish(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		// Raw gossipsub drops what a full queue cannot take and has no
		// sync to bring it back: count what arrives until a second of
		// silence, and report the loss beside the rate.
		got := 0
		last := time.Now()
		for got < b.N {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := tb.Next(rctx)
			cancel()
			if err != nil {
				break
			}
			got++
			last = time.Now()
		}
		b.StopTimer()
		b.ReportMetric(float64(got)/last.Sub(start).Seconds(), "msgs/s")
		b.ReportMetric(float64(b.N-got), "lost")
	})
}

func awaitRaw(ctx context.Context, b *testing.B, from, to *p2p.Channel, msg []byte) {
	for {
		probe := append([]byte("probe"), msg[:8]...)
		rand.Read(probe[5:])
		if err := from.Publish(ctx, probe); err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		m, err := to.Next(rctx)
		cancel()
		if err == nil && string(m.Data) == string(probe) {
			return
		}
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
	}
}

// BenchmarkRestartCaughtUp is a node restarted (closed and reopened on
// its directory) after 100 messages it missed, until it has them all.
func BenchmarkRestartCaughtUp(b *testing.B) {
	alice, bob, ch, ctx := pair(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		bob.Stop()
		for j := range 100 {
			if _, err := alice.Send(ctx, ch, fmt.Sprintf("%d/%d", i, j)); err != nil {
				b.Fatal(err)
			}
		}
		want := len(alice.History(ch))
		b.StartTimer()
		bob.Start()
		bob.Await(ctx, "caught up", func() bool { return len(bob.History(ch)) >= want })
	}
}
