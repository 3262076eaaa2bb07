package keypkgdir

import (
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"
)

// Namespace is the DHT key namespace of KeyPackage records: register
// Validator under it.
const Namespace = "spacepanda-kp"

// MaxRecordSize caps an encoded record: room for MaxEntries KeyPackages of
// the default suite, and small enough that serving records costs DHT nodes
// little.
const MaxRecordSize = 16 << 10

// MaxEntries caps the KeyPackages of a record. Every DHT node validates
// every record put to it, signatures and all, whoever puts it, so it is the
// number of KeyPackages, not the bytes, that sets what a record costs them:
// 16 holds the Publisher's default batch of 8 and its last-resort
// KeyPackage with room to spare, where MaxRecordSize alone lets in 41 of
// the default suite.
const MaxEntries = 16

const (
	recordVersion = 1
	// signatureContext separates record signatures from anything else the
	// libp2p key signs.
	signatureContext = "spacepanda KeyPackage record v1\x00"
)

// Key is the DHT key of p's record: /spacepanda-kp/<p in base58>.
func Key(p peer.ID) string { return "/" + Namespace + "/" + p.String() }

// parseKey returns the peer a DHT key names.
func parseKey(key string) (peer.ID, error) {
	rest, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok {
		return "", fmt.Errorf("%w: key %q outside /%s/", ErrMalformed, key, Namespace)
	}
	p, err := peer.Decode(rest)
	if err != nil {
		return "", fmt.Errorf("%w: key %q: %w", ErrMalformed, key, err)
	}
	return p, nil
}

// Entry is one KeyPackage of a record.
type Entry struct {
	KeyPackage []byte // an MLSMessage holding a KeyPackage
	// LastResort marks the one KeyPackage that stays published, and
	// usable, after it was used: inviters take it only when no one-time
	// KeyPackage is left.
	LastResort bool
}

// Record is a peer's published batch of KeyPackages.
type Record struct {
	Peer    peer.ID
	Seq     uint64    // a record with a higher Seq replaces one with a lower
	Expiry  time.Time // whole seconds; no later than any KeyPackage's not_after
	Entries []Entry
}

// Seal signs r with key, the libp2p key r.Peer is derived from, and returns
// the record's encoding.
func (r *Record) Seal(key crypto.PrivKey) ([]byte, error) {
	if !r.Peer.MatchesPrivateKey(key) {
		return nil, fmt.Errorf("keypkgdir: sealing %s's record with another key", r.Peer)
	}
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: encoding public key: %w", err)
	}
	tbs, err := r.marshalTBS(pub)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(append([]byte(signatureContext), tbs...))
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: signing record: %w", err)
	}
	b := cryptobyte.NewBuilder(tbs)
	addOpaque(b, sig)
	return b.Bytes()
}

func (r *Record) marshalTBS(pub []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(recordVersion)
	addOpaque(&b, pub)
	addOpaque(&b, []byte(r.Peer))
	b.AddUint64(r.Seq)
	b.AddUint64(uint64(max(r.Expiry.Unix(), 0)))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range r.Entries {
			addOpaque(b, e.KeyPackage)
			b.AddUint8(boolByte(e.LastResort))
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return out, nil
}

func addOpaque(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// sealed is a decoded record with what its signature covers.
type sealed struct {
	Record
	pub []byte // the signer's public key, libp2p protobuf encoding
	tbs []byte
	sig []byte
}

// decode parses a record without verifying it.
func decode(data []byte) (*sealed, error) {
	s := cryptobyte.String(data)
	var r sealed
	var version, lastResort uint8
	var id []byte
	var expiry uint64
	var entries cryptobyte.String
	if !s.ReadUint8(&version) || !readOpaque(&s, &r.pub) || !readOpaque(&s, &id) ||
		!s.ReadUint64(&r.Seq) || !s.ReadUint64(&expiry) || !s.ReadUint16LengthPrefixed(&entries) {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	if version != recordVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, version)
	}
	r.tbs = data[:len(data)-len(s)]
	if !readOpaque(&s, &r.sig) || !s.Empty() {
		return nil, fmt.Errorf("%w: signature", ErrMalformed)
	}
	for !entries.Empty() {
		var e Entry
		if !readOpaque(&entries, &e.KeyPackage) || !entries.ReadUint8(&lastResort) || lastResort > 1 {
			return nil, fmt.Errorf("%w: entry %d", ErrMalformed, len(r.Entries))
		}
		e.LastResort = lastResort == 1
		r.Entries = append(r.Entries, e)
	}
	var err error
	if r.Peer, err = peer.IDFromBytes(id); err != nil {
		return nil, fmt.Errorf("%w: peer ID: %w", ErrMalformed, err)
	}
	if expiry > 1<<62 {
		return nil, fmt.Errorf("%w: expiry %d", ErrMalformed, expiry)
	}
	r.Expiry = time.Unix(int64(expiry), 0)
	return &r, nil
}

func readOpaque(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&v) {
		return false
	}
	*out = append([]byte(nil), v...)
	return true
}

// Open decodes a record and verifies that it is signed by the key its peer
// ID is derived from. Whether it may be published under a key, and whether
// its KeyPackages are any good, is Validator's to say.
func Open(data []byte) (*Record, error) {
	r, err := open(data)
	if err != nil {
		return nil, err
	}
	return &r.Record, nil
}

func open(data []byte) (*sealed, error) {
	r, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := r.verify(); err != nil {
		return nil, err
	}
	return r, nil
}

// verify checks that r is signed by the key its peer ID is derived from.
func (r *sealed) verify() error {
	pub, err := crypto.UnmarshalPublicKey(r.pub)
	if err != nil {
		return fmt.Errorf("%w: public key: %w", ErrBadSignature, err)
	}
	if !r.Peer.MatchesPublicKey(pub) {
		return fmt.Errorf("%w: public key of another peer than %s", ErrBadSignature, r.Peer)
	}
	ok, err := pub.Verify(append([]byte(signatureContext), r.tbs...), r.sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: by %s", ErrBadSignature, r.Peer)
	}
	return nil
}
