package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestWelcomeToReturningInviteeOverQUIC is the regression test for an
// outbox bug. An invitee that was reachable over QUIC goes away and a
// Welcome for it is queued: the outbox's attempt dials the invitee's old
// QUIC address, where nothing answers, and would wait about five seconds
// (quic-go's handshake timeout; up to StreamTimeout). The invitee comes back
// meanwhile and connects. The outbox used to let the stale dial run out
// before trying again; now the connection cancels it and the Welcome goes
// over the fresh connection at once. Whether an attempt is in flight when
// the invitee returns is a race, so the test tries a few times.
func TestWelcomeToReturningInviteeOverQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := func(key crypto.PrivKey, bootstrap []string, handler WelcomeHandler) *Host {
		h, err := New(ctx, Config{Identity: key, ListenAddrs: loopbackAddrs, DHTMode: DHTServer,
			BootstrapPeers: bootstrap, WelcomeHandler: handler, WelcomeRetryMax: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	newKey := func() (crypto.PrivKey, peer.ID) {
		key, err := GenerateIdentity(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return key, id
	}
	relayKey, _ := newKey()
	relay := start(relayKey, nil, nil)
	for try := range 5 {
		aliceKey, _ := newKey()
		bobKey, bobID := newKey()
		alice := start(aliceKey, relay.Addrs(), nil)
		bob := start(bobKey, append(relay.Addrs(), alice.Addrs()...), nil)
		for bob.RoutingTableSize() < 2 || alice.RoutingTableSize() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		bob.Close()
		err := alice.QueueWelcome(PendingWelcome{ID: []byte("w"), To: bobID, Welcome: []byte("welcome"), Expires: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		online := time.Now()
		start(bobKey, relay.Addrs(), func(context.Context, peer.ID, []byte) error {
			got <- time.Now()
			return nil
		})
		select {
		case at := <-got:
			// The stale dial would take about 5 s; a fresh connection
			// takes milliseconds, and seconds only on a busy machine
			// (it took 1.05 s once, under -race beside other tests).
			if d := at.Sub(online); d > 3*time.Second {
				t.Fatalf("try %d: Welcome arrived %s after the invitee came back", try, d.Round(time.Millisecond))
			}
		case <-ctx.Done():
			t.Fatal("no Welcome")
		}
	}
}
