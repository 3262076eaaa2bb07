package p2p

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Test hosts listen on loopback only, never dial anything else, and run no
// mDNS, port mapping or relay.
var loopbackAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// testLogger logs to stderr when P2P_TEST_LOG is set, and nowhere otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("P2P_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is a loopback DHT server with quick score sampling.
func testConfig(tb testing.TB) Config {
	tb.Helper()
	id, err := GenerateIdentity(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return Config{
		Identity:        id,
		ListenAddrs:     loopbackAddrs,
		DHTMode:         DHTServer,
		ScoreInterval:   100 * time.Millisecond,
		WelcomeRetryMax: 2 * time.Second,
		StreamTimeout:   10 * time.Second,
		Logger:          testLogger(),
	}
}

// newHost starts a host from cfg and closes it when the test ends.
func newHost(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// newHosts starts n hosts, each configured by edit (which may be nil).
func newHosts(tb testing.TB, n int, edit func(i int, cfg *Config)) []*Host {
	tb.Helper()
	hosts := make([]*Host, n)
	for i := range hosts {
		cfg := testConfig(tb)
		if edit != nil {
			edit(i, &cfg)
		}
		hosts[i] = newHost(tb, cfg)
	}
	return hosts
}

// connect dials b from a.
func connect(tb testing.TB, a, b *Host) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Addrs()[0]); err != nil {
		tb.Fatalf("connecting %s to %s: %v", a.ID(), b.ID(), err)
	}
}

// connectSparse links hosts in a ring with a few random chords, so that
// messages must be relayed across several hops.
func connectSparse(tb testing.TB, hosts []*Host, seed uint64) {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	n := len(hosts)
	for i := range hosts {
		connect(tb, hosts[i], hosts[(i+1)%n])
		if n > 4 {
			j := (i + 2 + r.IntN(n-3)) % n
			connect(tb, hosts[i], hosts[j])
		}
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForMeshes waits until every channel sees each of its host's
// connected peers in the topic, and then for two heartbeats, so that the
// meshes have been grafted.
func waitForMeshes(tb testing.TB, hosts []*Host, chans []*Channel) {
	tb.Helper()
	waitFor(tb, 30*time.Second, "topic peers", func() bool {
		for i, c := range chans {
			if len(c.Peers()) < len(hosts[i].Connected()) {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
}

// collector reads a channel into a set until ctx ends.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
	cond chan struct{}
}

func collect(ctx context.Context, c *Channel) *collector {
	col := &collector{seen: make(map[string]int), cond: make(chan struct{}, 1)}
	go func() {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				return
			}
			col.mu.Lock()
			col.seen[string(m.Data)]++
			col.mu.Unlock()
			select {
			case col.cond <- struct{}{}:
			default:
			}
		}
	}()
	return col
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) has(data string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[data] > 0
}

// identity makes a key and its peer ID for a host started later.
func identity(tb testing.TB) (crypto.PrivKey, peer.ID) {
	tb.Helper()
	priv, err := GenerateIdentity(nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, id
}
