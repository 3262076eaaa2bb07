package p2p

import (
	"bufio"
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestManyHostilePeers: 200 fresh peer IDs (on go-libp2p's mocknet, which
// makes that many cheap), each with as many Welcome streams as
// MaxPeerStreams lets it, each stream announcing the largest Welcome,
// sending 128 KiB of it and stalling, 100 MiB in all. The receiver's heap
// and goroutines stay bounded by MaxWelcomeBuffers and the stream caps,
// not by what the crowd sends, and an honest peer's Welcome still gets
// through while the crowd stalls.
func TestManyHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("200 peers")
	}
	const (
		hostile = 200
		streams = 4 // the default MaxPeerStreams
		sent    = 128 << 10
		budget  = 16 << 20
	)
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	gen := func() host.Host {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	inbox := newInbox()
	injected := func(h host.Host) Config {
		return Config{Host: h, DHTMode: DHTServer, WelcomeHandler: inbox.handle, StreamTimeout: time.Minute,
			MaxWelcomeBuffers: budget, Logger: testLogger()}
	}
	receiver := newHost(t, injected(gen()))
	honest := newHost(t, injected(gen()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	link := func(a, b host.Host) {
		if _, err := mn.LinkPeers(a.ID(), b.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
			t.Fatal(err)
		}
	}
	link(honest.host, receiver.host)
	if err := honest.SendWelcome(ctx, receiver.ID(), []byte("warm up")); err != nil {
		t.Fatal(err)
	}
	crowd := make([]host.Host, hostile)
	for i := range crowd {
		crowd[i] = gen()
		link(crowd[i], receiver.host)
	}
	// The crowd's own hosts live in this process too: measure from here.
	heapBefore, goBefore := heapAlloc(), runtime.NumGoroutine()

	var maxHeap uint64
	maxGo, maxUse := 0, 0
	sample := func() {
		if h := heapAlloc(); h > heapBefore {
			maxHeap = max(maxHeap, h-heapBefore)
		}
		maxGo = max(maxGo, runtime.NumGoroutine()-goBefore)
		maxUse = max(maxUse, receiver.welcomeBuffers.inUse())
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()

	data := make([]byte, sent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	for _, h := range crowd {
		wg.Go(func() {
			for range streams {
				s, err := h.NewStream(ctx, receiver.ID(), welcomeProtocol)
				if err != nil {
					continue
				}
				t.Cleanup(func() { s.Reset() })
				// Small writes: mocknet copies each one it carries.
				w := bufio.NewWriterSize(s, 16<<10)
				writeUvarint(w, DefaultMaxWelcomeSize-1)
				w.Write(data)
				if w.Flush() == nil {
					mu.Lock()
					opened++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// The crowd stalls: what the receiver holds now is what it pins for
	// up to StreamTimeout.
	var held uint64
	if h := heapAlloc(); h > heapBefore {
		held = h - heapBefore
	}
	// Goroutines of evicted and refused streams take a moment to end,
	// longer under -race beside other tests: the bound below is waited
	// for (up to 30 s on a loaded machine), not sampled once.
	goLimit := 4*budget/sent + 50
	heldGo := runtime.NumGoroutine() - goBefore
	tick := time.NewTicker(50 * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); heldGo > goLimit && time.Now().Before(deadline); <-tick.C {
		heldGo = runtime.NumGoroutine() - goBefore
	}
	tick.Stop()
	// An honest Welcome arrives meanwhile.
	start := time.Now()
	welcome := bytes.Repeat([]byte{1}, 256<<10)
	if err := sendWelcomeRetrying(ctx, honest, receiver.ID(), welcome, 100); err != nil {
		t.Fatalf("honest Welcome while %d hostile peers stall: %v", hostile, err)
	}
	took := time.Since(start)
	close(stop)
	<-sampled
	sample()
	t.Logf("%d hostile peers sent %d streams of %d KiB (%d MiB in all); heap above the baseline: %.1f MiB at most during the flood, %.1f MiB once the crowd stalled; goroutines: %d at most, %d once stalled (the crowd's and mocknet's included); Welcome buffers held at most %.1f MiB of %d MiB; the honest Welcome took %s",
		hostile, opened, sent>>10, opened*sent>>20, float64(maxHeap)/(1<<20), float64(held)/(1<<20), maxGo, heldGo, float64(maxUse)/(1<<20), budget>>20, took.Round(time.Millisecond))
	// Once stalled: the budget, a chunk a stream over it, and the
	// streams' own state.
	if limit := uint64(budget + 16<<20); held > limit {
		t.Errorf("the stalled crowd pins %.1f MiB, want under %d MiB", float64(held)/(1<<20), limit>>20)
	}
	if maxUse > budget {
		t.Errorf("Welcome buffers held %d bytes, budget %d", maxUse, budget)
	}
	// The peak during the flood is a figure, not a bound: it also counts
	// the crowd's write buffers and mocknet's copy of each write in
	// flight, 16 KiB a stream each, which live in this process.
	// At most streams*hostile handlers, and a few goroutines a stream on
	// the crowd's side and mocknet's.
	if limit := 4 * streams * hostile; maxGo > limit {
		t.Errorf("goroutines grew by %d, want under %d", maxGo, limit)
	}
	// Once stalled, only the streams the budget holds are left, each with
	// its handler and mocknet's transport goroutines.
	if heldGo > goLimit {
		t.Errorf("goroutines once the crowd stalled: %d more, want under %d", heldGo, goLimit)
	}
}

// TestResourceLimits: a host New builds runs libp2p's resource manager
// with p2p's explicit limits, in total and for each peer.
func TestResourceLimits(t *testing.T) {
	t.Parallel()
	hosts := newHosts(t, 2, nil)
	connect(t, hosts[0], hosts[1])
	rm := hosts[0].host.Network().ResourceManager()
	limit := func(s network.ResourceScope) rcmgr.Limit {
		l, ok := s.(rcmgr.ResourceScopeLimiter)
		if !ok {
			t.Fatalf("scope %T has no limits", s)
		}
		return l.Limit()
	}
	if err := rm.ViewSystem(func(s network.ResourceScope) error {
		l := limit(s)
		if l.GetConnTotalLimit() != hostConns || l.GetConnLimit(network.DirInbound) != hostConnsInbound ||
			l.GetStreamTotalLimit() != hostStreams || l.GetMemoryLimit() != hostMemory {
			t.Errorf("system limits: %d conns (%d in), %d streams, %d bytes", l.GetConnTotalLimit(),
				l.GetConnLimit(network.DirInbound), l.GetStreamTotalLimit(), l.GetMemoryLimit())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := rm.ViewPeer(hosts[1].ID(), func(s network.PeerScope) error {
		l := limit(s)
		if l.GetConnTotalLimit() != peerConns || l.GetStreamTotalLimit() != peerStreamsMax ||
			l.GetStreamLimit(network.DirInbound) != peerStreamsInbound || l.GetMemoryLimit() != peerMemory {
			t.Errorf("peer limits: %d conns, %d streams (%d in), %d bytes", l.GetConnTotalLimit(),
				l.GetStreamTotalLimit(), l.GetStreamLimit(network.DirInbound), l.GetMemoryLimit())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
