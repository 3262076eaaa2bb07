package store

import (
	"fmt"

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

// EpochSecret is one secret retained for a group's epoch. It does not print
// its secret.
type EpochSecret struct {
	Epoch  uint64
	ID     []byte
	Secret []byte
}

func (e EpochSecret) String() string   { return fmt.Sprintf("epoch %d secret %x", e.Epoch, e.ID) }
func (e EpochSecret) GoString() string { return "store.EpochSecret{" + e.String() + "}" }

// EpochSecret returns one retained secret, or ErrNotFound.
func (s *Store) EpochSecret(group []byte, epoch uint64, id []byte) ([]byte, error) {
	if err := checkID("group ID", group); err != nil {
		return nil, err
	}
	return s.get("read epoch secret", secretKey(group, epoch, id))
}

// EpochSecrets returns every secret retained for a group, oldest epoch
// first.
func (s *Store) EpochSecrets(group []byte) ([]EpochSecret, error) {
	if err := checkID("group ID", group); err != nil {
		return nil, err
	}
	var out []EpochSecret
	err := s.scan("list epoch secrets", util.BytesPrefix(secretPrefix(group)), false, func(k, v []byte) bool {
		if epoch, id, ok := parseSecretKey(group, k); ok {
			out = append(out, EpochSecret{Epoch: epoch, ID: id, Secret: v})
		}
		return true
	})
	return out, err
}

// Welcome is a Welcome message waiting for delivery.
type Welcome struct {
	Recipient []byte
	ID        []byte
	Data      []byte
}

// Welcomes returns the Welcomes waiting for recipient.
func (s *Store) Welcomes(recipient []byte) ([]Welcome, error) {
	if err := checkID("welcome recipient", recipient); err != nil {
		return nil, err
	}
	return s.welcomes(util.BytesPrefix(welcomePrefix(recipient)))
}

// PendingWelcomes returns every Welcome waiting for delivery, grouped by
// recipient.
func (s *Store) PendingWelcomes() ([]Welcome, error) {
	return s.welcomes(util.BytesPrefix([]byte{nsWelcome}))
}

func (s *Store) welcomes(r *util.Range) ([]Welcome, error) {
	var out []Welcome
	err := s.scan("list welcomes", r, false, func(k, v []byte) bool {
		if to, id, ok := parseWelcomeKey(k); ok {
			out = append(out, Welcome{Recipient: to, ID: id, Data: v})
		}
		return true
	})
	return out, err
}
