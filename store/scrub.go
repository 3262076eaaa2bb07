package store

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// Deleting a key in LevelDB writes a tombstone; the old value stays in the
// write-ahead journal until the memtable is flushed, and in table files
// until a compaction merges it with the tombstone. Forward secrecy needs the
// bytes gone, so every Commit that deletes or overwrites a secret-bearing
// value marks its namespace dirty (a scrubSet, persisted in metaScrub in
// the same write), and Scrub runs CompactRange over each dirty namespace.
// CompactRange first rotates the memtable when it overlaps the range,
// which flushes it to a table and deletes the old journal, then merges the
// tables of every level in the range, which drops the shadowed values; the
// replaced files are deleted.
//
// What this does not reach: copies of freed blocks the filesystem or the
// disk keep (use an encrypted filesystem or Options.Passphrase for that),
// and values pinned by a LevelDB snapshot at the time of the compaction;
// the store holds none beyond a single read, and Datastore queries page
// with short-lived iterators for this reason.

// scrubNamespaces are the namespaces a scrubSet (a bitmask) can name. A
// scrubSet is persisted in metaScrub by position: append, never reorder,
// and keep retired namespaces in their place.
var scrubNamespaces = [...]byte{nsIdentity, nsKP, nsGroup, nsRetiredSecret, nsLog, nsWelcome, nsLogID, nsLogSeqID, nsInvite}

func scrubBit(ns byte) uint64 {
	for i, n := range scrubNamespaces {
		if n == ns {
			return 1 << i
		}
	}
	return 0
}

// Scrub compacts every namespace with deleted or overwritten secrets out of
// the database files now. The store does this by itself ScrubDelay after
// such a commit, at Open, and at Close; call Scrub when a deletion must be
// off the disk before going on.
func (s *Store) Scrub() error {
	s.scrubMu.Lock()
	defer s.scrubMu.Unlock()
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()

	s.commitMu.Lock()
	todo := s.dirty
	s.dirty = 0
	s.commitMu.Unlock()
	if todo == 0 {
		return nil
	}
	var err error
	for i, ns := range scrubNamespaces {
		if todo&(1<<i) == 0 {
			continue
		}
		if err = s.db.CompactRange(util.Range{Start: []byte{ns}, Limit: []byte{ns + 1}}); err != nil {
			err = translate(s.dir, "scrub "+nsName(ns), err)
			break
		}
	}

	if err == nil {
		s.awaitObsoleteFiles()
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err != nil {
		s.dirty |= todo
		return err
	}
	// Commits during the compaction may have dirtied namespaces again;
	// keep exactly those marked. Unsynced: if this write is lost, the next
	// Open scrubs once more for nothing.
	if s.marked != s.dirty {
		if err := s.db.Put(metaKey(metaScrub), binary.BigEndian.AppendUint64(nil, s.dirty), nil); err != nil {
			return translate(s.dir, "record scrub", err)
		}
		s.marked = s.dirty
	}
	s.opts.Logger.Debug("store: scrubbed", "dir", s.dir, "namespaces", todo)
	return nil
}

// obsoleteWait bounds how long Scrub waits for LevelDB to delete replaced
// files.
const obsoleteWait = 5 * time.Second

// awaitObsoleteFiles waits until LevelDB has deleted the table files that
// compactions replaced. It deletes them asynchronously, once no version
// refers to them any more, and forgets what is pending when it closes: a
// Scrub that returned before the deletion, followed by Close, would leave
// the old table, secrets and all, on disk until the next Open. A table
// pinned by a long-lived iterator outlasts the wait; it is deleted when the
// iterator is released.
func (s *Store) awaitObsoleteFiles() {
	deadline := time.Now().Add(obsoleteWait)
	for {
		stale, err := s.obsoleteTables()
		if err != nil || len(stale) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.opts.Logger.Warn("store: replaced tables not deleted yet", "dir", s.dir, "tables", stale)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// obsoleteTables lists the table files in the directory that the current
// version does not list: replaced ones awaiting deletion, and ones a
// compaction is writing.
func (s *Store) obsoleteTables() ([]string, error) {
	live, err := s.listTables()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".ldb")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(num, 10, 64); err == nil {
			if _, ok := live[n]; !ok {
				stale = append(stale, e.Name())
			}
		}
	}
	return stale, nil
}

// maintain is the store's one background goroutine: the KeyPackage expiry
// schedule and the delayed scrub.
func (s *Store) maintain() {
	defer s.bg.Done()
	var expiry <-chan time.Time
	if s.opts.ExpiryInterval > 0 {
		t := time.NewTicker(s.opts.ExpiryInterval)
		defer t.Stop()
		expiry = t.C
		// A node that was off for a while has KeyPackages to drop now.
		s.expire()
	}
	var scrub <-chan time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-s.scrubKick:
			if s.opts.ScrubDelay >= 0 && scrub == nil {
				scrub = time.After(s.opts.ScrubDelay)
			}
		case <-scrub:
			scrub = nil
			if err := s.Scrub(); err != nil {
				s.opts.Logger.Error("store: scrub failed", "dir", s.dir, "err", err)
			}
		case <-expiry:
			s.expire()
		}
	}
}

func (s *Store) expire() {
	n, err := s.ExpireKeyPackages(s.opts.Now())
	if err != nil {
		s.opts.Logger.Error("store: KeyPackage expiry failed", "dir", s.dir, "err", err)
		return
	}
	if n > 0 {
		s.opts.Logger.Info("store: expired KeyPackages", "dir", s.dir, "count", n)
	}
}
