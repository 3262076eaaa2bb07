package keypkgdir

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

func testPublisher(tb testing.TB, a *testPeer, dht DHT, clk *clock) *Publisher {
	tb.Helper()
	p, err := NewPublisher(PublisherConfig{
		DHT: dht, Identity: a.key, Storage: a.st, Signer: a.signer, Rand: a.rand, Now: clk.Now,
		BatchSize: 4, Lifetime: 24 * time.Hour, RotateBefore: 6 * time.Hour,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// published opens a's record in dht and returns it with its KeyPackageRefs.
func published(tb testing.TB, dht *mapDHT, a *testPeer, now time.Time) (*Record, [][]byte) {
	tb.Helper()
	r, kps, err := Validator{Now: fixedClock(now)}.validate(Key(a.id), dht.get(Key(a.id)))
	if err != nil {
		tb.Fatal(err)
	}
	refs := make([][]byte, len(kps))
	for i, kp := range kps {
		refs[i] = kp.Ref()
	}
	return r, refs
}

func lastResortRef(r *Record, refs [][]byte) []byte {
	for i, e := range r.Entries {
		if e.LastResort {
			return refs[i]
		}
	}
	return nil
}

func containsRef(refs [][]byte, ref []byte) bool {
	return slices.ContainsFunc(refs, func(r []byte) bool { return bytes.Equal(r, ref) })
}

// TestPublisher follows a record through its life: first publication, an
// unchanged republication, a one-time KeyPackage used and replaced, the
// last-resort one used and kept, rotation of ageing KeyPackages, and a
// restart that carries on from the published record.
func TestPublisher(t *testing.T) {
	a := newTestPeer(t, 1)
	clk := &clock{now: testNow}
	dht := &mapDHT{validator: &Validator{Now: clk.Now}}
	p := testPublisher(t, a, dht, clk)
	ctx := context.Background()

	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	r1, refs1 := published(t, dht, a, clk.Now())
	if len(r1.Entries) != 5 || lastResortRef(r1, refs1) == nil {
		t.Fatalf("first record has %d entries, want 4 one-time and 1 last-resort", len(r1.Entries))
	}
	for _, ref := range refs1 {
		if _, status, _ := a.st.KeyPackage(ref); status != mlsgroup.KeyPackageAvailable {
			t.Fatal("a published KeyPackage's private keys are not in Storage")
		}
	}

	before := dht.get(Key(a.id))
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dht.get(Key(a.id)), before) || dht.putCount() != 2 {
		t.Fatal("republishing an unchanged batch did not put the same record again")
	}

	// A one-time KeyPackage is used: the node consumes it in its Storage,
	// which deletes it, and notifies the publisher; it leaves the record,
	// a new one takes its place.
	used := refs1[0]
	if bytes.Equal(used, lastResortRef(r1, refs1)) {
		t.Fatal("the last-resort KeyPackage is not last in the record")
	}
	a.st.ConsumeKeyPackage(used)
	if _, status, _ := a.st.KeyPackage(used); status != mlsgroup.KeyPackageConsumed {
		t.Fatalf("a consumed one-time KeyPackage has status %d", status)
	}
	p.Used(used)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	r2, refs2 := published(t, dht, a, clk.Now())
	if r2.Seq <= r1.Seq || containsRef(refs2, used) || len(refs2) != 5 {
		t.Fatalf("after Used: seq %d (was %d), used ref still there: %v", r2.Seq, r1.Seq, containsRef(refs2, used))
	}

	// The last-resort KeyPackage is used: the publisher made it with
	// LastResort, so the Storage keeps it available, and it stays in the
	// record.
	last := lastResortRef(r2, refs2)
	a.st.ConsumeKeyPackage(last)
	if _, status, _ := a.st.KeyPackage(last); status != mlsgroup.KeyPackageAvailable {
		t.Fatalf("the consumed last-resort KeyPackage has status %d", status)
	}
	p.Used(last)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, refs := published(t, dht, a, clk.Now()); !containsRef(refs, last) {
		t.Fatal("the last-resort KeyPackage left the record")
	}

	// 19 hours on, every KeyPackage has less than RotateBefore left.
	clk.advance(19 * time.Hour)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	r3, refs3 := published(t, dht, a, clk.Now())
	for _, ref := range refs2 {
		if containsRef(refs3, ref) {
			t.Fatal("an ageing KeyPackage was not rotated out")
		}
		if _, status, _ := a.st.KeyPackage(ref); ref != nil && !bytes.Equal(ref, used) && status != mlsgroup.KeyPackageAvailable {
			t.Fatal("a rotated KeyPackage's private keys left Storage before it expired")
		}
	}
	if !r3.Expiry.After(clk.Now().Add(6 * time.Hour)) {
		t.Fatalf("record expires at %s", r3.Expiry)
	}

	// A restart: the new publisher carries on from the record, keeping the
	// KeyPackages whose private keys Storage holds.
	a.st.ConsumeKeyPackage(refs3[1])
	restarted := testPublisher(t, a, dht, clk)
	if err := restarted.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	r4, refs4 := published(t, dht, a, clk.Now())
	if r4.Seq <= r3.Seq {
		t.Fatalf("restarted publisher went from seq %d to %d", r3.Seq, r4.Seq)
	}
	kept := 0
	for _, ref := range refs3 {
		if containsRef(refs4, ref) {
			kept++
		}
	}
	if kept != 4 || containsRef(refs4, refs3[1]) || len(refs4) != 5 {
		t.Fatalf("restart kept %d of the 4 available KeyPackages; consumed one kept: %v", kept, containsRef(refs4, refs3[1]))
	}
}

// TestPublisherRun: Run publishes at once, republishes every interval,
// publishes soon after a KeyPackage is used, and returns when ctx ends.
func TestPublisherRun(t *testing.T) {
	a := newTestPeer(t, 1)
	clk := &clock{now: testNow}
	run := func(interval time.Duration, during func(dht *mapDHT, p *Publisher)) {
		t.Helper()
		dht := &mapDHT{validator: &Validator{Now: clk.Now}}
		p := testPublisher(t, a, dht, clk)
		p.cfg.RepublishInterval = interval
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		during(dht, p)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("Run did not %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	run(20*time.Millisecond, func(dht *mapDHT, _ *Publisher) {
		waitUntil("republish", func() bool { return dht.putCount() >= 3 })
	})
	run(time.Hour, func(dht *mapDHT, p *Publisher) {
		waitUntil("publish at once", func() bool { return dht.putCount() == 1 })
		_, refs := published(t, dht, a, clk.Now())
		p.Used(refs[0])
		waitUntil("publish after Used", func() bool {
			_, now := published(t, dht, a, clk.Now())
			return !containsRef(now, refs[0])
		})
	})
}

// TestPublisherEntryLimit: the Publisher never puts a record of more than
// MaxEntries KeyPackages, which every DHT node would refuse: it refuses a
// BatchSize that leaves no room for the last-resort KeyPackage, fills a
// record to the limit with the largest it accepts, and trims a resumed
// record that already holds MaxEntries one-time KeyPackages.
func TestPublisherEntryLimit(t *testing.T) {
	a := newTestPeer(t, 1)
	clk := &clock{now: testNow}
	config := func(dht DHT, batch int) PublisherConfig {
		return PublisherConfig{DHT: dht, Identity: a.key, Storage: a.st, Signer: a.signer, Rand: a.rand, Now: clk.Now,
			BatchSize: batch, Lifetime: 24 * time.Hour, RotateBefore: 6 * time.Hour}
	}
	if _, err := NewPublisher(config(&mapDHT{}, MaxEntries)); err == nil {
		t.Fatal("NewPublisher accepted a BatchSize of MaxEntries")
	}
	ctx := context.Background()
	dht := &mapDHT{validator: &Validator{Now: clk.Now}}
	p, err := NewPublisher(config(dht, MaxEntries-1))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := published(t, dht, a, clk.Now()); len(r.Entries) != MaxEntries {
		t.Fatalf("BatchSize MaxEntries-1 published %d entries, want %d", len(r.Entries), MaxEntries)
	}

	// A record of MaxEntries one-time KeyPackages and no last-resort one,
	// such as another implementation might publish, all still in Storage.
	full := Record{Peer: a.id, Seq: 1, Expiry: testNow.Add(12 * time.Hour)}
	for range MaxEntries {
		full.Entries = append(full.Entries, Entry{KeyPackage: a.keyPackage(t, a.key, testNow).Bytes()})
	}
	value, err := full.Seal(a.key)
	if err != nil {
		t.Fatal(err)
	}
	dht = &mapDHT{validator: &Validator{Now: clk.Now}}
	if err := dht.PutValue(ctx, Key(a.id), value); err != nil {
		t.Fatal(err)
	}
	if err := testPublisher(t, a, dht, clk).Publish(ctx); err != nil {
		t.Fatalf("publishing after resuming a full record: %v", err)
	}
	if r, refs := published(t, dht, a, clk.Now()); len(r.Entries) != MaxEntries || lastResortRef(r, refs) == nil {
		t.Fatalf("after resuming a full record: %d entries, last-resort %v", len(r.Entries), lastResortRef(r, refs) != nil)
	}
}

// TestPublisherResumesAnotherSuite: a record a run with a signer of
// another suite left is carried on from by sequence number only, since
// keeping its KeyPackages would mix suites, which every DHT node refuses.
func TestPublisherResumesAnotherSuite(t *testing.T) {
	a := newTestPeer(t, 1)
	clk := &clock{now: testNow}
	dht := &mapDHT{validator: &Validator{Now: clk.Now, Suites: []mlsgroup.CipherSuite{mlsgroup.DefaultCipherSuite, mlsgroup.P256_AES128GCM_SHA256_P256}}}
	ctx := context.Background()
	const seq = 1 << 50 // beyond the clock's milliseconds, which seal would take
	old := a.record(t, seq, a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow),
		a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow))
	if err := dht.PutValue(ctx, Key(a.id), old); err != nil {
		t.Fatal(err)
	}
	if err := testPublisher(t, a, dht, clk).Publish(ctx); err != nil {
		t.Fatalf("publishing over a record of another suite: %v", err)
	}
	r, _, err := Validator{Now: clk.Now, Suites: []mlsgroup.CipherSuite{a.signer.CipherSuite()}}.validate(Key(a.id), dht.get(Key(a.id)))
	if err != nil {
		t.Fatalf("the record published is not of the signer's suite: %v", err)
	}
	if r.Seq <= seq {
		t.Fatalf("sequence number %d, not past the resumed record's %d", r.Seq, uint64(seq))
	}
}

// TestPublisherKeyPackageOptions: every KeyPackage carries the node's
// PublisherConfig.KeyPackageOptions, while the lifetime is the
// publisher's own (a NotAfter in the options does not override it).
func TestPublisherKeyPackageOptions(t *testing.T) {
	a := newTestPeer(t, 3)
	clk := &clock{now: testNow}
	dht := &mapDHT{validator: &Validator{Now: clk.Now}}
	marker := []byte("publisher options marker")
	p, err := NewPublisher(PublisherConfig{
		DHT: dht, Identity: a.key, Storage: a.st, Signer: a.signer, Rand: a.rand, Now: clk.Now,
		BatchSize: 2, Lifetime: 24 * time.Hour,
		KeyPackageOptions: mlsgroup.KeyPackageOptions{
			Capabilities:   mlsgroup.Capabilities{Extensions: []uint16{0xff10}},
			LeafExtensions: []mlsgroup.Extension{{Type: 0xff10, Data: marker}},
			NotAfter:       testNow.Add(time.Hour),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, _ := published(t, dht, a, clk.Now())
	if len(r.Entries) != 3 {
		t.Fatalf("%d entries, want 3", len(r.Entries))
	}
	for i, e := range r.Entries {
		kp, err := mlsgroup.ParseKeyPackage(e.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(kp.Bytes(), marker) {
			t.Errorf("entry %d lacks the configured leaf extension", i)
		}
		if got := kp.NotAfter().Sub(testNow); got < 23*time.Hour {
			t.Errorf("entry %d lives %s, want the publisher's 24h", i, got)
		}
	}
}
