package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkChannel50Hosts measures a channel topic among 50 real hosts on
// loopback, all in this process (acceptance 5). Each iteration publishes
// one message of about a chat message's size from a random host, paced at
// a given rate; the report gives the delivery latency percentiles over
// every (message, receiver) pair and the delivery ratio. On 2 cores the
// 50 hosts share the CPU, so the latency at high rates is mostly queueing
// for it. Run it with a fixed count:
//
//	go test -run '^$' -bench Channel50Hosts -benchtime 500x ./p2p/
func BenchmarkChannel50Hosts(b *testing.B) {
	const n = 50
	hosts := newHosts(b, n, func(i int, cfg *Config) { cfg.ScoreInterval = time.Minute })
	connectSparse(b, hosts, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rec := &latencyRecorder{}
	chans := make([]*Channel, n)
	for i, h := range hosts {
		c, err := h.JoinChannel(testChannel, nil)
		if err != nil {
			b.Fatal(err)
		}
		chans[i] = c
		go func() {
			for {
				m, err := c.Next(ctx)
				if err != nil {
					return
				}
				if !m.Local {
					rec.record(m.Data)
				}
			}
		}()
	}
	waitForMeshes(b, hosts, chans)

	for _, rate := range []int{10, 100} {
		b.Run(fmt.Sprintf("rate=%d/s", rate), func(b *testing.B) {
			run := rec.start()
			r := rand.New(rand.NewPCG(uint64(rate), 5))
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for i := range b.N {
				<-tick.C
				msg := binary.BigEndian.AppendUint64(nil, run)
				msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixNano()))
				msg = binary.BigEndian.AppendUint64(msg, uint64(i))
				msg = append(msg, make([]byte, 200)...)
				if err := chans[r.IntN(n)].Publish(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			want := b.N * (n - 1)
			deadline := time.Now().Add(10 * time.Second)
			for rec.delivered() < want && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			b.StopTimer()
			p50, p95, p99, got := rec.report()
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p95, "p95-ms")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(float64(got)/float64(want), "delivery-ratio")
			b.Logf("%d hosts, %d messages at %d/s: %d of %d deliveries", n, b.N, rate, got, want)
		})
	}
}

// latencyRecorder collects the delivery latencies of one benchmark run;
// messages of earlier runs that arrive late are left out.
type latencyRecorder struct {
	mu        sync.Mutex
	run       uint64
	latencies []time.Duration
}

func (r *latencyRecorder) start() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run++
	r.latencies = nil
	return r.run
}

func (r *latencyRecorder) record(msg []byte) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if binary.BigEndian.Uint64(msg) != r.run {
		return
	}
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(msg[8:])))
	r.latencies = append(r.latencies, now.Sub(sent))
}

func (r *latencyRecorder) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.latencies)
}

// report returns the 50th, 95th and 99th percentile latencies in ms and
// the number of deliveries.
func (r *latencyRecorder) report() (p50, p95, p99 float64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := slices.Sorted(slices.Values(r.latencies))
	if len(l) == 0 {
		return 0, 0, 0, 0
	}
	pct := func(p float64) float64 { return float64(l[int(p*float64(len(l)-1))].Microseconds()) / 1000 }
	return pct(0.50), pct(0.95), pct(0.99), len(l)
}
