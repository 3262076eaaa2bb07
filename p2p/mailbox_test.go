package p2p

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// TestMailboxKeys: the X25519 form of an identity key matches the X25519
// form of the public key its peer ID carries, so inviter and invitee
// compute the same hint key, each from its own private key; the key
// depends on who invites whom, and a third peer computes another one.
func TestMailboxKeys(t *testing.T) {
	t.Parallel()
	ka, a := identity(t)
	kb, b := identity(t)
	ko, o := identity(t)
	privA, privB, privO := mustMailbox(t, ka), mustMailbox(t, kb), mustMailbox(t, ko)
	pubA, err := mailboxPublic(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(privA.PublicKey().Bytes(), pubA.Bytes()) {
		t.Fatal("the X25519 key from the private key and from the peer ID differ")
	}
	byInviter := mustPairKey(t, privA, b, a, b)
	byInvitee := mustPairKey(t, privB, a, a, b)
	if !byInviter.Equals(byInvitee) {
		t.Fatal("inviter and invitee compute different hint keys")
	}
	if mustPairKey(t, privB, a, b, a).Equals(byInviter) {
		t.Fatal("the hint key of b for a is the one of a for b")
	}
	// A third peer can compute only its own keys with b.
	for _, k := range []cid.Cid{mustPairKey(t, privO, b, o, b), mustPairKey(t, privO, b, a, b), mustPairKey(t, privO, a, a, b)} {
		if k.Equals(byInviter) {
			t.Fatal("a third peer computed the hint key")
		}
	}
}

// TestMailboxRefusesBadKeys: peers whose keys are not Ed25519 have no
// mailbox, and a peer ID carrying a low-order point, which would make the
// shared secret zero whatever the other key, gives no key.
func TestMailboxRefusesBadKeys(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := crypto.ECDSAKeyPairFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mailboxPrivate(priv); !errors.Is(err, errNoMailbox) {
		t.Fatalf("ECDSA identity: %v", err)
	}
	ecID, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mailboxPublic(ecID); !errors.Is(err, errNoMailbox) {
		t.Fatalf("ECDSA peer ID: %v", err)
	}

	ka, a := identity(t)
	own := mustMailbox(t, ka)
	// The identity point of edwards25519, and a point of order 4.
	for _, raw := range [][]byte{
		append([]byte{1}, make([]byte, 31)...),
		append(make([]byte, 31), 0x80),
	} {
		edPub, err := crypto.UnmarshalEd25519PublicKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := peer.IDFromPublicKey(edPub)
		if err != nil {
			t.Fatal(err)
		}
		if k, err := pairKey(own, bad, a, bad); err == nil {
			t.Fatalf("low-order key %x gave hint key %s", raw, k)
		}
	}
	// A peer ID that is no key at all.
	if _, err := pairKey(own, peer.ID("not a peer"), a, "not a peer"); err == nil {
		t.Fatal("a malformed peer ID gave a hint key")
	}
}

// TestMailboxHidesInvitee is issue 12's acceptance 2. Inviter A holds a
// Welcome for B and inviter A2 one for C, both offline. An observer of the
// DHT that knows B's peer ID looks up every key it can compute for B: the
// old key (a hash of B's peer ID), and the hint keys it would use itself,
// inviting B or invited by B. None names A, on the observer's lookups or
// in any DHT server's provider store. The hint key takes nothing from B's
// KeyPackage record, so holding that record gives the observer nothing
// more. What the observer does see, the beacon, lists A and A2 alike,
// whoever their Welcomes are for. Then B comes online elsewhere in the
// network: it finds A's hint, dials A (and not A2), and receives the
// Welcome, though A's retries are an hour apart; B's mailbox check finds
// A's hint and not A2's.
func TestMailboxHidesInvitee(t *testing.T) {
	t.Parallel()
	results := newOutcomes()
	hosts := newHosts(t, 4, func(i int, cfg *Config) {
		if i < 2 {
			// Only the invitee's arrival may trigger delivery.
			cfg.WelcomeRetryMax = time.Hour
		}
		if i == 0 {
			cfg.WelcomeDone = results.done
		}
	})
	inviter, inviter2, servers := hosts[0], hosts[1], hosts[2:]
	connect(t, inviter, servers[0])
	connect(t, inviter2, servers[0])
	connect(t, servers[0], servers[1])
	waitFor(t, 10*time.Second, "routing tables", func() bool {
		return inviter.RoutingTableSize() > 0 && inviter2.RoutingTableSize() > 0 && servers[1].RoutingTableSize() > 0
	})
	keyB, b := identity(t)
	_, c := identity(t)
	expires := time.Now().Add(time.Minute)
	if err := inviter.QueueWelcome(PendingWelcome{ID: []byte("for b"), To: b, Welcome: []byte("welcome b"), Expires: expires}); err != nil {
		t.Fatal(err)
	}
	if err := inviter2.QueueWelcome(PendingWelcome{ID: []byte("for c"), To: c, Welcome: []byte("welcome c"), Expires: expires}); err != nil {
		t.Fatal(err)
	}
	waitForHint(t, servers, inviter, b)
	waitForHint(t, servers, inviter2, c)

	ocfg := testConfig(t)
	ocfg.BootstrapPeers = servers[1].Addrs()
	observer := newHost(t, ocfg)
	waitFor(t, 10*time.Second, "the observer's routing table", func() bool { return observer.RoutingTableSize() > 0 })
	oldKey := func(p peer.ID) cid.Cid {
		sum := sha256.Sum256(append([]byte("spacepanda mailbox\x00"), p...))
		mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
		return cid.NewCidV1(cid.Raw, mh)
	}
	observerKeys := map[string]cid.Cid{
		"the hash of B's peer ID":  oldKey(b),
		"the observer inviting B":  mustPairKey(t, observer.mailbox, b, observer.ID(), b),
		"B inviting the observer":  mustPairKey(t, observer.mailbox, b, b, observer.ID()),
		"A's key for the observer": mustPairKey(t, observer.mailbox, inviter.ID(), inviter.ID(), observer.ID()),
	}
	all := append([]*Host{inviter, inviter2, observer}, servers...)
	for what, key := range observerKeys {
		for _, p := range findProviders(t, observer, key) {
			if p == inviter.ID() || p == inviter2.ID() {
				t.Errorf("the observer found inviter %s under %s", p, what)
			}
		}
		if storedBy(t, all, key, inviter.ID()) {
			t.Errorf("a DHT server holds A's provider record under %s", what)
		}
	}
	beacon := findProviders(t, observer, beaconKey)
	if !slices.Contains(beacon, inviter.ID()) || !slices.Contains(beacon, inviter2.ID()) {
		t.Errorf("the beacon lists %v, want both inviters", beacon)
	}

	in := newInbox()
	bcfg := testConfig(t)
	bcfg.Identity, bcfg.WelcomeHandler, bcfg.BootstrapPeers = keyB, in.handle, servers[1].Addrs()
	online := time.Now()
	hostB := newHost(t, bcfg)
	delay := in.wait(t, 5*time.Second).Sub(online)
	if err := results.wait(t, 5*time.Second); err != nil {
		t.Fatalf("WelcomeDone: %v", err)
	}
	if got := in.got[0]; !bytes.Equal(got, []byte("welcome b")) {
		t.Fatalf("B received %q", got)
	}
	// In a network this small B's DHT connects it to A before its mailbox
	// check, which then skips A; what the check would decide is asked
	// directly.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, ok := hostB.hintFrom(ctx, inviter.ID()); !ok {
		t.Error("B does not find A's hint")
	}
	if _, ok := hostB.hintFrom(ctx, inviter2.ID()); ok {
		t.Error("B finds a hint from A2, which holds nothing for it")
	}
	t.Logf("delivered %s after B came online; beacon: %d providers", delay.Round(time.Millisecond), len(beacon))
}

func findProviders(tb testing.TB, h *Host, key cid.Cid) []peer.ID {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []peer.ID
	for ai := range h.dht.FindProvidersAsync(ctx, key, 0) {
		out = append(out, ai.ID)
	}
	return out
}

func mustMailbox(tb testing.TB, k crypto.PrivKey) *ecdh.PrivateKey {
	tb.Helper()
	m, err := mailboxPrivate(k)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustPairKey(tb testing.TB, own *ecdh.PrivateKey, other, inviter, invitee peer.ID) cid.Cid {
	tb.Helper()
	k, err := pairKey(own, other, inviter, invitee)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// FuzzMailboxPublic: the peer IDs a mailbox check reads come from DHT
// provider records, anyone's to write; whatever their bytes, computing a
// hint key fails cleanly or succeeds.
func FuzzMailboxPublic(f *testing.F) {
	_, p := identity(f)
	f.Add([]byte(p))
	f.Add([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20})
	f.Add(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, make([]byte, 32)...))
	k, self := identity(f)
	own := mustMailbox(f, k)
	f.Fuzz(func(t *testing.T, b []byte) {
		other := peer.ID(b)
		if _, err := pairKey(own, other, other, self); err == nil {
			if _, err := mailboxPublic(other); err != nil {
				t.Fatal("a hint key for a peer ID without a mailbox key")
			}
		}
	})
}
