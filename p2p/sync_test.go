package p2p

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
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

// provide serves the log as a SyncProvider should: within limit and, but
// for a first entry, within maxBytes.
func (l *channelLog) provide(_ context.Context, from peer.ID, channel, after []byte, limit, maxBytes int) ([]SyncEntry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !bytes.Equal(channel, testChannel) {
		return nil, false, fmt.Errorf("unknown channel")
	}
	if l.members != nil && !l.members[from] {
		return nil, false, fmt.Errorf("not a member")
	}
	start := uint64(0)
	if after != nil {
		start = binary.BigEndian.Uint64(after)
	}
	var page []SyncEntry
	total := 0
	for i := start; i < uint64(len(l.entries)); i++ {
		if total += len(l.entries[i]); len(page) == limit || len(page) > 0 && total > maxBytes {
			return page, true, nil
		}
		page = append(page, SyncEntry{Cursor: binary.BigEndian.AppendUint64(nil, i+1), Data: l.entries[i]})
	}
	return page, false, nil
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
	provider := func(_ context.Context, _ peer.ID, _, after []byte, limit, _ int) ([]SyncEntry, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if limit != 4 {
			return nil, false, fmt.Errorf("limit %d, want 4", limit)
		}
		// Always the same ten entries, with the same cursor.
		page := make([]SyncEntry, 10)
		for i := range page {
			page[i] = SyncEntry{Cursor: []byte("same"), Data: []byte("x")}
		}
		return page, false, nil
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

// endlessLog serves full pages for ever, each ending on the cursor next
// gives for the one asked after, and counts the pages served.
type endlessLog struct {
	mu    sync.Mutex
	pages int
	next  func(after []byte) []byte
	wait  time.Duration // before each page
}

func (l *endlessLog) provide(ctx context.Context, _ peer.ID, _, after []byte, limit, _ int) ([]SyncEntry, bool, error) {
	select {
	case <-time.After(l.wait):
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pages++
	page := make([]SyncEntry, limit)
	for i := range page {
		page[i] = SyncEntry{Cursor: []byte(fmt.Sprintf("%d.%d", l.pages, i)), Data: []byte("x")}
	}
	page[limit-1].Cursor = l.next(after)
	return page, true, nil
}

// countUp gives the cursors 1, 2, 3, ...
func countUp(after []byte) []byte {
	n, _ := strconv.Atoi(string(after))
	return strconv.AppendInt(nil, int64(n+1), 10)
}

func (l *endlessLog) served() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pages
}

// TestSyncEndsOnEndlessLogs: a peer whose cursors go round a circle is
// caught when one comes round again, and one whose cursors never repeat
// is cut off after MaxSyncPages pages, long before ctx ends.
func TestSyncEndsOnEndlessLogs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		next  func(after []byte) []byte
		want  error
		pages int
	}{
		{"cursors A, B, A", func(after []byte) []byte {
			if string(after) == "A" {
				return []byte("B")
			}
			return []byte("A")
		}, ErrProtocol, 3},
		{"cursors never repeat", countUp, ErrTooLarge, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &endlessLog{next: tc.next}
			hosts := newHosts(t, 2, func(i int, cfg *Config) {
				cfg.SyncProvider = log.provide
				cfg.SyncPageLimit = 4
				cfg.MaxSyncPages = 5
			})
			connect(t, hosts[0], hosts[1])
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n := 0
			err := hosts[0].Sync(ctx, hosts[1].ID(), testChannel, nil, func(SyncEntry) error { n++; return nil })
			if !errors.Is(err, tc.want) || ctx.Err() != nil {
				t.Fatalf("sync: %v, want %v before ctx ends", err, tc.want)
			}
			if n != 4*tc.pages || log.served() != tc.pages {
				t.Fatalf("got %d entries of %d pages served, want %d pages", n, log.served(), tc.pages)
			}
		})
	}
}

// TestSyncContextEnds: a Sync that ctx's deadline cuts off mid-page fails
// with ctx's error, not as if the peer had broken the protocol.
func TestSyncContextEnds(t *testing.T) {
	t.Parallel()
	log := &endlessLog{next: countUp, wait: 5 * time.Second}
	hosts := newHosts(t, 2, func(i int, cfg *Config) { cfg.SyncProvider = log.provide })
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := hosts[0].Sync(ctx, hosts[1].ID(), testChannel, nil, func(SyncEntry) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrProtocol) {
		t.Fatalf("sync past ctx's deadline: %v, want context.DeadlineExceeded", err)
	}
}

// TestSyncPageBudget: a served page's data stays within SyncPageBytes (1
// MiB by default), whether the provider keeps to the budget it is handed
// or not, but for a first entry, which always goes, so that a log of
// entries larger than the budget still syncs, one per page; every entry
// arrives, in order.
func TestSyncPageBudget(t *testing.T) {
	t.Parallel()
	const entries, size = 100, 64 << 10
	for _, tc := range []struct {
		name   string
		budget int // SyncPageBytes; zero for the default
		greedy bool
	}{
		{"a provider keeping to the budget", 0, false},
		{"a provider ignoring the budget", 0, true},
		{"entries larger than the budget", 16 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &channelLog{}
			for i := range entries {
				log.append(bytes.Repeat([]byte{byte(i)}, size))
			}
			var mu sync.Mutex
			var budgets []int
			provider := func(ctx context.Context, from peer.ID, channel, after []byte, limit, maxBytes int) ([]SyncEntry, bool, error) {
				mu.Lock()
				budgets = append(budgets, maxBytes)
				mu.Unlock()
				if tc.greedy {
					maxBytes = 1 << 30
				}
				return log.provide(ctx, from, channel, after, limit, maxBytes)
			}
			hosts := newHosts(t, 2, func(i int, cfg *Config) {
				cfg.SyncProvider = provider
				cfg.SyncPageBytes = tc.budget
			})
			connect(t, hosts[0], hosts[1])
			budget := cmp.Or(tc.budget, DefaultSyncPageBytes)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			var after []byte
			pages, got := 0, 0
			for {
				page, end, err := hosts[0].syncPage(ctx, hosts[1].ID(), testChannel, after)
				if err != nil {
					t.Fatal(err)
				}
				total := 0
				for _, e := range page {
					if want := bytes.Repeat([]byte{byte(got)}, size); !bytes.Equal(e.Data, want) {
						t.Fatalf("entry %d out of order", got)
					}
					total += len(e.Data)
					got++
				}
				if len(page) == 0 && !end {
					t.Fatalf("page %d: empty, and not the end", pages)
				}
				if len(page) > 1 && total > budget {
					t.Fatalf("page %d: %d entries, %d bytes of data; budget %d", pages, len(page), total, budget)
				}
				pages++
				if end || len(page) == 0 {
					break
				}
				after = page[len(page)-1].Cursor
			}
			if got != entries {
				t.Fatalf("synced %d entries, want %d", got, entries)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range budgets {
				if b != budget {
					t.Fatalf("provider handed a budget of %d, want %d", b, budget)
				}
			}
			t.Logf("%d entries of %d bytes in %d pages, budget %d", got, size, pages, budget)
		})
	}
}
