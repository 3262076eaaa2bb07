package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// schemaVersion is the layout keys.go describes. Every change to a key or
// value layout adds a migration below and bumps it.
const schemaVersion = 3

// A migration brings a database from version-1 to version. It adds its
// changes to b, which is written in one synced batch together with the new
// version number: a crash leaves the database at the old version or the new
// one, and Open simply runs the migration again.
type migration struct {
	version uint32
	what    string
	apply   func(s *Store, b *leveldb.Batch) error
}

// migrations, in order. Version 1 is the first layout of this package,
// which had no group counter.
var migrations = []migration{
	{2, "record the number of group states in meta/groups", migrateGroupCounter},
	{3, "drop retained epoch secrets, file pending Welcomes by ID only", migrateRetireSecrets},
}

func migrateGroupCounter(s *Store, b *leveldb.Batch) error {
	n, err := s.countKeys([]byte{nsGroup})
	if err != nil {
		return err
	}
	b.Put(metaKey(metaGroups), binary.BigEndian.AppendUint64(nil, n))
	return nil
}

// migrateRetireSecrets deletes the retired epoch-secret namespace and
// rewrites the pending Welcomes, which schema 2 filed under lp(recipient) |
// id, to id alone, resealing each under its new key. p2p's outbox, the one
// writer of Welcomes, gives each an ID unique across recipients; should two
// recipients share one anyway, the last in key order wins, as a second put
// under one ID would. Both namespaces then need a scrub, recorded in the
// same batch.
func migrateRetireSecrets(s *Store, b *leveldb.Batch) error {
	retired := util.BytesPrefix([]byte{nsRetiredSecret})
	if err := s.rawKeys(retired, func(k []byte) { b.Delete(k) }); err != nil {
		return err
	}
	var olds [][]byte
	if err := s.rawKeys(util.BytesPrefix([]byte{nsWelcome}), func(k []byte) { olds = append(olds, k) }); err != nil {
		return err
	}
	for _, k := range olds {
		_, id, ok := parseOldWelcomeKey(k)
		if !ok || len(id) == 0 {
			return &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("schema 2 welcome key %x", k)}
		}
		raw, err := s.db.Get(k, nil)
		if err != nil {
			return translate(s.dir, "read welcome", err)
		}
		plain, err := s.openValue(k, raw)
		if err != nil {
			return err
		}
		v, err := s.sealValue(welcomeKey(id), plain)
		if err != nil {
			return err
		}
		b.Delete(k)
		b.Put(welcomeKey(id), v)
	}
	if b.Len() == 0 {
		return nil
	}
	m, err := s.readU64(metaKey(metaScrub))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	m |= scrubBit(nsRetiredSecret) | scrubBit(nsWelcome)
	b.Put(metaKey(metaScrub), binary.BigEndian.AppendUint64(nil, m))
	return nil
}

// rawKeys calls fn with a copy of every key in r.
func (s *Store) rawKeys(r *util.Range, fn func(k []byte)) error {
	it := s.db.NewIterator(r, nil)
	for it.Next() {
		fn(bytes.Clone(it.Key()))
	}
	it.Release()
	return translate(s.dir, "read range", it.Error())
}

var syncWrite = &opt.WriteOptions{Sync: true}

// initSchema creates a new database or loads (and migrates) an existing
// one, setting up encryption at rest either way.
func (s *Store) initSchema(rec *recovery) error {
	v, err := s.db.Get(metaKey(metaSchema), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		it := s.db.NewIterator(nil, nil)
		empty := !it.First()
		it.Release()
		switch {
		case rec != nil:
			// Recovery lost the record: an empty result must not pass
			// for a new store, which would hide that everything is gone.
			return rec.schemaLost(s, empty)
		case !empty:
			return &CorruptError{Dir: s.dir, Detail: "the schema version record is missing"}
		}
		return s.create()
	}
	if err != nil {
		return translate(s.dir, "read schema version", err)
	}
	if len(v) != 4 {
		return &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("schema version record has %d bytes", len(v))}
	}
	version := binary.BigEndian.Uint32(v)
	if version > schemaVersion {
		return fmt.Errorf("%w: %s is at schema %d, this program knows up to %d", ErrSchemaTooNew, s.dir, version, schemaVersion)
	}
	if err := s.loadCrypt(); err != nil {
		return err
	}
	for _, m := range migrations {
		if m.version <= version {
			continue
		}
		b := new(leveldb.Batch)
		if err := m.apply(s, b); err != nil {
			return fmt.Errorf("store: migration to schema %d (%s): %w", m.version, m.what, err)
		}
		b.Put(metaKey(metaSchema), binary.BigEndian.AppendUint32(nil, m.version))
		if err := s.db.Write(b, syncWrite); err != nil {
			return translate(s.dir, fmt.Sprintf("migration to schema %d", m.version), err)
		}
		s.opts.Logger.Info("store: migrated", "dir", s.dir, "schema", m.version, "what", m.what)
	}
	return nil
}

// create writes the records of a new, empty store in one synced batch.
func (s *Store) create() error {
	b := new(leveldb.Batch)
	b.Put(metaKey(metaSchema), binary.BigEndian.AppendUint32(nil, schemaVersion))
	b.Put(metaKey(metaGroups), make([]byte, 8))
	if len(s.opts.Passphrase) > 0 {
		c, rec, err := newCryptRecord(s.opts.Passphrase, s.opts.KDF, s.opts.Rand)
		if err != nil {
			return err
		}
		s.crypt = c
		b.Put(metaKey(metaCrypt), rec)
	}
	return translate(s.dir, "create", s.db.Write(b, syncWrite))
}

// loadCrypt derives the at-rest key of an existing store, if it has one.
func (s *Store) loadCrypt() error {
	rec, err := s.db.Get(metaKey(metaCrypt), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		if len(s.opts.Passphrase) > 0 {
			return fmt.Errorf("%w: %s", ErrNotEncrypted, s.dir)
		}
		return nil
	case err != nil:
		return translate(s.dir, "read crypt record", err)
	case len(s.opts.Passphrase) == 0:
		return fmt.Errorf("%w: %s", ErrPassphraseRequired, s.dir)
	}
	c, err := openCryptRecord(s.opts.Passphrase, rec, s.opts.Rand)
	if errors.Is(err, ErrWrongPassphrase) {
		return fmt.Errorf("%w for %s", ErrWrongPassphrase, s.dir)
	}
	if err != nil {
		return &CorruptError{Dir: s.dir, Detail: "crypt record: " + err.Error()}
	}
	s.crypt = c
	return nil
}
