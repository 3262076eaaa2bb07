package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// channelLog is a member's log of a channel, as node would keep it: every
// accepted message in arrival order, with its index as cursor.
type channelLog struct {
	mu      sync.Mutex
	entries [][]byte
	members map[peer.ID]bool // who may sync; nil allows everyone
}

func (l *channelLog) append(data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, data)
}

func (l *channelLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *channelLog) provide(_ context.Context, from peer.ID, channel, after []byte, limit int) ([]SyncEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !bytes.Equal(channel, testChannel) {
		return nil, fmt.Errorf("unknown channel")
	}
	if l.members != nil && !l.members[from] {
		return nil, fmt.Errorf("not a member")
	}
	start := uint64(0)
	if after != nil {
		start = binary.BigEndian.Uint64(after)
	}
	var page []SyncEntry
	for i := start; i < uint64(len(l.entries)) && len(page) < limit; i++ {
		page = append(page, SyncEntry{Cursor: binary.BigEndian.AppendUint64(nil, i+1), Data: l.entries[i]})
	}
	return page, nil
}

// TestSyncCatchUp is acceptance 4's building block: a member that is
// offline while the channel carries 50 messages and 3 commits gets all 53,
// in order, from another member's log through /spacepanda/sync/1.0.0, in
// several bounded pages; a later sync from its last cursor gets nothing
// new; a peer the log refuses gets ErrSyncRefused.
func TestSyncCatchUp(t *testing.T) {
	t.Parallel()
	logs := []*channelLog{{}, {}}
	hosts := newHosts(t, 2, func(i int, cfg *Config) { cfg.SyncProvider = logs[i].provide })
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	chans := make([]*Channel, 2)
	for i, h := range hosts {
		c, err := h.JoinChannel(testChannel, nil)
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = c
		go func() {
			for {
				m, err := c.Next(ctx)
				if err != nil {
					return
				}
				logs[i].append(m.Data)
			}
		}()
	}
	waitForMeshes(t, hosts, chans)

	// Members 0 and 1 talk while the third is away: 3 commits among 50
	// messages, sent by both.
	var want [][]byte
	for i := range 53 {
		data := fmt.Appendf(nil, "message %d", i)
		if i%18 == 0 {
			data = fmt.Appendf(nil, "commit to epoch %d", i/18+1)
		}
		if err := chans[i%2].Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		want = append(want, data)
		// Commits order the log: wait for each before the next message.
		waitFor(t, 10*time.Second, "both logs", func() bool { return logs[0].len() == i+1 && logs[1].len() == i+1 })
	}

	cfg := testConfig(t)
	cfg.SyncPageLimit = 8
	cfg.BootstrapPeers = hosts[0].Addrs()
	away := newHost(t, cfg)
	var got [][]byte
	var cursor []byte
	err := away.Sync(ctx, hosts[0].ID(), testChannel, nil, func(e SyncEntry) error {
		got, cursor = append(got, e.Data), e.Cursor
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("synced %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: %q, want %q", i, got[i], want[i])
		}
	}

	// Resuming from the last cursor: nothing new, then one new message.
	logs[1].append([]byte("later"))
	got = nil
	err = away.Sync(ctx, hosts[1].ID(), testChannel, cursor, func(e SyncEntry) error {
		got = append(got, e.Data)
		return nil
	})
	if err != nil || len(got) != 1 || string(got[0]) != "later" {
		t.Fatalf("resumed sync: %q, %v", got, err)
	}

	// The callback's error stops the sync.
	stop := errors.New("stop")
	if err := away.Sync(ctx, hosts[0].ID(), testChannel, nil, func(SyncEntry) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("stopped sync: %v", err)
	}

	logs[0].mu.Lock()
	logs[0].members = map[peer.ID]bool{hosts[1].ID(): true}
	logs[0].mu.Unlock()
	err = away.Sync(ctx, hosts[0].ID(), testChannel, nil, func(SyncEntry) error { return nil })
	var refused *RefusedError
	if !errors.Is(err, ErrSyncRefused) || !errors.As(err, &refused) || refused.Reason != "not a member" {
		t.Fatalf("sync by a non-member: %v", err)
	}
}

// TestSyncPageBounds: a provider that ignores the limit is cut to it, and
// a provider whose cursor does not advance is caught.
func TestSyncPageBounds(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	provider := func(_ context.Context, _ peer.ID, _, after []byte, limit int) ([]SyncEntry, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if limit != 4 {
			return nil, fmt.Errorf("limit %d, want 4", limit)
		}
		// Always the same ten entries, with the same cursor.
		page := make([]SyncEntry, 10)
		for i := range page {
			page[i] = SyncEntry{Cursor: []byte("same"), Data: []byte("x")}
		}
		return page, nil
	}
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.SyncProvider = provider
		cfg.SyncPageLimit = 4
	})
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	err := hosts[0].Sync(ctx, hosts[1].ID(), testChannel, nil, func(SyncEntry) error { n++; return nil })
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("sync with a stuck cursor: %v, want ErrProtocol", err)
	}
	if n != 8 || calls != 2 {
		t.Fatalf("got %d entries in %d pages, want 8 in 2", n, calls)
	}
}
