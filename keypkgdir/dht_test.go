package keypkgdir_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
)

// These tests run keypkgdir over real libp2p hosts on loopback, through
// p2p: the DHT that node wires it to.

// node is a host with what keypkgdir needs of a spacepanda node.
type node struct {
	*p2p.Host
	key    crypto.PrivKey
	st     *mlsgroup.MemoryStorage
	signer *mlsgroup.Signer
}

// network starts n hosts on loopback, all running keypkgdir's validator,
// and links them in a ring: the DHT finds the rest.
func network(tb testing.TB, n int, maxRecordAge time.Duration) []*node {
	tb.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		key, err := p2p.GenerateIdentity(nil)
		if err != nil {
			tb.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, err := p2p.New(ctx, p2p.Config{
			Identity:     key,
			ListenAddrs:  []string{"/ip4/127.0.0.1/tcp/0"},
			DHTMode:      p2p.DHTServer,
			Validators:   map[string]p2p.Validator{keypkgdir.Namespace: keypkgdir.Validator{}},
			MaxRecordAge: maxRecordAge,
		})
		cancel()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { h.Close() })
		signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		nodes[i] = &node{Host: h, key: key, st: &mlsgroup.MemoryStorage{}, signer: signer}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, nd := range nodes {
		if err := nd.Connect(ctx, nodes[(i+1)%n].Addrs()[0]); err != nil {
			tb.Fatal(err)
		}
	}
	// Lookups start from the routing table: wait for the ring's
	// neighbours to be in it.
	deadline := time.Now().Add(10 * time.Second)
	for _, nd := range nodes {
		for nd.RoutingTableSize() < 2 {
			if time.Now().After(deadline) {
				tb.Fatalf("routing table holds %d peers", nd.RoutingTableSize())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

func (nd *node) publisher(tb testing.TB, republish time.Duration) *keypkgdir.Publisher {
	tb.Helper()
	p, err := keypkgdir.NewPublisher(keypkgdir.PublisherConfig{
		DHT: nd.Host, Identity: nd.key, Storage: nd.st, Signer: nd.signer, RepublishInterval: republish,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// keyPackages makes KeyPackages with nd's MLS keys, their identities
// binding nd's signature key to the peer of names.
func (nd *node) keyPackages(tb testing.TB, names crypto.PrivKey, n int) []keypkgdir.Entry {
	tb.Helper()
	identity, err := keypkgdir.NewIdentity(names, nd.signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	entries := make([]keypkgdir.Entry, n)
	for i := range entries {
		kp, err := mlsgroup.NewKeyPackage(nd.st, identity, nd.signer, mlsgroup.KeyPackageOptions{}, rand.Reader, time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		entries[i] = keypkgdir.Entry{KeyPackage: kp.Bytes()}
	}
	return entries
}

// TestFetchFromEveryHost is acceptance 1's first part: KeyPackages one
// host publishes are fetched by each of 9 others through the DHT; a peer
// that published nothing is a clear error, not a hang.
func TestFetchFromEveryHost(t *testing.T) {
	nodes := network(t, 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner := nodes[0]
	if err := owner.publisher(t, 0).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	for i, nd := range nodes[1:] {
		d := &keypkgdir.Directory{DHT: nd.Host}
		kp, err := d.Fetch(ctx, owner.ID())
		if err != nil {
			t.Fatalf("host %d: %v", i+1, err)
		}
		if p, err := keypkgdir.PeerOf(kp.Identity(), kp.SignatureKey()); err != nil || p != owner.ID() {
			t.Fatalf("host %d fetched a KeyPackage of %s (%v)", i+1, p, err)
		}
		if _, status, _ := owner.st.KeyPackage(kp.Ref()); status != mlsgroup.KeyPackageAvailable {
			t.Fatalf("host %d fetched a KeyPackage whose private keys the owner lacks", i+1)
		}
	}
	_, nobody := identity(t)
	start := time.Now()
	if _, err := (&keypkgdir.Directory{DHT: nodes[3].Host}).Fetch(ctx, nobody); !errors.Is(err, keypkgdir.ErrNoKeyPackages) {
		t.Fatalf("Fetch of a peer that never published: %v", err)
	}
	t.Logf("an unpublished peer is reported missing after %s", time.Since(start).Round(time.Millisecond))
}

func identity(tb testing.TB) (crypto.PrivKey, peer.ID) {
	tb.Helper()
	key, err := p2p.GenerateIdentity(nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return key, id
}

// acceptAll is the rogue's validator: it lets anything out.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

// TestEveryHostRejectsBadRecords is acceptance 1's second part: a rogue
// DHT node that runs no validator hands each of 10 hosts, directly, bad
// records under a victim's key: signed by another key, expired, oversized,
// or holding another identity's KeyPackage. Every host refuses every one
// and serves none of them.
func TestEveryHostRejectsBadRecords(t *testing.T) {
	nodes := network(t, 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	victim := nodes[1]
	key := keypkgdir.Key(victim.ID())

	// Each bad record comes from a rogue of its own: p2p refuses a peer's
	// PUTs unvalidated once one of its records failed validation, and
	// this test is about the validator's refusals.
	newRogue := func() *dhtpb.ProtocolMessenger {
		rh, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rh.Close() })
		rd, err := dht.New(rh, dht.ProtocolPrefix(p2p.DHTProtocolPrefix), dht.Mode(dht.ModeClient),
			dht.NamespacedValidator(keypkgdir.Namespace, acceptAll{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Close() })
		messenger, err := dhtpb.NewProtocolMessenger(rd.MessageSender())
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			if err := connectTo(ctx, rh, nd); err != nil {
				t.Fatal(err)
			}
		}
		return messenger
	}
	rogueKey, rogueID := identity(t)
	rogue := &node{key: rogueKey, st: &mlsgroup.MemoryStorage{}, signer: victim.signer}

	sealAs := func(r keypkgdir.Record, key crypto.PrivKey) []byte {
		v, err := keypkgdir.SealAs(&r, key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Now()
	expiry := now.Add(time.Hour)
	own := victim.keyPackages(t, victim.key, 2)
	bad := []struct {
		name  string
		value []byte
	}{
		{"signed by another key", sealAs(keypkgdir.Record{Peer: victim.ID(), Seq: 1, Expiry: expiry, Entries: own}, rogueKey)},
		{"another peer's record", sealAs(keypkgdir.Record{Peer: rogueID, Seq: 1, Expiry: expiry, Entries: rogue.keyPackages(t, rogueKey, 2)}, rogueKey)},
		{"expired", sealAs(keypkgdir.Record{Peer: victim.ID(), Seq: 1, Expiry: now.Add(-time.Minute), Entries: own}, victim.key)},
		{"oversized", sealAs(keypkgdir.Record{Peer: victim.ID(), Seq: 1, Expiry: expiry, Entries: victim.keyPackages(t, victim.key, 60)}, victim.key)},
		{"another identity's KeyPackage", sealAs(keypkgdir.Record{Peer: victim.ID(), Seq: 1, Expiry: expiry,
			Entries: append(own[:1:1], victim.keyPackages(t, nodes[2].key, 1)...)}, victim.key)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			messenger := newRogue()
			for i, nd := range nodes {
				if err := messenger.PutValue(ctx, nd.ID(), record.MakePutRecord(key, tc.value)); err == nil {
					t.Errorf("host %d stored the record", i)
				}
				rec, _, err := messenger.GetValue(ctx, nd.ID(), key)
				if err != nil {
					t.Fatalf("asking host %d: %v", i, err)
				}
				if rec != nil {
					t.Errorf("host %d serves a record under %s", i, key)
				}
			}
		})
	}
	// Nor does any host find one through the DHT.
	for i, nd := range nodes {
		if _, err := nd.GetValue(ctx, key); !errors.Is(err, p2p.ErrNotFound) {
			t.Errorf("host %d: GetValue of the victim's key: %v", i, err)
		}
	}
	// The same path carries a good record: the refusals were the
	// validator's.
	good := sealAs(keypkgdir.Record{Peer: victim.ID(), Seq: 1, Expiry: expiry, Entries: own}, victim.key)
	messenger := newRogue()
	for i, nd := range nodes {
		if err := messenger.PutValue(ctx, nd.ID(), record.MakePutRecord(key, good)); err != nil {
			t.Errorf("host %d refused a good record: %v", i, err)
		}
		if rec, _, err := messenger.GetValue(ctx, nd.ID(), key); err != nil || !bytes.Equal(rec.GetValue(), good) {
			t.Errorf("host %d does not serve the good record: %v", i, err)
		}
	}
}

func connectTo(ctx context.Context, h interface {
	Connect(context.Context, peer.AddrInfo) error
}, nd *node) error {
	ai, err := peer.AddrInfoFromString(nd.Addrs()[0])
	if err != nil {
		return err
	}
	return h.Connect(ctx, *ai)
}

// TestRepublishOutlivesRecordAge is acceptance 1's last part: DHT nodes
// drop records older than their maximum record age (2 s here, 48 h by
// default); a publisher that republishes within it keeps its record alive
// for 2.5 record ages, while a record published once is gone.
func TestRepublishOutlivesRecordAge(t *testing.T) {
	const age = 2 * time.Second
	nodes := network(t, 10, age)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	keeper, once := nodes[0], nodes[1]
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- keeper.publisher(t, age/4).Run(runCtx) }()
	if err := once.publisher(t, 0).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(age * 5 / 2)

	for i, nd := range nodes[2:] {
		d := &keypkgdir.Directory{DHT: nd.Host}
		if _, err := d.Fetch(ctx, keeper.ID()); err != nil {
			t.Errorf("host %d: the republished record: %v", i+2, err)
		}
		if _, err := d.Fetch(ctx, once.ID()); !errors.Is(err, keypkgdir.ErrNoKeyPackages) {
			t.Errorf("host %d: the record published once: %v, want ErrNoKeyPackages", i+2, err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCorruptedRecordsCostLittle: a peer that puts a host, over and over,
// a full record under its own identity whose last KeyPackage signature is
// corrupted, which the validator finds only after verifying the fifteen
// others, makes the host verify one such record's KeyPackages, not one
// record's a PUT: p2p refuses its later PUTs unvalidated. A peer putting
// valid records is held to its PUT budget.
func TestCorruptedRecordsCostLittle(t *testing.T) {
	const puts = 20
	var verified atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, err := p2p.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	target, err := p2p.New(ctx, p2p.Config{
		Identity:    key,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		DHTMode:     p2p.DHTServer,
		Validators: map[string]p2p.Validator{keypkgdir.Namespace: keypkgdir.Validator{Options: mlsgroup.ValidationOptions{
			Credentials: func(ct uint16, id, sigKey []byte) error {
				verified.Add(1)
				return keypkgdir.CredentialValidator(ct, id, sigKey)
			},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	nd := &node{Host: target}

	// sender is a peer that puts records under its own key.
	sender := func() (*dhtpb.ProtocolMessenger, *node) {
		k, _ := identity(t)
		rh, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rh.Close() })
		rd, err := dht.New(rh, dht.ProtocolPrefix(p2p.DHTProtocolPrefix), dht.Mode(dht.ModeClient),
			dht.NamespacedValidator(keypkgdir.Namespace, acceptAll{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Close() })
		m, err := dhtpb.NewProtocolMessenger(rd.MessageSender())
		if err != nil {
			t.Fatal(err)
		}
		if err := connectTo(ctx, rh, nd); err != nil {
			t.Fatal(err)
		}
		signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return m, &node{key: k, st: &mlsgroup.MemoryStorage{}, signer: signer}
	}
	seal := func(owner *node, seq uint64, corrupt bool) []byte {
		entries := owner.keyPackages(t, owner.key, keypkgdir.MaxEntries)
		if corrupt {
			last := bytes.Clone(entries[len(entries)-1].KeyPackage)
			last[len(last)-1] ^= 1 // the KeyPackage's signature ends it
			entries[len(entries)-1].KeyPackage = last
		}
		entries[0].LastResort = true
		id, err := peer.IDFromPrivateKey(owner.key)
		if err != nil {
			t.Fatal(err)
		}
		v, err := (&keypkgdir.Record{Peer: id, Seq: seq, Expiry: time.Now().Add(time.Hour).Truncate(time.Second), Entries: entries}).Seal(owner.key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	for _, tc := range []struct {
		name    string
		corrupt bool
		most    int64 // KeyPackages the target may verify
	}{
		{"corrupted", true, keypkgdir.MaxEntries},
		// 8 PUTs within budget; each new record also has the one stored
		// validated again.
		{"valid", false, 2 * 8 * keypkgdir.MaxEntries},
	} {
		m, owner := sender()
		id, _ := peer.IDFromPrivateKey(owner.key)
		values := make([][]byte, puts)
		for i := range values {
			values[i] = seal(owner, uint64(i+1), tc.corrupt)
		}
		before := verified.Load()
		start := time.Now()
		for _, v := range values {
			m.PutValue(ctx, target.ID(), record.MakePutRecord(keypkgdir.Key(id), v))
		}
		n := verified.Load() - before
		t.Logf("%s: %d PUTs of a %d-entry record took %s and had the target verify %d KeyPackages",
			tc.name, puts, keypkgdir.MaxEntries, time.Since(start).Round(time.Millisecond), n)
		if n > tc.most {
			t.Errorf("%s: %d PUTs had the target verify %d KeyPackages, want at most %d", tc.name, puts, n, tc.most)
		}
	}
}
