package keypkgdir

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	kp := func() *mlsgroup.KeyPackage { return a.keyPackage(t, a.key, testNow) }
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
	notYet := a.keyPackage(t, a.key, testNow.Add(3*time.Hour))

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
		{"another identity's KeyPackage", Key(a.id), a.record(t, 8, kp(), a.keyPackage(t, b.key, testNow)), ErrWrongIdentity},
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

// counting is a validator at testNow that counts in *verified the
// KeyPackages it fully validates: mlsgroup vets a KeyPackage's credential
// once its leaf signature verified.
func counting(verified *int) Validator {
	return Validator{Now: fixedClock(testNow), Options: mlsgroup.ValidationOptions{
		Credentials: func(uint16, []byte, []byte) error { *verified++; return nil },
	}}
}

// TestValidatorEntryLimit: a record of MaxEntries+1 KeyPackages, each
// valid and all well within MaxRecordSize, is refused before any of them
// is verified; one of MaxEntries passes.
func TestValidatorEntryLimit(t *testing.T) {
	a := newTestPeer(t, 1)
	kps := make([]*mlsgroup.KeyPackage, MaxEntries+1)
	for i := range kps {
		kps[i] = a.keyPackage(t, a.key, testNow)
	}
	var verified int
	v := counting(&verified)
	if err := v.Validate(Key(a.id), a.record(t, 1, kps[:MaxEntries]...)); err != nil || verified != MaxEntries {
		t.Fatalf("record of MaxEntries KeyPackages: %v, %d verified", err, verified)
	}
	verified = 0
	over := a.record(t, 2, kps...)
	if len(over) > MaxRecordSize {
		t.Fatalf("record of MaxEntries+1 KeyPackages is %d bytes, over MaxRecordSize", len(over))
	}
	err := v.Validate(Key(a.id), over)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("%d KeyPackages, limit %d", MaxEntries+1, MaxEntries)) {
		t.Fatalf("record of MaxEntries+1 KeyPackages: %v, want ErrTooLarge naming the limit", err)
	}
	if verified != 0 {
		t.Fatalf("%d KeyPackages verified before the record was refused", verified)
	}
}

// TestValidatorChecksCheaplyFirst: a record whose last entry fails a check
// that verifies no signature is refused before any of the others is
// verified, however many they are.
func TestValidatorChecksCheaplyFirst(t *testing.T) {
	a, b := newTestPeer(t, 1), newTestPeer(t, 2)
	valid := make([]Entry, MaxEntries-1)
	for i := range valid {
		valid[i] = Entry{KeyPackage: a.keyPackage(t, a.key, testNow).Bytes(), LastResort: i == 0}
	}
	seal := func(last Entry) []byte {
		r := Record{Peer: a.id, Seq: 1, Expiry: testNow.Add(12 * time.Hour), Entries: append(slices.Clone(valid), last)}
		value, err := r.Seal(a.key)
		if err != nil {
			t.Fatal(err)
		}
		return value
	}
	for _, tc := range []struct {
		name string
		last Entry
		want error // nil: valid
	}{
		{"valid", Entry{KeyPackage: a.keyPackage(t, a.key, testNow).Bytes()}, nil},
		{"another identity's KeyPackage", Entry{KeyPackage: a.keyPackage(t, b.key, testNow).Bytes()}, ErrWrongIdentity},
		{"KeyPackage ends before the record", Entry{KeyPackage: a.keyPackage(t, a.key, testNow.Add(-20*time.Hour)).Bytes()}, ErrInvalidKeyPackage},
		{"KeyPackage listed twice", valid[1], ErrInvalidKeyPackage},
		{"KeyPackage of another suite", Entry{KeyPackage: a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow).Bytes()}, ErrInvalidKeyPackage},
		{"two last-resort KeyPackages", Entry{KeyPackage: a.keyPackage(t, a.key, testNow).Bytes(), LastResort: true}, ErrInvalidKeyPackage},
		{"not a KeyPackage", Entry{KeyPackage: []byte{0, 1, 0, 5}}, ErrInvalidKeyPackage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var verified int
			err := counting(&verified).Validate(Key(a.id), seal(tc.last))
			switch {
			case tc.want == nil && (err != nil || verified != MaxEntries):
				t.Fatalf("Validate: %v, %d verified; want nil, %d", err, verified, MaxEntries)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Validate: %v, want %v", err, tc.want)
			case tc.want != nil && verified != 0:
				t.Fatalf("%d KeyPackages verified before the record was refused: %v", verified, err)
			}
		})
	}
}

// TestValidatorSuites: a record is in one suite, and Suites, when set,
// says which; a record in another is refused before any signature is
// checked, its own included.
func TestValidatorSuites(t *testing.T) {
	a, b := newTestPeer(t, 1), newTestPeer(t, 2)
	p256 := a.record(t, 1, a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow),
		a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow))
	mixed := a.record(t, 2, a.keyPackage(t, a.key, testNow),
		a.keyPackageIn(t, mlsgroup.P256_AES128GCM_SHA256_P256, a.key, testNow))
	opened, err := Open(p256)
	if err != nil {
		t.Fatal(err)
	}
	forgedP256 := forged(t, *opened, b.key)
	only := func(suites ...mlsgroup.CipherSuite) Validator {
		return Validator{Now: fixedClock(testNow), Suites: suites}
	}
	for _, tc := range []struct {
		name  string
		v     Validator
		value []byte
		want  error // nil: valid
	}{
		{"no Suites: the default only", only(), p256, ErrInvalidKeyPackage},
		{"the record's suite", only(mlsgroup.DefaultCipherSuite, mlsgroup.P256_AES128GCM_SHA256_P256), p256, nil},
		{"another suite", only(mlsgroup.DefaultCipherSuite), p256, ErrInvalidKeyPackage},
		{"another suite, forged", only(mlsgroup.DefaultCipherSuite), forgedP256, ErrInvalidKeyPackage},
		{"forged", only(mlsgroup.P256_AES128GCM_SHA256_P256), forgedP256, ErrBadSignature},
		{"two suites", only(mlsgroup.DefaultCipherSuite), mixed, ErrInvalidKeyPackage},
		{"two suites, both accepted", only(mlsgroup.DefaultCipherSuite, mlsgroup.P256_AES128GCM_SHA256_P256), mixed, ErrInvalidKeyPackage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var verified int
			tc.v.Options.Credentials = func(uint16, []byte, []byte) error { verified++; return nil }
			err := tc.v.Validate(Key(a.id), tc.value)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate: %v, want %v", err, tc.want)
			}
			if tc.want == nil && verified != 2 || tc.want != nil && verified != 0 {
				t.Fatalf("%d KeyPackages verified (%v)", verified, err)
			}
		})
	}
}

// BenchmarkValidateFullRecord is what the most a record can hold, in the
// default suite, costs every DHT node it is put to.
func BenchmarkValidateFullRecord(b *testing.B) {
	a := newTestPeer(b, 1)
	kps := make([]*mlsgroup.KeyPackage, MaxEntries)
	for i := range kps {
		kps[i] = a.keyPackage(b, a.key, testNow)
	}
	key, value := Key(a.id), a.record(b, 1, kps...)
	v := Validator{Now: fixedClock(testNow)}
	if err := v.Validate(key, value); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(key, value); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidatorBinding: a KeyPackage names its record's peer only through
// an Identity binding its own signature key to that peer. The old format,
// the peer ID's bytes, and forged bindings are refused before any
// KeyPackage is verified, whatever Options.Credentials lets through.
func TestValidatorBinding(t *testing.T) {
	a, b := newTestPeer(t, 1), newTestPeer(t, 2)
	sig, err := a.key.Sign(bindingMessage(a.signer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	forgedSig := identityOf(t, 1, publicKey(t, a.key), sig)
	// a's genuine binding of b's MLS key, on a KeyPackage a's key signs.
	otherKey, err := NewIdentity(a.key, b.signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	good := func() *mlsgroup.KeyPackage { return a.keyPackage(t, a.key, testNow) }
	for _, tc := range []struct {
		name string
		last *mlsgroup.KeyPackage
		want error // nil: valid
	}{
		{"bound", good(), nil},
		{"raw peer ID", a.keyPackageWith(t, []byte(a.id), testNow), ErrWrongIdentity},
		{"forged signature", a.keyPackageWith(t, forgedSig, testNow), ErrBadBinding},
		{"binding of another MLS key", a.keyPackageWith(t, otherKey, testNow), ErrBadBinding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := a.record(t, 1, good(), tc.last)
			for _, v := range []Validator{
				{Now: fixedClock(testNow)},
				{Now: fixedClock(testNow), Options: mlsgroup.ValidationOptions{Credentials: CredentialValidator}},
			} {
				if err := v.Validate(Key(a.id), value); tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, ErrWrongIdentity)) {
					t.Fatalf("Validate (Credentials set: %t): %v, want %v", v.Options.Credentials != nil, err, tc.want)
				}
			}
			var verified int
			err := counting(&verified).Validate(Key(a.id), value)
			switch {
			case tc.want == nil && (err != nil || verified != 2):
				t.Fatalf("accepting every credential: %v, %d verified", err, verified)
			case tc.want != nil && !errors.Is(err, ErrWrongIdentity):
				t.Fatalf("accepting every credential: %v, want ErrWrongIdentity", err)
			case tc.want != nil && verified != 0:
				t.Fatalf("%d KeyPackages verified before the binding was refused", verified)
			}
		})
	}
}
