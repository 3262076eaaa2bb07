package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// KeyPackageStatus says what the store knows of a KeyPackageRef. It is a
// plain uint8, and its values match mlsgroup's KeyPackageStatus constants
// one for one, so that Store satisfies mlsgroup.Storage without this
// package importing mlsgroup (the import arrows point the other way).
type KeyPackageStatus = uint8

// The KeyPackageStatus values, identical to mlsgroup's.
const (
	KeyPackageUnknown   KeyPackageStatus = 0 // never held (or forgotten after TombstoneRetention)
	KeyPackageAvailable KeyPackageStatus = 1 // the private keys are here
	KeyPackageExpired   KeyPackageStatus = 2 // deleted when its lifetime ended
	KeyPackageConsumed  KeyPackageStatus = 3 // deleted when a Welcome used it
)

// Flags of a KeyPackage, in its value and its expiry index entry.
const (
	kpLastResort byte = 1 << iota
	kpUsed            // a last-resort KeyPackage that a join used
)

// KeyPackageInfo describes a held KeyPackage without its private key.
type KeyPackageInfo struct {
	Ref        []byte
	NotAfter   uint64 // Unix seconds
	LastResort bool
}

func encodeKP(notAfter uint64, flags byte, private []byte) []byte {
	v := make([]byte, 0, 9+len(private))
	v = binary.BigEndian.AppendUint64(v, notAfter)
	return append(append(v, flags), private...)
}

func (s *Store) decodeKP(ref, v []byte) (notAfter uint64, flags byte, private []byte, err error) {
	if len(v) < 9 {
		return 0, 0, nil, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("KeyPackage %x: value of %d bytes", ref, len(v))}
	}
	return binary.BigEndian.Uint64(v), v[8], v[9:], nil
}

// PutKeyPackage durably stores the private half of a KeyPackage, in its own
// synced batch; Batch.PutKeyPackage says what lastResort changes. It
// implements mlsgroup.Storage.
func (s *Store) PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) error {
	var b Batch
	b.PutKeyPackage(ref, private, notAfter, lastResort)
	return s.Commit(&b)
}

// KeyPackage returns the private half stored under ref and
// KeyPackageAvailable, or nil and the status that says why it is not here.
// It implements mlsgroup.Storage.
func (s *Store) KeyPackage(ref []byte) ([]byte, KeyPackageStatus, error) {
	v, err := s.get("read KeyPackage", kpKey(ref))
	if err == nil {
		_, _, private, err := s.decodeKP(ref, v)
		if err != nil {
			return nil, KeyPackageUnknown, err
		}
		return private, KeyPackageAvailable, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, KeyPackageUnknown, err
	}
	g, err := s.get("read KeyPackage tombstone", kpGoneKey(ref))
	if errors.Is(err, ErrNotFound) {
		return nil, KeyPackageUnknown, nil
	}
	if err != nil {
		return nil, KeyPackageUnknown, err
	}
	if len(g) != 9 || (g[0] != KeyPackageExpired && g[0] != KeyPackageConsumed) {
		return nil, KeyPackageUnknown, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("KeyPackage tombstone %x", ref)}
	}
	return nil, g[0], nil
}

// KeyPackages lists the KeyPackages held, soonest expiry first.
func (s *Store) KeyPackages() ([]KeyPackageInfo, error) {
	var out []KeyPackageInfo
	err := s.scan("list KeyPackages", util.BytesPrefix([]byte{nsKPExpiry}), false, func(k, v []byte) bool {
		notAfter, ref, ok := parseKPExpiryKey(k)
		if ok && len(v) == 1 {
			out = append(out, KeyPackageInfo{Ref: ref, NotAfter: notAfter, LastResort: v[0]&kpLastResort != 0})
		}
		return true
	})
	return out, err
}

func (w *writer) putKeyPackage(ref, private []byte, notAfter uint64, flags byte) error {
	old, ok, err := w.get(kpKey(ref))
	if err != nil {
		return err
	}
	if ok {
		oldNotAfter, _, _, err := w.s.decodeKP(ref, old)
		if err != nil {
			return err
		}
		if err := w.del(kpExpiryKey(oldNotAfter, ref)); err != nil {
			return err
		}
	}
	if err := w.put(kpKey(ref), encodeKP(notAfter, flags, private)); err != nil {
		return err
	}
	if err := w.put(kpExpiryKey(notAfter, ref), []byte{flags}); err != nil {
		return err
	}
	return w.del(kpGoneKey(ref))
}

func (w *writer) consumeKeyPackage(ref []byte) error {
	v, ok, err := w.get(kpKey(ref))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: KeyPackage %x to consume", ErrNotFound, ref)
	}
	notAfter, flags, private, err := w.s.decodeKP(ref, v)
	if err != nil {
		return err
	}
	if flags&kpLastResort != 0 {
		flags |= kpUsed
		if err := w.put(kpKey(ref), encodeKP(notAfter, flags, private)); err != nil {
			return err
		}
		return w.put(kpExpiryKey(notAfter, ref), []byte{flags})
	}
	return w.forgetKeyPackage(ref, notAfter, KeyPackageConsumed)
}

func (w *writer) forgetKeyPackage(ref []byte, notAfter uint64, why KeyPackageStatus) error {
	if err := w.del(kpKey(ref)); err != nil {
		return err
	}
	if err := w.del(kpExpiryKey(notAfter, ref)); err != nil {
		return err
	}
	g := binary.BigEndian.AppendUint64([]byte{why}, unixSeconds(w.s.opts.Now()))
	return w.put(kpGoneKey(ref), g)
}

// ExpireKeyPackages deletes, in one synced batch, every KeyPackage whose
// lifetime ended before now, except the newest last-resort KeyPackage,
// which stays until a newer one replaces it; and forgets tombstones older
// than TombstoneRetention. It returns how many KeyPackages it deleted. The
// store runs it every ExpiryInterval; callers with their own schedule may
// call it directly.
func (s *Store) ExpireKeyPackages(now time.Time) (int, error) {
	nowSec := unixSeconds(now)
	deleted := 0
	err := s.update("expire KeyPackages", func(w *writer) error {
		var index [][]byte
		var newestLR []byte
		var newestLRAt uint64
		it := s.db.NewIterator(util.BytesPrefix([]byte{nsKPExpiry}), nil)
		for it.Next() {
			k := append([]byte(nil), it.Key()...)
			f := byte(0)
			if len(it.Value()) == 1 {
				f = it.Value()[0]
			}
			index = append(index, k)
			if na, _, ok := parseKPExpiryKey(k); ok && f&kpLastResort != 0 && (newestLR == nil || na >= newestLRAt) {
				newestLR, newestLRAt = k, na
			}
		}
		it.Release()
		if err := it.Error(); err != nil {
			return translate(s.dir, "read KeyPackage expiry index", err)
		}
		for _, k := range index {
			notAfter, ref, ok := parseKPExpiryKey(k)
			if !ok || notAfter >= nowSec {
				// The index is in expiry order: the rest are alive.
				break
			}
			if string(k) == string(newestLR) {
				continue
			}
			if err := w.forgetKeyPackage(ref, notAfter, KeyPackageExpired); err != nil {
				return err
			}
			deleted++
		}
		return w.forgetOldTombstones(nowSec)
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

func (w *writer) forgetOldTombstones(nowSec uint64) error {
	keep := uint64(w.s.opts.TombstoneRetention / time.Second)
	var old [][]byte
	it := w.s.db.NewIterator(util.BytesPrefix([]byte{nsKPGone}), nil)
	for it.Next() {
		v := it.Value()
		if len(v) == 9 && binary.BigEndian.Uint64(v[1:])+keep < nowSec {
			old = append(old, append([]byte(nil), it.Key()...))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return translate(w.s.dir, "read KeyPackage tombstones", err)
	}
	for _, k := range old {
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}

func unixSeconds(t time.Time) uint64 {
	if u := t.Unix(); u > 0 {
		return uint64(u)
	}
	return 0
}
