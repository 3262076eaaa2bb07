package node_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
)

// Convergence time, issue 10's acceptance 5: how long a channel takes to
// be in one epoch with one epoch authenticator at every member, with
// every message of the round in every history, after a fork (concurrent
// commits) and after a partition heals. Each iteration is one fault; the
// benchmark reports the p50 and p99 over its iterations (ns/op is their
// mean). Run with -benchtime Nx to choose how many faults:
//
//	go test -run '^$' -bench Convergence -benchtime 50x ./node/
//
// Parameters: nodetest's (settle window 300 ms, sync every 2 s) unless a
// sub-benchmark's name says otherwise, the default rewind window (5).

// BenchmarkConvergenceAfterFork: 5 members over mocknet links of 20-200
// ms drawn per link (seed 1); in each iteration 3 members commit an
// update at once and send a message; measured from the commits' start to
// every member converged with the three messages.
func BenchmarkConvergenceAfterFork(b *testing.B) {
	for _, settle := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		b.Run(fmt.Sprintf("members=5/settle=%s", settle), func(b *testing.B) {
			benchFork(b, 5, 3, settle)
		})
	}
}

func benchFork(b *testing.B, size, committers int, settle time.Duration) {
	ctx := testContext(b, time.Hour)
	rng := rand.New(rand.NewPCG(1, 1))
	c := nodetest.NewMocknet(b, mocknet.LinkOptions{})
	c.Configure = func(_ string, cfg *node.Config) { cfg.SettleWindow = settle }
	for i := range size {
		c.Add(fmt.Sprintf("n%d", i))
	}
	all := c.Peers()
	for i, x := range all {
		for _, y := range all[i+1:] {
			lat := time.Duration(20+rng.IntN(181)) * time.Millisecond
			for _, l := range c.Mock.LinksBetweenPeers(x.ID(), y.ID()) {
				l.SetOptions(mocknet.LinkOptions{Latency: lat})
			}
		}
	}
	for _, p := range all[1:] {
		p.PublishKeyPackages(ctx)
	}
	info, err := all[0].CreateChannel(ctx, "fork", "")
	if err != nil {
		b.Fatal(err)
	}
	ch := info.ID
	for i, p := range all[1:] {
		all[0].Invite(ctx, ch, p)
		nodetest.AwaitConverged(ctx, ch, i+2, all[:i+2]...)
	}
	var took []time.Duration
	var rewinds uint64
	for _, p := range all {
		rewinds -= p.Rewinds(ch)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		var wg sync.WaitGroup
		bodies := make([]string, committers)
		for j, k := range rng.Perm(size)[:committers] {
			p := all[k]
			bodies[j] = fmt.Sprintf("fork %d from %s", i, p.Name)
			wg.Go(func() {
				if err := p.Update(ctx, ch); err != nil {
					b.Errorf("%s's update: %v", p.Name, err)
					return
				}
				if _, err := p.Send(ctx, ch, bodies[j]); err != nil {
					b.Errorf("%s's send: %v", p.Name, err)
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		awaitStormConverged(ctx, b, ch, size, all)
		for _, p := range all {
			for _, body := range bodies {
				awaitOnce(ctx, b, p, ch, body)
			}
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	for _, p := range all {
		rewinds += p.Rewinds(ch)
	}
	reportQuantiles(b, took)
	b.ReportMetric(float64(rewinds)/float64(len(took)), "rewinds/op")
}

// BenchmarkConvergenceAfterHeal: 6 members over 20 ms links split into
// two random halves that commit and send apart (splitAndCommit), then
// joined again; measured from the heal to every member
// converged with every message of both halves. The partition is held 1 s
// (its length does not change the heal: what each half did does).
func BenchmarkConvergenceAfterHeal(b *testing.B) {
	pc := newPartitionCluster(b, 6, 0)
	ctx := testContext(b, time.Hour)
	rng := rand.New(rand.NewPCG(1, 1))
	var took []time.Duration
	var rewinds uint64
	for _, p := range pc.all {
		rewinds -= p.Rewinds(pc.ch)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		x, y, _, want := pc.splitAndCommit(ctx, b, rng, fmt.Sprintf("heal %d", i))
		time.Sleep(time.Second) // the partition's length, not a wait for an event
		b.StartTimer()
		healed := time.Now()
		pc.heal(b, x, y)
		awaitStormConverged(ctx, b, pc.ch, len(pc.all), pc.all)
		for _, p := range pc.all {
			for _, w := range want {
				awaitOnce(ctx, b, p, pc.ch, w)
			}
		}
		took = append(took, time.Since(healed))
	}
	b.StopTimer()
	for _, p := range pc.all {
		rewinds += p.Rewinds(pc.ch)
	}
	reportQuantiles(b, took)
	b.ReportMetric(float64(rewinds)/float64(len(took)), "rewinds/op")
}

// reportQuantiles reports the p50 and p99 of took, in milliseconds
// (nearest rank).
func reportQuantiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	s := slices.Clone(took)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return float64(s[max(0, min(i, len(s)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(s[len(s)-1])/float64(time.Millisecond), "max-ms")
}
