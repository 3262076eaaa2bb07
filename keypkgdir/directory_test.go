package keypkgdir

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

func TestFetch(t *testing.T) {
	a := newTestPeer(t, 1)
	dht := &mapDHT{}
	d := &Directory{DHT: dht, Validator: Validator{Now: fixedClock(testNow)}, Rand: seeded(9)}
	ctx := context.Background()

	// Nothing published: ErrNoKeyPackages.
	if _, err := d.Fetch(ctx, a.id); !errors.Is(err, ErrNoKeyPackages) {
		t.Fatalf("Fetch of an unpublished peer: %v, want ErrNoKeyPackages", err)
	}

	// Inviters pick among the one-time KeyPackages, never the last-resort
	// one while another is left.
	kps := []*mlsgroup.KeyPackage{
		a.keyPackage(t, a.key, testNow), a.keyPackage(t, a.key, testNow), a.keyPackage(t, a.key, testNow),
	}
	dht.PutValue(ctx, Key(a.id), a.record(t, 1, kps...))
	picked := make(map[string]int)
	for range 40 {
		kp, err := d.Fetch(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := PeerOf(kp.Identity(), kp.SignatureKey()); err != nil || p != a.id {
			t.Fatal("fetched a KeyPackage of another identity")
		}
		picked[string(kp.Ref())]++
	}
	if picked[string(kps[2].Ref())] != 0 || picked[string(kps[0].Ref())] == 0 || picked[string(kps[1].Ref())] == 0 {
		t.Fatalf("picks %v: want both one-time KeyPackages and never the last-resort one", picked)
	}

	// Only the last-resort one left: that one.
	dht.PutValue(ctx, Key(a.id), a.record(t, 2, kps[2]))
	kp, err := d.Fetch(ctx, a.id)
	if err != nil || !bytes.Equal(kp.Ref(), kps[2].Ref()) {
		t.Fatalf("Fetch with only the last-resort KeyPackage: %v", err)
	}

	// A record past its expiry, served by a DHT that does not check:
	// ErrKeyPackageExpired.
	late := &Directory{DHT: dht, Validator: Validator{Now: fixedClock(testNow.Add(48 * time.Hour))}}
	if _, err := late.Fetch(ctx, a.id); !errors.Is(err, ErrKeyPackageExpired) {
		t.Fatalf("Fetch of an expired record: %v, want ErrKeyPackageExpired", err)
	}

	// Something else served under a's key: ErrNoKeyPackages.
	b := newTestPeer(t, 2)
	dht.PutValue(ctx, Key(a.id), b.validRecord(t, 3))
	if _, err := d.Fetch(ctx, a.id); !errors.Is(err, ErrNoKeyPackages) || !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("Fetch of a misfiled record: %v, want ErrNoKeyPackages", err)
	}
}

// TestFetchIsBounded: a DHT that never answers does not hang Fetch.
func TestFetchIsBounded(t *testing.T) {
	a := newTestPeer(t, 1)
	d := &Directory{DHT: &mapDHT{block: true}, Timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := d.Fetch(context.Background(), a.id)
	if !errors.Is(err, ErrNoKeyPackages) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch from a silent DHT: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Fetch(ctx, a.id); !errors.Is(err, ErrNoKeyPackages) {
		t.Fatalf("Fetch with a deadline: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("Fetch took %s", elapsed)
	}
}
