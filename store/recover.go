package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/comparer"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// RecoverOptions configure Recover.
type RecoverOptions struct {
	Options
	// AcceptGroupMismatch keeps the recovered database even though the
	// number of group states in it differs from the number the store
	// recorded. Without it Recover returns ErrGroupsLost and the database
	// keeps failing to open, so that losing a group is always a decision.
	AcceptGroupMismatch bool
}

// RecoverResult is what Recover did.
type RecoverResult struct {
	// Backup is the copy of the data directory taken before anything was
	// changed.
	Backup string
	// GroupsRecorded is the number of group states the store had recorded
	// (0 if the record itself was lost: see CounterLost).
	GroupsRecorded uint64
	CounterLost    bool
	// GroupsFound is the number of group states in the recovered database.
	GroupsFound uint64
}

// Recover repairs the damaged store in dir, which no process may have open.
// It is the recovery path that a *CorruptError points to:
//
//  1. It copies every file of dir to a new sibling directory
//     (dir.backup-TIMESTAMP) before touching anything.
//  2. It rebuilds LevelDB's MANIFEST from the table files that are still
//     readable (leveldb.Recover); blocks that fail their checksum are
//     dropped, and so is what they held.
//  3. It opens the result as Open does, checking every remaining value, and
//     compares the group states found with the group counter the store
//     keeps. If they differ it returns ErrGroupsLost with the counts in
//     the result and leaves the counter alone, so the store still refuses
//     to open; rerun with AcceptGroupMismatch to keep what survived and
//     rejoin the lost groups (a member re-invites this node).
//
// Dropped blocks can also bring back an older version of a key whose newer
// version was lost: a group at an earlier epoch than its peers, which
// fails to decrypt and needs the same rejoin, or a secret that had been
// deleted. The backup holds everything the damaged store held, secrets
// included: delete it once it is no longer needed.
func Recover(dir string, opts *RecoverOptions) (RecoverResult, error) {
	var ro RecoverOptions
	if opts != nil {
		ro = *opts
	}
	o := ro.Options.withDefaults()
	var res RecoverResult
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil && !hasData(dir) {
		return res, fmt.Errorf("store: recover %s: no database there", dir)
	}
	// Holding the lock from before the backup keeps a daemon from starting
	// on the directory halfway through.
	stor, err := storage.OpenFile(dir, false)
	if err != nil {
		return res, openError(dir, err)
	}
	res.Backup, err = backup(dir, o)
	if err != nil {
		stor.Close()
		return res, err
	}
	lo := levelOptions()
	lo.Comparer = wholeKeys{}
	db, err := leveldb.Recover(stor, lo)
	if err != nil {
		stor.Close()
		return res, translate(dir, "recover", err)
	}
	rec := &recovery{res: &res, accept: ro.AcceptGroupMismatch}
	s, err := start(dir, o, db, stor, rec)
	if err != nil {
		return res, err
	}
	if err := s.Close(); err != nil {
		return res, err
	}
	if rec.mismatch && !rec.accept {
		lost := "the group counter was lost"
		if !res.CounterLost {
			lost = fmt.Sprintf("%d group states recorded, %d recovered", res.GroupsRecorded, res.GroupsFound)
		}
		return res, fmt.Errorf("%w: %s: %s; the original is in %s; rerun with AcceptGroupMismatch to keep what survived", ErrGroupsLost, dir, lost, res.Backup)
	}
	return res, nil
}

// wholeKeys is LevelDB's default ordering under its name, without index
// key shortening. leveldb.Recover rebuilds a table with damaged blocks
// using the user's comparer where it needs its internal-key comparer; with
// the default one, the rebuilt table's index holds shortened keys that are
// not internal keys, and the first read of it panics ("internal key ...
// invalid length"). Unshortened separators are whole internal keys, right
// under either comparer, so the rebuilt table reads back.
type wholeKeys struct{}

func (wholeKeys) Name() string                    { return comparer.DefaultComparer.Name() }
func (wholeKeys) Compare(a, b []byte) int         { return bytes.Compare(a, b) }
func (wholeKeys) Separator(_, _, _ []byte) []byte { return nil }
func (wholeKeys) Successor(_, _ []byte) []byte    { return nil }

// recovery carries Recover's decision into the open sequence.
type recovery struct {
	res      *RecoverResult
	accept   bool
	mismatch bool
}

// check is loadCounters under Recover: it records the counts and, when the
// caller accepted a mismatch, rewrites the counter to what was found.
func (r *recovery) check(s *Store, recorded uint64, err error, found uint64) (uint64, error) {
	switch {
	case errors.Is(err, ErrNotFound):
		r.res.CounterLost = true
	case err != nil:
		return 0, err
	}
	r.res.GroupsRecorded, r.res.GroupsFound = recorded, found
	if !r.res.CounterLost && recorded == found {
		return found, nil
	}
	r.mismatch = true
	if !r.accept {
		return found, nil
	}
	s.opts.Logger.Warn("store: recovery kept a group count mismatch", "dir", s.dir,
		"recorded", recorded, "found", found, "counterLost", r.res.CounterLost)
	v := binary.BigEndian.AppendUint64(nil, found)
	return found, translate(s.dir, "rewrite group counter", s.db.Put(metaKey(metaGroups), v, syncWrite))
}

// schemaLost handles a recovered database without its schema record. Only
// an accepted mismatch goes on, assuming the current layout (the record is
// written once, with the first batch, so only damage removes it).
func (r *recovery) schemaLost(s *Store, empty bool) error {
	r.mismatch, r.res.CounterLost = true, true
	if !r.accept {
		what := "the schema record was lost"
		if empty {
			what = "nothing was recoverable"
		}
		return fmt.Errorf("%w: %s: %s; the original is in %s", ErrGroupsLost, s.dir, what, r.res.Backup)
	}
	if empty {
		return s.create()
	}
	if err := s.loadCrypt(); err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint32(nil, schemaVersion)
	return translate(s.dir, "rewrite schema record", s.db.Put(metaKey(metaSchema), v, syncWrite))
}

// backup copies the files of dir into a new sibling directory and returns
// its path.
func backup(dir string, o Options) (string, error) {
	base := filepath.Clean(dir) + ".backup-" + o.Now().UTC().Format("20060102T150405Z")
	dst := base
	for i := 2; ; i++ {
		err := os.Mkdir(dst, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("store: backup: %w", err)
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("store: backup: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return "", fmt.Errorf("store: backup: %w", err)
		}
	}
	if err := syncDir(dst); err != nil {
		return "", fmt.Errorf("store: backup: %w", err)
	}
	return dst, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
