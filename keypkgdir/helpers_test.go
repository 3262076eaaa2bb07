package keypkgdir

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// testPeer is a node's identity: its libp2p key, MLS signer and Storage.
type testPeer struct {
	key    crypto.PrivKey
	id     peer.ID
	signer *mlsgroup.Signer
	st     *mlsgroup.MemoryStorage
	rand   io.Reader
}

func newTestPeer(tb testing.TB, seed uint64) *testPeer {
	tb.Helper()
	r := seeded(seed)
	key, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, r)
	if err != nil {
		tb.Fatal(err)
	}
	return &testPeer{key: key, id: id, signer: signer, st: &mlsgroup.MemoryStorage{}, rand: r}
}

// keyPackage makes a KeyPackage naming the peer of names, valid for a day
// from now: its identity binds tp's signature key to that peer.
func (tp *testPeer) keyPackage(tb testing.TB, names crypto.PrivKey, now time.Time) *mlsgroup.KeyPackage {
	tb.Helper()
	kp, err := mlsgroup.NewKeyPackage(tp.st, bound(tb, names, tp.signer), tp.signer, mlsgroup.KeyPackageOptions{Lifetime: 24 * time.Hour}, tp.rand, now)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// keyPackageIn is keyPackage in suite cs, signed by a new signer of it.
func (tp *testPeer) keyPackageIn(tb testing.TB, cs mlsgroup.CipherSuite, names crypto.PrivKey, now time.Time) *mlsgroup.KeyPackage {
	tb.Helper()
	signer, err := mlsgroup.GenerateSigner(cs, tp.rand)
	if err != nil {
		tb.Fatal(err)
	}
	kp, err := mlsgroup.NewKeyPackage(tp.st, bound(tb, names, signer), signer, mlsgroup.KeyPackageOptions{Lifetime: 24 * time.Hour}, tp.rand, now)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// keyPackageWith makes a KeyPackage of tp's whose identity is identity,
// whatever it binds.
func (tp *testPeer) keyPackageWith(tb testing.TB, identity []byte, now time.Time) *mlsgroup.KeyPackage {
	tb.Helper()
	kp, err := mlsgroup.NewKeyPackage(tp.st, identity, tp.signer, mlsgroup.KeyPackageOptions{Lifetime: 24 * time.Hour}, tp.rand, now)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// bound is NewIdentity of names and signer's public key.
func bound(tb testing.TB, names crypto.PrivKey, signer *mlsgroup.Signer) []byte {
	tb.Helper()
	identity, err := NewIdentity(names, signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	return identity
}

// record seals a record of tp's holding kps, the last one last-resort,
// expiring an hour before the first KeyPackage does.
func (tp *testPeer) record(tb testing.TB, seq uint64, kps ...*mlsgroup.KeyPackage) []byte {
	tb.Helper()
	r := Record{Peer: tp.id, Seq: seq}
	for i, kp := range kps {
		r.Entries = append(r.Entries, Entry{KeyPackage: kp.Bytes(), LastResort: i == len(kps)-1})
		if exp := kp.NotAfter().Add(-time.Hour); r.Expiry.IsZero() || exp.Before(r.Expiry) {
			r.Expiry = exp
		}
	}
	v, err := r.Seal(tp.key)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// validRecord is a record of tp's with three KeyPackages.
func (tp *testPeer) validRecord(tb testing.TB, seq uint64) []byte {
	tb.Helper()
	return tp.record(tb, seq, tp.keyPackage(tb, tp.key, testNow),
		tp.keyPackage(tb, tp.key, testNow), tp.keyPackage(tb, tp.key, testNow))
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// mapDHT is a DHT in memory. With a validator it behaves like one DHT node:
// it validates what is put and keeps the value Select prefers.
type mapDHT struct {
	mu        sync.Mutex
	values    map[string][]byte
	validator *Validator
	block     bool // GetValue waits for its context to end
	puts      int
}

func (d *mapDHT) PutValue(_ context.Context, key string, value []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.values == nil {
		d.values = make(map[string][]byte)
	}
	if v := d.validator; v != nil {
		if err := v.Validate(key, value); err != nil {
			return err
		}
		if old, ok := d.values[key]; ok {
			if i, err := v.Select(key, [][]byte{value, old}); err != nil || i != 0 {
				return fmt.Errorf("can't replace a newer value with an older value")
			}
		}
	}
	d.values[key] = value
	d.puts++
	return nil
}

func (d *mapDHT) GetValue(ctx context.Context, key string) ([]byte, error) {
	if d.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.values[key]
	if !ok {
		return nil, routing.ErrNotFound
	}
	return v, nil
}

func (d *mapDHT) get(key string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.values[key]
}

func (d *mapDHT) putCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.puts
}
