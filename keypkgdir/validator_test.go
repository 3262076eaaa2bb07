package keypkgdir

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

func TestRecordRoundTrip(t *testing.T) {
	tp := newTestPeer(t, 1)
	value := tp.validRecord(t, 7)
	r, err := Open(value)
	if err != nil {
		t.Fatal(err)
	}
	if r.Peer != tp.id || r.Seq != 7 || len(r.Entries) != 3 || !r.Entries[2].LastResort || r.Entries[0].LastResort {
		t.Fatalf("opened %+v", r)
	}
	again, err := r.Seal(tp.key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, value) {
		t.Fatal("sealing the opened record gives other bytes")
	}
	// Every byte is covered by the signature or is part of it.
	for i := range value {
		bad := slices.Clone(value)
		bad[i] ^= 0x01
		if _, err := Open(bad); err == nil {
			t.Fatalf("record with byte %d flipped opens", i)
		}
	}
	for i := range value {
		if _, err := Open(value[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("record truncated to %d bytes: %v", i, err)
		}
	}
	other := newTestPeer(t, 2)
	if _, err := r.Seal(other.key); err == nil {
		t.Fatal("sealed a record with another peer's key")
	}
}

// forged signs r with key, as an impostor would.
func forged(tb testing.TB, r Record, key crypto.PrivKey) []byte {
	tb.Helper()
	v, err := SealAs(&r, key)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestValidator covers every rule of the record validator: each case is a
// record some node might be handed under a peer's key, and the error it
// must be refused with.
func TestValidator(t *testing.T) {
	a, b := newTestPeer(t, 1), newTestPeer(t, 2)
	v := Validator{Now: fixedClock(testNow)}
	kp := func() *mlsgroup.KeyPackage { return a.keyPackage(t, []byte(a.id), testNow) }
	good, err := Open(a.validRecord(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(r *Record)) []byte {
		r := *good
		r.Entries = slices.Clone(good.Entries)
		edit(&r)
		value, err := r.Seal(a.key)
		if err != nil {
			t.Fatal(err)
		}
		return value
	}
	many := make([]*mlsgroup.KeyPackage, 60)
	for i := range many {
		many[i] = kp()
	}
	tampered := slices.Clone(good.Entries[0].KeyPackage)
	tampered[len(tampered)-1] ^= 1
	notYet := a.keyPackage(t, []byte(a.id), testNow.Add(3*time.Hour))

	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		want  error // nil: valid
	}{
		{"valid", Key(a.id), a.validRecord(t, 2), nil},
		{"a single last-resort KeyPackage", Key(a.id), a.record(t, 3, kp()), nil},
		{"signed by another key", Key(a.id), forged(t, *good, b.key), ErrBadSignature},
		{"signature broken", Key(a.id), func() []byte { v := a.validRecord(t, 4); v[len(v)-1] ^= 1; return v }(), ErrBadSignature},
		{"another peer's record", Key(a.id), b.validRecord(t, 5), ErrWrongPeer},
		{"expired", Key(a.id), with(func(r *Record) { r.Expiry = testNow.Add(-time.Second) }), ErrKeyPackageExpired},
		{"KeyPackage not yet valid", Key(a.id), a.record(t, 6, notYet), ErrKeyPackageExpired},
		{"oversized", Key(a.id), a.record(t, 7, many...), ErrTooLarge},
		{"another identity's KeyPackage", Key(a.id), a.record(t, 8, kp(), a.keyPackage(t, []byte(b.id), testNow)), ErrWrongIdentity},
		{"KeyPackage ends before the record", Key(a.id), with(func(r *Record) { r.Expiry = testNow.Add(25 * time.Hour) }), ErrInvalidKeyPackage},
		{"KeyPackage tampered with", Key(a.id), with(func(r *Record) { r.Entries[0].KeyPackage = tampered }), ErrInvalidKeyPackage},
		{"KeyPackage listed twice", Key(a.id), with(func(r *Record) { r.Entries[1] = r.Entries[0] }), ErrInvalidKeyPackage},
		{"two last-resort KeyPackages", Key(a.id), with(func(r *Record) { r.Entries[0].LastResort = true }), ErrInvalidKeyPackage},
		{"no KeyPackages", Key(a.id), with(func(r *Record) { r.Entries = nil }), ErrInvalidKeyPackage},
		{"not a KeyPackage", Key(a.id), with(func(r *Record) { r.Entries[0].KeyPackage = []byte{0, 1, 0, 5} }), ErrInvalidKeyPackage},
		{"garbage", Key(a.id), []byte("garbage"), ErrMalformed},
		{"key of another namespace", "/pk/" + a.id.String(), a.validRecord(t, 9), ErrMalformed},
		{"key without a peer ID", "/" + Namespace + "/someone", a.validRecord(t, 10), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.key, tc.value)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate: %v, want %v", err, tc.want)
			}
		})
	}
	if len(a.record(t, 7, many...)) <= MaxRecordSize {
		t.Fatal("the oversized record is not")
	}
}

// TestSelect: the highest sequence number wins whatever the order, so a
// lower one never replaces a higher; ties break the same way everywhere.
func TestSelect(t *testing.T) {
	a := newTestPeer(t, 1)
	v := Validator{}
	key := Key(a.id)
	r1, r2 := a.validRecord(t, 1), a.validRecord(t, 2)
	for _, tc := range []struct {
		name   string
		values [][]byte
		want   int
	}{
		{"higher second", [][]byte{r1, r2}, 1},
		{"higher first", [][]byte{r2, r1}, 0},
		{"identical", [][]byte{r2, r2}, 0},
		{"undecodable loses", [][]byte{[]byte("x"), r1}, 1},
		{"one of several", [][]byte{r1, r1, r2, r1}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Select(key, tc.values)
			if err != nil || got != tc.want {
				t.Fatalf("Select = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	// Same sequence number, different content: the same pick either way.
	other := a.validRecord(t, 2)
	forward, backward := [][]byte{r2, other}, [][]byte{other, r2}
	i, _ := v.Select(key, forward)
	j, _ := v.Select(key, backward)
	if !bytes.Equal(forward[i], backward[j]) {
		t.Fatal("tie broken differently by order")
	}
	if _, err := v.Select(key, [][]byte{[]byte("x")}); err == nil {
		t.Fatal("Select of nothing valid succeeded")
	}
}
