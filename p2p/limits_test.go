package p2p

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// openStalled opens a stream from a to b that announces a frame of size
// bytes, sends one byte of it, and stalls.
func openStalled(tb testing.TB, a, b *Host, proto protocol.ID, size uint64) network.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := a.host.NewStream(ctx, b.ID(), proto)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Reset() })
	w := bufio.NewWriter(s)
	writeUvarint(w, size)
	w.WriteByte(0)
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return s
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestStalledWelcomesHoldLittle: 60 Welcome streams that each announce the
// largest Welcome and send one byte of it make the receiver hold memory for
// what arrived, not for what was announced (240 MiB).
func TestStalledWelcomesHoldLittle(t *testing.T) {
	const streams = 60
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.WelcomeHandler = newInbox().handle
		// The per-peer cap would hide the allocation this test looks for.
		cfg.MaxPeerStreams = streams
		cfg.StreamTimeout = time.Minute
	})
	sender, receiver := hosts[0], hosts[1]
	connect(t, sender, receiver)
	// One exchange first, so that the connection's and the protocol's
	// buffers exist before the baseline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sender.SendWelcome(ctx, receiver.ID(), []byte("warm up")); err != nil {
		t.Fatal(err)
	}

	before := heapAlloc()
	for range streams {
		openStalled(t, sender, receiver, welcomeProtocol, DefaultMaxWelcomeSize)
	}
	waitFor(t, 20*time.Second, "every stream in its handler", func() bool {
		return receiver.welcomeStreams.count(sender.ID()) == streams
	})
	// A handler counts its stream before it reads the length prefix, so
	// the last ones may not have read it yet: sample the heap for half a
	// second. What a handler allocates it holds until its stream ends, so
	// every later sample would show it.
	grown := heapGrowth(before)
	t.Logf("heap grew by %.1f MiB for %d stalled streams", float64(grown)/(1<<20), streams)
	if grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB for %d stalled streams, want under 32 MiB", grown>>20, streams)
	}
}

// TestPeerStreamCap: a peer gets MaxPeerStreams Welcome streams, and as
// many sync streams, open at once; those beyond are reset, and closing one
// frees its place.
func TestPeerStreamCap(t *testing.T) {
	t.Parallel()
	const streams = 6
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.WelcomeHandler = newInbox().handle
		cfg.SyncProvider = (&channelLog{}).provide
		cfg.StreamTimeout = time.Minute
	})
	sender, receiver := hosts[0], hosts[1]
	connect(t, sender, receiver)
	for _, tc := range []struct {
		proto protocol.ID
		open  *peerStreams
	}{{welcomeProtocol, &receiver.welcomeStreams}, {syncProtocol, &receiver.syncStreams}} {
		t.Run(string(tc.proto), func(t *testing.T) {
			t.Parallel()
			const limit = 4 // the default
			ended := make(chan error, streams)
			var ss []network.Stream
			for range streams {
				// A channel ID of 200 bytes leaves a sync request unfinished
				// as a Welcome is.
				s := openStalled(t, sender, receiver, tc.proto, 200)
				ss = append(ss, s)
				go func() {
					_, err := s.Read(make([]byte, 1))
					ended <- err
				}()
			}
			for range streams - limit {
				select {
				case err := <-ended:
					if !errors.Is(err, network.ErrReset) {
						t.Fatalf("stream beyond the cap ended with %v, want a reset", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%d streams open, none reset", streams)
				}
			}
			if n := tc.open.count(sender.ID()); n != limit {
				t.Fatalf("receiver counts %d open streams, want %d", n, limit)
			}
			for _, s := range ss {
				s.Reset()
			}
			waitFor(t, 10*time.Second, "streams to be released", func() bool { return tc.open.count(sender.ID()) == 0 })
			s := openStalled(t, sender, receiver, tc.proto, 200)
			waitFor(t, 10*time.Second, "a stream after release", func() bool { return tc.open.count(sender.ID()) == 1 })
			s.Reset()
		})
	}
}

// TestReadFrameGrowsWithData: frames of lengths around the buffer's
// doubling steps are read whole, and one byte short of any is ErrProtocol.
func TestReadFrameGrowsWithData(t *testing.T) {
	for _, n := range []int{0, 1, frameChunk - 1, frameChunk, frameChunk + 1, 3*frameChunk + 7, 1 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		enc := binary.AppendUvarint(nil, uint64(n))
		got, err := readFrame(bufio.NewReader(bytes.NewReader(append(enc, data...))), n)
		if err != nil || len(got) != n || string(got) != string(data) {
			t.Fatalf("frame of %d bytes: got %d bytes, %v", n, len(got), err)
		}
		if n > 0 {
			if _, err := readFrame(bufio.NewReader(bytes.NewReader(append(enc, data[:n-1]...))), n); !errors.Is(err, ErrProtocol) {
				t.Fatalf("frame of %d bytes cut short by one: %v, want ErrProtocol", n, err)
			}
		}
	}
}

// TestStalledFramesHoldWhatArrived: Welcome streams that announce the
// largest Welcome, send a little over 1 MiB of it and stall make the
// receiver hold about what arrived, not the next doubling of it (a buffer
// that doubles as bytes arrive holds 2 MiB for 1 MiB and a byte).
func TestStalledFramesHoldWhatArrived(t *testing.T) {
	const streams, sent = 16, 1<<20 + 1
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.WelcomeHandler = newInbox().handle
		cfg.MaxPeerStreams = streams
		cfg.StreamTimeout = time.Minute
	})
	sender, receiver := hosts[0], hosts[1]
	connect(t, sender, receiver)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sender.SendWelcome(ctx, receiver.ID(), []byte("warm up")); err != nil {
		t.Fatal(err)
	}
	before := heapAlloc()
	chunk := make([]byte, sent-1) // openStalled sends the first byte
	for range streams {
		s := openStalled(t, sender, receiver, welcomeProtocol, DefaultMaxWelcomeSize)
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Until the handlers have read it all, the heap holds less than was
	// sent; then it holds what the buffers hold.
	waitFor(t, 20*time.Second, "every stream's bytes read", func() bool {
		after := heapAlloc()
		return after > before && after-before >= streams*sent
	})
	grown := heapGrowth(before)
	t.Logf("heap grew by %.1f MiB for %d streams that sent %.1f MiB each (%.1f MiB in all)",
		float64(grown)/(1<<20), streams, float64(sent)/(1<<20), float64(streams*sent)/(1<<20))
	if limit := uint64(streams*sent) * 5 / 4; grown > limit {
		t.Fatalf("heap grew by %.1f MiB for %.1f MiB received, want under %.1f MiB",
			float64(grown)/(1<<20), float64(streams*sent)/(1<<20), float64(limit)/(1<<20))
	}
}

// TestWelcomeBuffersAreBounded: inbound Welcomes of all peers hold at most
// MaxWelcomeBuffers; when a Welcome needs room, the stream that waited
// longest for bytes is reset to make it, so that an honest Welcome gets
// through while stalled ones hold the budget.
func TestWelcomeBuffersAreBounded(t *testing.T) {
	t.Parallel()
	const budget = 2 * DefaultMaxWelcomeSize
	inbox := newInbox()
	hosts := newHosts(t, 3, func(i int, cfg *Config) {
		cfg.WelcomeHandler = inbox.handle
		cfg.MaxWelcomeBuffers = budget
		cfg.StreamTimeout = time.Minute
	})
	hostile, honest, receiver := hosts[0], hosts[1], hosts[2]
	connect(t, hostile, receiver)
	connect(t, honest, receiver)
	// Four stalled streams of 2 MiB each fill the budget.
	chunk := make([]byte, 2<<20-1)
	var stalled []network.Stream
	for range 4 {
		s := openStalled(t, hostile, receiver, welcomeProtocol, DefaultMaxWelcomeSize)
		s.Write(chunk)
		stalled = append(stalled, s)
	}
	waitFor(t, 20*time.Second, "the budget to fill", func() bool {
		return receiver.welcomeBuffers.inUse() > budget-(2<<20)
	})
	if n := receiver.welcomeBuffers.inUse(); n > budget {
		t.Fatalf("Welcome buffers hold %d bytes, budget %d", n, budget)
	}
	// Once they have waited a second, an honest Welcome evicts one.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	welcome := bytes.Repeat([]byte{7}, 256<<10)
	if err := sendWelcomeRetrying(ctx, honest, receiver.ID(), welcome, 50); err != nil {
		t.Fatalf("honest Welcome while stalled streams hold the budget: %v", err)
	}
	if n := receiver.welcomeBuffers.inUse(); n > budget {
		t.Fatalf("Welcome buffers hold %d bytes, budget %d", n, budget)
	}
	reset := 0
	for _, s := range stalled {
		s.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.Read(make([]byte, 1)); errors.Is(err, network.ErrReset) {
			reset++
		}
	}
	if reset == 0 {
		t.Fatal("no stalled stream was reset")
	}
	t.Logf("%d of %d stalled streams reset", reset, len(stalled))
}

// heapGrowth is the most the heap grew above before in half a second of
// samples: a handler that has not read its length prefix yet allocates
// during them, and what it allocates it holds until its stream ends.
func heapGrowth(before uint64) uint64 {
	var grown uint64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range 10 {
		<-tick.C
		if after := heapAlloc(); after > before {
			grown = max(grown, after-before)
		}
	}
	return grown
}

// sendWelcomeRetrying sends a Welcome, trying again every 100 ms up to
// tries times while the receiver refuses it (its budget held by others).
func sendWelcomeRetrying(ctx context.Context, from *Host, to peer.ID, welcome []byte, tries int) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
	for range tries {
		if err = from.SendWelcome(ctx, to, welcome); err == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return err
		}
	}
	return err
}
