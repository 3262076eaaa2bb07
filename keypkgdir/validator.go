package keypkgdir

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// Validator is the DHT's validator for Namespace: every DHT node runs it on
// every record it is asked to store or is served, so a bad record is
// refused wherever it goes. Its zero value reads the system clock, applies
// mlsgroup's default validation options with CredentialValidator and
// accepts the default suite only.
//
// Anyone can sign a record under a peer ID of their own and have every DHT
// node validate it, so Validate spends what is costly, the KeyPackages'
// signatures, last: whatever can be checked without them is checked first,
// in every entry.
type Validator struct {
	// Now is the clock records and KeyPackages are checked against; nil
	// means time.Now.
	Now func() time.Time
	// Options are the node's MLS validation choices for KeyPackages. If
	// Options.Credentials is nil, CredentialValidator vets them: it is what
	// every member of a group will apply to a KeyPackage added to it, so a
	// record passing a laxer check would only offer inviters KeyPackages
	// their groups refuse. Whatever Credentials is, every KeyPackage must
	// bind its signature key to the record's peer.
	Options mlsgroup.ValidationOptions
	// Suites are the cipher suites whose KeyPackages are accepted; empty
	// means mlsgroup.DefaultCipherSuite only. Verifying a KeyPackage costs
	// tens of times more in P-521 than in the default suite, and a record
	// of KeyPackages no one can use costs the DHT nodes that validate it
	// all the same, so a suite is accepted only where the node says so.
	Suites []mlsgroup.CipherSuite
}

// Validate accepts value under key when it is at most MaxRecordSize bytes,
// signed by the key of the peer that key names, not expired, and holds at
// most MaxEntries KeyPackages, all in one of Suites, each of which names
// that peer (PeerOf its identity and signature key), lives at least until
// the record's expiry and passes mlsgroup's validation (RFC 9420 §10.1).
func (v Validator) Validate(key string, value []byte) error {
	_, _, err := v.validate(key, value)
	return err
}

// validate is Validate returning the record and its parsed KeyPackages.
func (v Validator) validate(key string, value []byte) (*Record, []*mlsgroup.KeyPackage, error) {
	if len(value) > MaxRecordSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), MaxRecordSize)
	}
	p, err := parseKey(key)
	if err != nil {
		return nil, nil, err
	}
	r, err := decode(value)
	if err != nil {
		return nil, nil, err
	}
	if r.Peer != p {
		return nil, nil, fmt.Errorf("%w: %s's record under %s", ErrWrongPeer, r.Peer, key)
	}
	kps, bindings, err := v.parseEntries(p, &r.Record)
	if err != nil {
		return nil, nil, err
	}
	// The record's signature comes before its expiry, so that whoever
	// serves an inviter a forged record cannot make it report the peer's
	// KeyPackages expired.
	if err := r.verify(); err != nil {
		return nil, nil, err
	}
	now := v.now()
	if now.After(r.Expiry) {
		return nil, nil, fmt.Errorf("%w: %s's record expired at %s", ErrKeyPackageExpired, p, r.Expiry.UTC().Format(time.RFC3339))
	}
	// The bindings before the KeyPackages: one signature each, where a
	// KeyPackage costs more, so a forged binding anywhere costs little.
	for i, b := range bindings {
		if err := b.verify(kps[i].SignatureKey()); err != nil {
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrWrongIdentity, i, err)
		}
	}
	opts := v.Options
	if opts.Credentials == nil {
		// CredentialValidator less the binding, just verified.
		opts.Credentials = basicOnly
	}
	for i, kp := range kps {
		err := kp.Validate(now, opts)
		switch {
		case errors.Is(err, mlsgroup.ErrKeyPackageExpired):
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrKeyPackageExpired, i, err)
		case err != nil:
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidKeyPackage, i, err)
		}
	}
	return &r.Record, kps, nil
}

// parseEntries parses r's KeyPackages and their credential identities and
// runs every check on them that verifies no signature; the bindings it
// returns, one a KeyPackage, are left to verify.
func (v Validator) parseEntries(p peer.ID, r *Record) ([]*mlsgroup.KeyPackage, []*binding, error) {
	switch {
	case len(r.Entries) == 0:
		return nil, nil, fmt.Errorf("%w: %s's record holds none", ErrInvalidKeyPackage, p)
	case len(r.Entries) > MaxEntries:
		return nil, nil, fmt.Errorf("%w: %d KeyPackages, limit %d", ErrTooLarge, len(r.Entries), MaxEntries)
	}
	kps := make([]*mlsgroup.KeyPackage, len(r.Entries))
	bindings := make([]*binding, len(r.Entries))
	lastResort := 0
	for i, e := range r.Entries {
		kp, err := mlsgroup.ParseKeyPackage(e.KeyPackage)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidKeyPackage, i, err)
		}
		switch cs := kp.CipherSuite(); {
		case i > 0 && cs != kps[0].CipherSuite():
			// One suite a record: a Publisher's signer has one, and
			// Suites is then checked once.
			return nil, nil, fmt.Errorf("%w: entry %d in cipher suite 0x%04x, entry 0 in 0x%04x", ErrInvalidKeyPackage, i, uint16(cs), uint16(kps[0].CipherSuite()))
		case i == 0 && !slices.Contains(v.suites(), cs):
			return nil, nil, fmt.Errorf("%w: cipher suite 0x%04x not accepted", ErrInvalidKeyPackage, uint16(cs))
		case kp.NotAfter().Before(r.Expiry):
			return nil, nil, fmt.Errorf("%w: entry %d ends at %s, before the record", ErrInvalidKeyPackage, i, kp.NotAfter().UTC().Format(time.RFC3339))
		}
		for j := range i {
			if bytes.Equal(kps[j].Ref(), kp.Ref()) {
				return nil, nil, fmt.Errorf("%w: entries %d and %d are the same KeyPackage", ErrInvalidKeyPackage, j, i)
			}
		}
		b, err := parseIdentity(kp.Identity())
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrWrongIdentity, i, err)
		case b.peer != p:
			return nil, nil, fmt.Errorf("%w: entry %d names %s, not %s", ErrWrongIdentity, i, b.peer, p)
		}
		if e.LastResort {
			lastResort++
		}
		kps[i], bindings[i] = kp, b
	}
	if lastResort > 1 {
		return nil, nil, fmt.Errorf("%w: %d last-resort KeyPackages", ErrInvalidKeyPackage, lastResort)
	}
	return kps, bindings, nil
}

// basicOnly is CredentialValidator for credentials whose binding is
// already verified.
func basicOnly(credentialType uint16, _, _ []byte) error {
	if credentialType != basicCredential {
		return fmt.Errorf("%w: credential type %d, not basic", ErrBadBinding, credentialType)
	}
	return nil
}

// defaultSuites are the suites of a Validator without Suites.
var defaultSuites = []mlsgroup.CipherSuite{mlsgroup.DefaultCipherSuite}

func (v Validator) suites() []mlsgroup.CipherSuite {
	if len(v.Suites) == 0 {
		return defaultSuites
	}
	return v.Suites
}

func (v Validator) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// Select picks the record with the highest sequence number, so a record
// never gives way to an older one. Among equal sequence numbers, which an
// honest owner never reuses, it picks the later expiry, then the greater
// encoding, so that every node picks the same; among identical records the
// first. The DHT calls it with validated values only; ones that do not
// decode lose.
func (Validator) Select(_ string, values [][]byte) (int, error) {
	best := -1
	var bestRec *sealed
	for i, v := range values {
		r, err := decode(v)
		if err != nil {
			continue
		}
		if best < 0 || better(r, v, bestRec, values[best]) {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no record to select from", ErrMalformed)
	}
	return best, nil
}

func better(a *sealed, av []byte, b *sealed, bv []byte) bool {
	switch {
	case a.Seq != b.Seq:
		return a.Seq > b.Seq
	case !a.Expiry.Equal(b.Expiry):
		return a.Expiry.After(b.Expiry)
	}
	return bytes.Compare(av, bv) > 0
}
