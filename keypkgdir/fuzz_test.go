package keypkgdir

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// FuzzOpenRecord feeds open, Validate and Select what a DHT peer could
// send. Records that open re-encode to the bytes they came from, and since
// no one but the seeds' owners can sign, the only records that open or
// validate are the seeds themselves: a mutated record that passed would be
// one whose signature does not cover every byte.
func FuzzOpenRecord(f *testing.F) {
	a, b := newTestPeer(f, 1), newTestPeer(f, 2)
	kp := a.keyPackage(f, a.key, testNow)
	seeds := [][]byte{
		a.validRecord(f, 7),
		a.record(f, 1, kp),
		b.validRecord(f, 1<<40),
		// A record with no entries opens, though Validate refuses it.
		a.record(f, 2),
		// A forgery: b's key on a's record.
		forged(f, Record{Peer: a.id, Seq: 3, Expiry: testNow, Entries: []Entry{{KeyPackage: kp.Bytes()}}}, b.key),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	isSeed := func(data []byte) bool {
		for _, s := range seeds {
			if bytes.Equal(data, s) {
				return true
			}
		}
		return false
	}
	v := Validator{Now: fixedClock(testNow)}
	// The seeds reach every branch: one validates, one opens but does not
	// validate, one does not open.
	if err := v.Validate(Key(a.id), seeds[0]); err != nil {
		f.Fatalf("valid seed: %v", err)
	}
	if _, err := open(seeds[3]); err != nil || v.Validate(Key(a.id), seeds[3]) == nil {
		f.Fatalf("empty seed: open %v, validates", err)
	}
	if _, err := open(seeds[4]); err == nil {
		f.Fatal("forged seed opens")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := open(data)
		if err == nil {
			if !isSeed(data) {
				t.Fatalf("record %x that no one signed opens", data)
			}
			tbs, err := r.marshalTBS(r.pub)
			if err != nil {
				t.Fatalf("re-encoding opened record: %v", err)
			}
			b := cryptobyte.NewBuilder(tbs)
			addOpaque(b, r.sig)
			again, err := b.Bytes()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("record %x re-encodes to %x (%v)", data, again, err)
			}
		}
		for _, key := range []string{Key(a.id), Key(b.id)} {
			if v.Validate(key, data) == nil && !isSeed(data) {
				t.Fatalf("record %x that no one signed validates under %s", data, key)
			}
		}
		if i, err := v.Select(Key(a.id), [][]byte{seeds[0], data}); err != nil || (i != 0 && i != 1) {
			t.Fatalf("Select: %d, %v", i, err)
		}
	})
}
