package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// KeyPackageStatus says what a Storage knows of a KeyPackageRef, so that a
// failed join can say why (see NoMatchingKeyPackageError). It is a plain
// uint8 so that a Storage can satisfy the interface without importing this
// package; the values below are part of the contract.
type KeyPackageStatus = uint8

const (
	// KeyPackageUnknown: this storage never held the ref.
	KeyPackageUnknown KeyPackageStatus = 0
	// KeyPackageAvailable: the private keys are here.
	KeyPackageAvailable KeyPackageStatus = 1
	// KeyPackageExpired: held once, deleted when its lifetime ended.
	KeyPackageExpired KeyPackageStatus = 2
	// KeyPackageConsumed: held once, deleted when a Welcome used it.
	KeyPackageConsumed KeyPackageStatus = 3
)

// statusString names a KeyPackageStatus for error messages.
func statusString(s KeyPackageStatus) string {
	switch s {
	case KeyPackageUnknown:
		return "never held"
	case KeyPackageAvailable:
		return "available"
	case KeyPackageExpired:
		return "expired"
	case KeyPackageConsumed:
		return "already consumed"
	default:
		return "invalid status"
	}
}

// Storage is the node's one MLS provider: the only place mlsgroup finds
// private key material that outlives a call. A node opens one Storage and
// hands the same one to every operation; a KeyPackage generated through one
// Storage can be joined only through that Storage (or one reopened on the
// same data), which is the point: the bug this project exists to end is a
// provider created per operation.
//
// Values are opaque bytes whose format mlsgroup owns and versions; a
// Storage never interprets them. Group state is not here: mlsgroup returns
// it as bytes (Group.MarshalBinary) for the caller to persist together with
// the effects of the step that produced it.
//
// Implementations must be safe for concurrent use. Returned slices belong
// to the caller.
type Storage interface {
	// PutKeyPackage durably stores the private half of a KeyPackage under
	// its KeyPackageRef (RFC 9420 §5.2). notAfter is the KeyPackage's
	// lifetime end in Unix seconds; after it the storage may delete the
	// entry and must then report KeyPackageExpired for ref.
	//
	// lastResort marks the KeyPackage a node keeps published so that it
	// can always be invited (KeyPackageOptions.LastResort). Whether a
	// KeyPackage may serve more than one join is the storage's rule to
	// keep, not its callers': consuming a one-time KeyPackage after a join
	// deletes it (KeyPackageConsumed from then on), while a last-resort
	// one stays available, and outlives its expiry until a newer
	// last-resort KeyPackage exists.
	PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) error

	// KeyPackage returns the private half stored under ref with status
	// KeyPackageAvailable, or a nil slice and the status that says why it
	// is not there. err is for failures of the storage itself.
	KeyPackage(ref []byte) (private []byte, status KeyPackageStatus, err error)
}

// MemoryStorage is a Storage in memory, for tests and for cmd/mlspeer. The
// zero value is ready to use.
type MemoryStorage struct {
	mu   sync.Mutex
	kps  map[string]memKeyPackage
	gone map[string]KeyPackageStatus
}

type memKeyPackage struct {
	private    []byte
	notAfter   uint64
	lastResort bool
}

var _ Storage = (*MemoryStorage)(nil)

// PutKeyPackage implements Storage.
func (m *MemoryStorage) PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) error {
	if len(ref) == 0 {
		return errors.New("mlsgroup: empty KeyPackageRef")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kps == nil {
		m.kps = make(map[string]memKeyPackage)
	}
	m.kps[string(ref)] = memKeyPackage{bytes.Clone(private), notAfter, lastResort}
	delete(m.gone, string(ref))
	return nil
}

// KeyPackage implements Storage.
func (m *MemoryStorage) KeyPackage(ref []byte) ([]byte, KeyPackageStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if kp, ok := m.kps[string(ref)]; ok {
		return bytes.Clone(kp.private), KeyPackageAvailable, nil
	}
	return nil, m.gone[string(ref)], nil
}

// ConsumeKeyPackage deletes the private half of ref after a join used it
// (Effects.ConsumedKeyPackage), as a node's store does in the same batch
// that saves the joined group: a one-time KeyPackage then reports
// KeyPackageConsumed. A last-resort one is kept, and stays available for
// the next join, as the store package's rule is.
func (m *MemoryStorage) ConsumeKeyPackage(ref []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if kp, ok := m.kps[string(ref)]; ok && kp.lastResort {
		return
	}
	m.forgetLocked(string(ref), KeyPackageConsumed)
}

// ExpireKeyPackages deletes every KeyPackage whose lifetime ended before
// now (Unix seconds), except the newest last-resort one, which stays
// until a newer one replaces it: without it the node could not be invited.
func (m *MemoryStorage) ExpireKeyPackages(now uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	newest, found := "", false
	for ref, kp := range m.kps {
		if !kp.lastResort {
			continue
		}
		if n := m.kps[newest]; !found || kp.notAfter > n.notAfter || (kp.notAfter == n.notAfter && ref > newest) {
			newest, found = ref, true
		}
	}
	for ref, kp := range m.kps {
		if kp.notAfter < now && !(found && ref == newest) {
			m.forgetLocked(ref, KeyPackageExpired)
		}
	}
}

func (m *MemoryStorage) forgetLocked(ref string, why KeyPackageStatus) {
	if _, ok := m.kps[ref]; !ok {
		return
	}
	delete(m.kps, ref)
	if m.gone == nil {
		m.gone = make(map[string]KeyPackageStatus)
	}
	m.gone[ref] = why
}

// memoryStorageVersion versions MemoryStorage.MarshalBinary; version 1
// lacks the last-resort flag, and its KeyPackages load as one-time ones.
const memoryStorageVersion = 2

// MarshalBinary encodes the storage, so that tests can persist and reload
// a member's provider between steps as a node's store would.
func (m *MemoryStorage) MarshalBinary() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b cryptobyte.Builder
	b.AddUint8(memoryStorageVersion)
	refs := slices.Sorted(maps.Keys(m.kps))
	wire.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, ref := range refs {
			kp := m.kps[ref]
			wire.AddOpaque(b, []byte(ref))
			wire.AddOpaque(b, kp.private)
			b.AddUint64(kp.notAfter)
			wire.AddBool(b, kp.lastResort)
		}
	})
	gone := slices.Sorted(maps.Keys(m.gone))
	wire.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, ref := range gone {
			wire.AddOpaque(b, []byte(ref))
			b.AddUint8(m.gone[ref])
		}
	})
	return b.Bytes()
}

// UnmarshalBinary replaces the storage's contents with what MarshalBinary
// wrote.
func (m *MemoryStorage) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var version uint8
	var kps, gone cryptobyte.String
	if !s.ReadUint8(&version) || (version != memoryStorageVersion && version != 1) ||
		!wire.ReadVector(&s, &kps) || !wire.ReadVector(&s, &gone) || !s.Empty() {
		return fmt.Errorf("%w: memory storage", ErrInvalidState)
	}
	out := MemoryStorage{kps: make(map[string]memKeyPackage), gone: make(map[string]KeyPackageStatus)}
	for !kps.Empty() {
		var ref, priv []byte
		var notAfter uint64
		var lastResort bool
		if !wire.ReadOpaque(&kps, &ref) || !wire.ReadOpaqueCopy(&kps, &priv) || !kps.ReadUint64(&notAfter) ||
			(version >= 2 && !wire.ReadBool(&kps, &lastResort)) {
			return fmt.Errorf("%w: memory storage entry", ErrInvalidState)
		}
		out.kps[string(ref)] = memKeyPackage{priv, notAfter, lastResort}
	}
	for !gone.Empty() {
		var ref []byte
		var why uint8
		if !wire.ReadOpaque(&gone, &ref) || !gone.ReadUint8(&why) {
			return fmt.Errorf("%w: memory storage entry", ErrInvalidState)
		}
		out.gone[string(ref)] = why
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kps, m.gone = out.kps, out.gone
	return nil
}
