package p2p

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// stall makes h answer a stream protocol as a peer that hangs does: it
// reads the request and never answers, until the test ends.
func stall(tb testing.TB, h *Host, proto protocol.ID) {
	done := make(chan struct{})
	tb.Cleanup(func() { close(done) })
	h.host.SetStreamHandler(proto, func(s network.Stream) {
		io.Copy(io.Discard, s)
		<-done
		s.Reset()
	})
}

// openStreams counts h's streams of proto.
func openStreams(h *Host, proto protocol.ID) int {
	n := 0
	for _, c := range h.host.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == proto {
				n++
			}
		}
	}
	return n
}

// TestStreamExchangesEndWithContext: a Welcome and a sync exchange with a
// peer that never answers end at once when the caller's context is
// cancelled or reaches its deadline, long before StreamTimeout, and report
// the context's error, not the peer's ErrProtocol; the peer sees its
// stream end. Only when StreamTimeout itself runs out, with the caller
// still waiting, is the stall the peer's fault.
func TestStreamExchangesEndWithContext(t *testing.T) {
	t.Parallel()
	const streamTimeout = 20 * time.Second
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.StreamTimeout = streamTimeout
		cfg.WelcomeHandler = newInbox().handle
		cfg.SyncProvider = (&channelLog{}).provide
	})
	a, b := hosts[0], hosts[1]
	connect(t, a, b)
	exchanges := []struct {
		name  string
		proto protocol.ID
		run   func(ctx context.Context) error
	}{
		{"welcome", welcomeProtocol, func(ctx context.Context) error {
			return a.SendWelcome(ctx, b.ID(), []byte("a Welcome"))
		}},
		{"sync", syncProtocol, func(ctx context.Context) error {
			return a.Sync(ctx, b.ID(), testChannel, nil, func(SyncEntry) error { return nil })
		}},
	}
	ends := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, x := range exchanges {
		stall(t, b, x.proto)
		for _, e := range ends {
			ctx, cancel := e.ctx()
			start := time.Now()
			err := x.run(ctx)
			took := time.Since(start)
			cancel()
			if !errors.Is(err, e.want) || errors.Is(err, ErrProtocol) {
				t.Errorf("%s, %s: %v, want %v and not ErrProtocol", x.name, e.name, err, e.want)
			}
			if took > streamTimeout/4 {
				t.Errorf("%s, %s: returned after %s, StreamTimeout is %s", x.name, e.name, took.Round(time.Millisecond), streamTimeout)
			}
			if n := openStreams(a, x.proto); n != 0 {
				t.Errorf("%s, %s: %d streams still open after the call", x.name, e.name, n)
			}
		}
	}
}

// TestStalledPeerIsBlamed: a peer that does not answer within
// StreamTimeout, while the caller's context is still live, broke the
// protocol (ErrProtocol), for both protocols.
func TestStalledPeerIsBlamed(t *testing.T) {
	t.Parallel()
	hosts := newHosts(t, 2, func(i int, cfg *Config) { cfg.StreamTimeout = 500 * time.Millisecond })
	a, b := hosts[0], hosts[1]
	connect(t, a, b)
	stall(t, b, welcomeProtocol)
	stall(t, b, syncProtocol)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.SendWelcome(ctx, b.ID(), []byte("a Welcome")); !errors.Is(err, ErrProtocol) || ctx.Err() != nil {
		t.Errorf("Welcome to a stalling peer: %v, want ErrProtocol", err)
	}
	if err := a.Sync(ctx, b.ID(), testChannel, nil, func(SyncEntry) error { return nil }); !errors.Is(err, ErrProtocol) || ctx.Err() != nil {
		t.Errorf("sync from a stalling peer: %v, want ErrProtocol", err)
	}
}
