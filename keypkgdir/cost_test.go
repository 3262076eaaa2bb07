package keypkgdir

import (
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// fullRecord is a's record of MaxEntries KeyPackages, and those.
func fullRecord(tb testing.TB, a *testPeer) ([]byte, []*mlsgroup.KeyPackage) {
	tb.Helper()
	kps := make([]*mlsgroup.KeyPackage, MaxEntries)
	for i := range kps {
		kps[i] = a.keyPackage(tb, a.key, testNow)
	}
	return a.record(tb, 1, kps...), kps
}

// BenchmarkValidateCosts is what a DHT node spends on a full record:
// valid, with its outer signature corrupted (refused before any
// KeyPackage is verified), with its last KeyPackage's signature corrupted
// (found only by verifying it, after the others: p2p's per-peer PUT
// budget is what bounds those), and a P-521 record, under a Validator
// that takes P-521 and under the zero Validator, which refuses it.
func BenchmarkValidateCosts(b *testing.B) {
	a := newTestPeer(b, 1)
	valid, kps := fullRecord(b, a)
	last := kps[len(kps)-1].Bytes()
	corruptKP := func(off int) []byte {
		r, err := Open(valid)
		if err != nil {
			b.Fatal(err)
		}
		kp := append([]byte(nil), last...)
		kp[len(kp)+off] ^= 1
		r.Entries[len(r.Entries)-1].KeyPackage = kp
		v, err := r.Seal(a.key)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	outer := append([]byte(nil), valid...)
	outer[len(outer)-1] ^= 1
	kps521 := make([]*mlsgroup.KeyPackage, MaxEntries)
	for i := range kps521 {
		kps521[i] = a.keyPackageIn(b, mlsgroup.P521_AES256GCM_SHA512_P521, a.key, testNow)
	}
	p521 := a.record(b, 2, kps521...)
	for _, tc := range []struct {
		name   string
		suites []mlsgroup.CipherSuite
		value  []byte
	}{
		{"valid", nil, valid},
		{"outer signature corrupted", nil, outer},
		{"last KeyPackage signature corrupted", nil, corruptKP(-1)},
		{"P-521 accepted", []mlsgroup.CipherSuite{mlsgroup.P521_AES256GCM_SHA512_P521}, p521},
		{"P-521 under the zero Validator", nil, p521},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v := Validator{Now: fixedClock(testNow), Suites: tc.suites}
			b.Logf("Validate: %v", v.Validate(Key(a.id), tc.value))
			for b.Loop() {
				v.Validate(Key(a.id), tc.value)
			}
		})
	}
}

// TestZeroValidatorTakesDefaultSuiteOnly: a Validator without Suites
// refuses a P-521 record (each of whose KeyPackages costs tens of times a
// default-suite one to verify) before verifying any signature, and takes
// a default-suite one.
func TestZeroValidatorTakesDefaultSuiteOnly(t *testing.T) {
	a := newTestPeer(t, 1)
	p521 := a.record(t, 1, a.keyPackageIn(t, mlsgroup.P521_AES256GCM_SHA512_P521, a.key, testNow),
		a.keyPackageIn(t, mlsgroup.P521_AES256GCM_SHA512_P521, a.key, testNow))
	var verified int
	v := counting(&verified)
	if err := v.Validate(Key(a.id), p521); !errors.Is(err, ErrInvalidKeyPackage) || verified != 0 {
		t.Fatalf("P-521 record under a Validator without Suites: %v, %d KeyPackages verified; want ErrInvalidKeyPackage, none", err, verified)
	}
	if err := v.Validate(Key(a.id), a.validRecord(t, 2)); err != nil || verified != 3 {
		t.Fatalf("default-suite record: %v, %d verified", err, verified)
	}
}
