package store

import (
	"errors"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// SignatureKey returns the signature private key stored under name, or
// ErrNotFound.
func (s *Store) SignatureKey(name []byte) ([]byte, error) {
	if err := checkID("signature key name", name); err != nil {
		return nil, err
	}
	return s.get("read signature key", identityKey(name))
}

// Group returns a group's state, or ErrNotFound.
func (s *Store) Group(id []byte) ([]byte, error) {
	if err := checkID("group ID", id); err != nil {
		return nil, err
	}
	return s.get("read group", groupKey(id))
}

// GroupIDs lists the IDs of the groups with a stored state, in byte order.
func (s *Store) GroupIDs() ([][]byte, error) {
	var ids [][]byte
	err := s.scan("list groups", util.BytesPrefix([]byte{nsGroup}), false, func(k, _ []byte) bool {
		ids = append(ids, k[1:])
		return true
	})
	return ids, err
}

// PutWelcome durably stores a Welcome waiting for delivery under id, in
// its own synced batch, replacing any value there. With DeleteWelcome and
// Welcomes it makes *Store p2p's WelcomeStore.
func (s *Store) PutWelcome(id, value []byte) error {
	var b Batch
	b.PutWelcome(id, value)
	return s.Commit(&b)
}

// DeleteWelcome durably deletes the Welcome stored under id; an absent id
// is not an error.
func (s *Store) DeleteWelcome(id []byte) error {
	var b Batch
	b.DeleteWelcome(id)
	return s.Commit(&b)
}

// Welcomes returns every Welcome waiting for delivery, in ID order.
func (s *Store) Welcomes() ([][]byte, error) {
	var out [][]byte
	err := s.scan("list welcomes", util.BytesPrefix([]byte{nsWelcome}), false, func(_, v []byte) bool {
		out = append(out, v)
		return true
	})
	return out, err
}

// Invitation is a Welcome this node received, waiting for the user to
// accept it. Data is opaque.
type Invitation struct {
	ID   []byte
	Data []byte
}

// Invitation returns the invitation stored under id, or ErrNotFound.
func (s *Store) Invitation(id []byte) ([]byte, error) {
	if err := checkID("invitation ID", id); err != nil {
		return nil, err
	}
	return s.get("read invitation", inviteKey(id))
}

// Invitations returns every invitation, in ID order.
func (s *Store) Invitations() ([]Invitation, error) {
	var out []Invitation
	err := s.scan("list invitations", util.BytesPrefix([]byte{nsInvite}), false, func(k, v []byte) bool {
		out = append(out, Invitation{ID: k[1:], Data: v})
		return true
	})
	return out, err
}

// SyncCursor returns the cursor recorded for channel and peer, or nil and
// no error when there is none.
func (s *Store) SyncCursor(channel, peer []byte) ([]byte, error) {
	if err := errors.Join(checkID("channel ID", channel), checkID("peer ID", peer)); err != nil {
		return nil, err
	}
	v, err := s.get("read sync cursor", cursorKey(channel, peer))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// SyncCursors returns every cursor recorded for channel, keyed by
// string(peer).
func (s *Store) SyncCursors(channel []byte) (map[string][]byte, error) {
	if err := checkID("channel ID", channel); err != nil {
		return nil, err
	}
	p := cursorPrefix(channel)
	out := make(map[string][]byte)
	err := s.scan("list sync cursors", util.BytesPrefix(p), false, func(k, v []byte) bool {
		out[string(k[len(p):])] = v
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
