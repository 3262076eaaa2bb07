package store

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KDFParams are the argon2id cost parameters (RFC 9106) that turn the
// passphrase into the at-rest key.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF is RFC 9106 §4's second recommended option, for machines
// without 2 GiB to spare: t=3, m=64 MiB, p=4.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// The crypt record (meta "crypt", plaintext) holds what Open needs to derive
// the key and to tell a wrong passphrase from a damaged value:
//
//	u8 format (1) | u8 kdf (1 = argon2id) | u32 time | u32 memoryKiB |
//	u8 threads | u8 len(salt) | salt | sealed key check
//
// The key check is keyCheckPlain sealed under the derived key with the
// record's key as associated data: it opens only under the right key, so a
// wrong passphrase is ErrWrongPassphrase before any value is read.
const (
	cryptFormat   = 1
	kdfArgon2id   = 1
	saltLen       = 16
	keyCheckPlain = "spacepanda store key check v1"
)

// sealOverhead is what sealing adds to a value: a random XChaCha20 nonce
// (24 bytes, so that random nonces do not collide) and the Poly1305 tag.
const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// sealer encrypts values at rest. Each value is sealed with a fresh random
// nonce and with its full key as associated data, so a value moved to
// another key (another group's state, an older epoch's slot) fails to open
// instead of being accepted.
type sealer struct {
	aead cipher.AEAD
	rand io.Reader
}

func newSealer(key []byte, rand io.Reader) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, rand: rand}, nil
}

func (c *sealer) seal(key, plain []byte) ([]byte, error) {
	out := make([]byte, chacha20poly1305.NonceSizeX, sealOverhead+len(plain))
	if _, err := io.ReadFull(c.rand, out); err != nil {
		return nil, fmt.Errorf("store: nonce: %w", err)
	}
	return c.aead.Seal(out, out, plain, key), nil
}

var errUnauthentic = errors.New("value fails authentication")

func (c *sealer) open(key, val []byte) ([]byte, error) {
	if len(val) < sealOverhead {
		return nil, errUnauthentic
	}
	n := chacha20poly1305.NonceSizeX
	plain, err := c.aead.Open(nil, val[:n], val[n:], key)
	if err != nil {
		return nil, errUnauthentic
	}
	return plain, nil
}

// newCryptRecord derives a fresh key for a new store and returns it with the
// record that lets Open derive it again.
func newCryptRecord(pass []byte, p KDFParams, rand io.Reader) (*sealer, []byte, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, nil, fmt.Errorf("store: salt: %w", err)
	}
	c, err := newSealer(argon2.IDKey(pass, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize), rand)
	if err != nil {
		return nil, nil, err
	}
	rec := []byte{cryptFormat, kdfArgon2id}
	rec = binary.BigEndian.AppendUint32(rec, p.Time)
	rec = binary.BigEndian.AppendUint32(rec, p.MemoryKiB)
	rec = append(rec, p.Threads, byte(len(salt)))
	rec = append(rec, salt...)
	check, err := c.seal(metaKey(metaCrypt), []byte(keyCheckPlain))
	if err != nil {
		return nil, nil, err
	}
	return c, append(rec, check...), nil
}

// openCryptRecord derives the key from pass and the record, and checks it.
func openCryptRecord(pass, rec []byte, rand io.Reader) (*sealer, error) {
	const fixed = 2 + 4 + 4 + 1 + 1
	if len(rec) < fixed || rec[0] != cryptFormat || rec[1] != kdfArgon2id {
		return nil, errors.New("unknown crypt record format")
	}
	p := KDFParams{
		Time:      binary.BigEndian.Uint32(rec[2:6]),
		MemoryKiB: binary.BigEndian.Uint32(rec[6:10]),
		Threads:   rec[10],
	}
	n := int(rec[11])
	if p.Time == 0 || p.Threads == 0 || len(rec) < fixed+n {
		return nil, errors.New("malformed crypt record")
	}
	salt, check := rec[fixed:fixed+n], rec[fixed+n:]
	c, err := newSealer(argon2.IDKey(pass, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize), rand)
	if err != nil {
		return nil, err
	}
	plain, err := c.open(metaKey(metaCrypt), check)
	if err != nil || subtle.ConstantTimeCompare(plain, []byte(keyCheckPlain)) != 1 {
		return nil, ErrWrongPassphrase
	}
	return c, nil
}
