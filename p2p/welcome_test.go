package p2p

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// inbox is a WelcomeHandler that records what arrives and when.
type inbox struct {
	mu     sync.Mutex
	got    [][]byte
	at     time.Time
	refuse error
	ch     chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 16)} }

func (in *inbox) handle(_ context.Context, _ peer.ID, w []byte) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.refuse != nil {
		return in.refuse
	}
	in.got = append(in.got, w)
	if in.at.IsZero() {
		in.at = time.Now()
	}
	in.ch <- struct{}{}
	return nil
}

func (in *inbox) wait(tb testing.TB, d time.Duration) time.Time {
	tb.Helper()
	select {
	case <-in.ch:
	case <-time.After(d):
		tb.Fatalf("no Welcome within %s", d)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.at
}

// outcomes collects WelcomeDone reports.
type outcomes struct{ ch chan error }

func newOutcomes() *outcomes { return &outcomes{ch: make(chan error, 16)} }

func (o *outcomes) done(_ PendingWelcome, err error) { o.ch <- err }

func (o *outcomes) wait(tb testing.TB, d time.Duration) error {
	tb.Helper()
	select {
	case err := <-o.ch:
		return err
	case <-time.After(d):
		tb.Fatalf("no outcome within %s", d)
		return nil
	}
}

// memStore is a WelcomeStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) PutWelcome(id, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string][]byte)
	}
	s.m[string(id)] = bytes.Clone(v)
	return nil
}

func (s *memStore) DeleteWelcome(id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(id))
	return nil
}

func (s *memStore) Welcomes() ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.m)), nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func TestSendWelcome(t *testing.T) {
	t.Parallel()
	in := newInbox()
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		if i == 1 {
			cfg.WelcomeHandler = in.handle
		}
	})
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := hosts[0].SendWelcome(ctx, hosts[1].ID(), []byte("welcome 1")); err != nil {
		t.Fatal(err)
	}
	in.wait(t, time.Second)
	if !bytes.Equal(in.got[0], []byte("welcome 1")) {
		t.Fatalf("got %q", in.got[0])
	}

	in.mu.Lock()
	in.refuse = errors.New("no matching KeyPackage")
	in.mu.Unlock()
	err := hosts[0].SendWelcome(ctx, hosts[1].ID(), []byte("welcome 2"))
	var refused *RefusedError
	if !errors.Is(err, ErrWelcomeRejected) || !errors.As(err, &refused) || refused.Reason != "no matching KeyPackage" {
		t.Fatalf("refused Welcome: %v", err)
	}

	// A host without a WelcomeHandler does not speak the protocol.
	if err := hosts[1].SendWelcome(ctx, hosts[0].ID(), []byte("w")); err == nil || errors.Is(err, ErrWelcomeRejected) {
		t.Fatalf("Welcome to a host without handler: %v", err)
	}
}

// TestWelcomeToOfflineInvitee is acceptance 3's building block: a Welcome
// queued for an invitee that is offline reaches it within 5 s of its coming
// online, and the inviter learns it was acknowledged.
func TestWelcomeToOfflineInvitee(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// viaBootstrap: the invitee comes online through another peer and
		// finds the inviter by its mailbox hint in the DHT; otherwise it
		// dials the inviter itself.
		viaBootstrap bool
	}{{"through the DHT mailbox", true}, {"dialling the inviter", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			results := newOutcomes()
			hosts := newHosts(t, 3, func(i int, cfg *Config) {
				if i == 0 {
					cfg.WelcomeDone = results.done
					// Only the invitee's arrival may trigger delivery.
					cfg.WelcomeRetryMax = time.Hour
				}
			})
			inviter := hosts[0]
			connect(t, inviter, hosts[1])
			connect(t, hosts[1], hosts[2])
			waitFor(t, 10*time.Second, "routing tables", func() bool {
				return inviter.RoutingTableSize() > 0 && hosts[2].RoutingTableSize() > 0
			})
			key, invitee := identity(t)

			err := inviter.QueueWelcome(PendingWelcome{ID: []byte("w1"), To: invitee, Welcome: []byte("welcome"), Expires: time.Now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.viaBootstrap {
				waitForHint(t, hosts[1:], inviter, invitee)
			}
			// Let the first attempts fail and back off.
			time.Sleep(1500 * time.Millisecond)

			in := newInbox()
			cfg := testConfig(t)
			cfg.Identity, cfg.WelcomeHandler = key, in.handle
			cfg.BootstrapPeers = inviter.Addrs()
			if tc.viaBootstrap {
				cfg.BootstrapPeers = hosts[2].Addrs()
			}
			online := time.Now()
			newHost(t, cfg)
			delay := in.wait(t, 5*time.Second).Sub(online)
			if delay > 5*time.Second {
				t.Fatalf("delivered %s after the invitee came online", delay)
			}
			if err := results.wait(t, 5*time.Second); err != nil {
				t.Fatalf("WelcomeDone: %v", err)
			}
			t.Logf("delivered %s after the invitee came online", delay.Round(time.Millisecond))
		})
	}
}

// waitForHint waits until one of hosts stores the inviter's mailbox hint
// for the invitee, and its beacon.
func waitForHint(tb testing.TB, hosts []*Host, inviter *Host, invitee peer.ID) {
	tb.Helper()
	key, err := pairKey(inviter.mailbox, invitee, inviter.ID(), invitee)
	if err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, 15*time.Second, "the mailbox hint", func() bool {
		return storedBy(tb, hosts, key, inviter.ID()) && storedBy(tb, hosts, beaconKey, inviter.ID())
	})
}

// storedBy reports whether one of hosts stores a provider record of p
// under key.
func storedBy(tb testing.TB, hosts []*Host, key cid.Cid, p peer.ID) bool {
	tb.Helper()
	for _, h := range hosts {
		provs, err := h.dht.ProviderStore().GetProviders(context.Background(), key.Hash())
		if err != nil {
			tb.Fatal(err)
		}
		for _, ai := range provs {
			if ai.ID == p {
				return true
			}
		}
	}
	return false
}

// TestWelcomeOutboxSurvivesRestart: a pending Welcome is kept in the
// WelcomeStore, reloaded by the next host on the same identity, delivered,
// and then deleted from the store.
func TestWelcomeOutboxSurvivesRestart(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	cfg := testConfig(t)
	cfg.WelcomeStore = store
	first := newHost(t, cfg)
	key, invitee := identity(t)
	if err := first.QueueWelcome(PendingWelcome{ID: []byte("w1"), To: invitee, Welcome: []byte("welcome"), Expires: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if store.len() != 1 {
		t.Fatalf("store holds %d Welcomes, want 1", store.len())
	}

	results := newOutcomes()
	cfg.WelcomeDone = results.done
	second := newHost(t, cfg)
	in := newInbox()
	icfg := testConfig(t)
	icfg.Identity, icfg.WelcomeHandler, icfg.BootstrapPeers = key, in.handle, second.Addrs()
	newHost(t, icfg)
	in.wait(t, 5*time.Second)
	if err := results.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if store.len() != 0 {
		t.Fatalf("store holds %d Welcomes after delivery, want 0", store.len())
	}
}

// TestWelcomeOutboxEnds: a Welcome nobody acknowledges expires, one the
// invitee refuses is dropped; both are reported and leave the store.
func TestWelcomeOutboxEnds(t *testing.T) {
	t.Parallel()
	store, results := &memStore{}, newOutcomes()
	in := newInbox()
	in.refuse = errors.New("already joined")
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		if i == 0 {
			cfg.WelcomeStore, cfg.WelcomeDone = store, results.done
		} else {
			cfg.WelcomeHandler = in.handle
		}
	})
	connect(t, hosts[0], hosts[1])
	_, offline := identity(t)

	err := hosts[0].QueueWelcome(PendingWelcome{ID: []byte("late"), To: offline, Welcome: []byte("w"), Expires: time.Now().Add(500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if err := results.wait(t, 5*time.Second); !errors.Is(err, ErrWelcomeExpired) {
		t.Fatalf("unacknowledged Welcome: %v, want ErrWelcomeExpired", err)
	}
	err = hosts[0].QueueWelcome(PendingWelcome{ID: []byte("refused"), To: hosts[1].ID(), Welcome: []byte("w"), Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := results.wait(t, 5*time.Second); !errors.Is(err, ErrWelcomeRejected) {
		t.Fatalf("refused Welcome: %v, want ErrWelcomeRejected", err)
	}
	if store.len() != 0 {
		t.Fatalf("store holds %d Welcomes, want 0", store.len())
	}
	err = hosts[0].QueueWelcome(PendingWelcome{ID: []byte("x"), To: offline, Welcome: []byte("w"), Expires: time.Now().Add(-time.Second)})
	if !errors.Is(err, ErrWelcomeExpired) {
		t.Fatalf("queueing an expired Welcome: %v", err)
	}
}

func TestPendingWelcomeEncoding(t *testing.T) {
	_, to := identity(t)
	w := PendingWelcome{ID: []byte{1, 2}, To: to, Welcome: []byte("welcome"), Expires: time.UnixMilli(1700000000123)}
	got, err := parsePendingWelcome(w.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ID, w.ID) || got.To != w.To || !bytes.Equal(got.Welcome, w.Welcome) || !got.Expires.Equal(w.Expires) {
		t.Fatalf("round trip: %+v, want %+v", got, w)
	}
	enc := w.marshal()
	for i := range enc {
		if _, err := parsePendingWelcome(enc[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: parsed", i)
		}
	}
}

// logRecorder is a slog.Handler that keeps the messages logged.
type logRecorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func newLogRecorder() logRecorder { return logRecorder{mu: new(sync.Mutex), msgs: new([]string)} }

func (l logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logRecorder) WithGroup(string) slog.Handler            { return l }

func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.msgs = append(*l.msgs, r.Message)
	return nil
}

func (l logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range *l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestWelcomeFirstAttemptDelivers: a Welcome queued for an invitee that is
// not connected but can be dialled is delivered, once, by the first
// attempt, which the connection its own dial makes does not cut short.
func TestWelcomeFirstAttemptDelivers(t *testing.T) {
	t.Parallel()
	for round := range 5 {
		logs, results, in := newLogRecorder(), newOutcomes(), newInbox()
		hosts := newHosts(t, 2, func(i int, cfg *Config) {
			if i == 0 {
				cfg.Logger, cfg.WelcomeDone = slog.New(logs), results.done
			} else {
				cfg.WelcomeHandler = in.handle
			}
		})
		inviter, invitee := hosts[0], hosts[1]
		inviter.host.Peerstore().AddAddrs(invitee.ID(), invitee.host.Addrs(), time.Hour)
		err := inviter.QueueWelcome(PendingWelcome{ID: []byte("w"), To: invitee.ID(), Welcome: []byte("welcome"), Expires: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if err := results.wait(t, 10*time.Second); err != nil {
			t.Fatalf("round %d: WelcomeDone: %v", round, err)
		}
		if n := logs.count("Welcome not delivered yet"); n > 0 {
			t.Fatalf("round %d: %d failed attempts before the Welcome was delivered", round, n)
		}
		in.mu.Lock()
		got := len(in.got)
		in.mu.Unlock()
		if got != 1 {
			t.Fatalf("round %d: the invitee got the Welcome %d times", round, got)
		}
		inviter.Close()
		invitee.Close()
	}
}

// TestMailboxDialsAreBounded: anyone can announce itself under the beacon
// and under its own hint key for a host, so a host that finds 24 such
// announcements dials at most maxMailboxProviders of them, mailboxDialers
// at a time.
func TestMailboxDialsAreBounded(t *testing.T) {
	hosts := newHosts(t, 1, nil)
	dht := hosts[0]
	cfg := testConfig(t)
	key, self := identity(t)
	cfg.Identity = key
	ctx := context.Background()
	for range 24 {
		pk, p := identity(t)
		own, err := mailboxPrivate(pk)
		if err != nil {
			t.Fatal(err)
		}
		hint, err := pairKey(own, self, p, self)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []cid.Cid{beaconKey, hint} {
			if err := dht.dht.ProviderStore().AddProvider(ctx, key.Hash(), peer.AddrInfo{ID: p}); err != nil {
				t.Fatal(err)
			}
		}
	}

	var mu sync.Mutex
	dials, running, most := 0, 0, 0
	orig := dialMailboxProvider
	dialMailboxProvider = func(ctx context.Context, h *Host, ai peer.AddrInfo) {
		if h.ID() != self {
			orig(ctx, h, ai)
			return
		}
		mu.Lock()
		dials++
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	}
	defer func() { dialMailboxProvider = orig }()

	cfg.BootstrapPeers = dht.Addrs()
	newHost(t, cfg)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return dials
	}
	waitFor(t, 10*time.Second, "the mailbox check", func() bool { return count() > 0 })
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if dials > maxMailboxProviders || most > mailboxDialers {
		t.Errorf("%d dials, %d at once; want at most %d, %d at once", dials, most, maxMailboxProviders, mailboxDialers)
	}
	t.Logf("%d dials, at most %d at once", dials, most)
}
