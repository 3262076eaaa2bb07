package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Options configure Open. The zero value (or nil) is a plaintext store with
// the default schedules.
type Options struct {
	// Passphrase, when not empty, encrypts every value at rest. It is
	// chosen when the store is created and required on every Open after.
	Passphrase []byte
	// KDF is the cost of deriving the key from Passphrase when the store is
	// created; zero means DefaultKDF. An existing store uses the
	// parameters it recorded.
	KDF KDFParams

	// Logger receives maintenance events; nil discards them.
	Logger *slog.Logger
	// Rand is the source of nonces and salts; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock for KeyPackage expiry; nil means time.Now.
	Now func() time.Time

	// ExpiryInterval is how often expired KeyPackages are deleted in the
	// background; zero means 10 minutes, negative disables the schedule
	// (ExpireKeyPackages still works).
	ExpiryInterval time.Duration
	// TombstoneRetention is how long the store remembers that a KeyPackage
	// it deleted was expired or consumed, for error messages; zero means
	// 30 days.
	TombstoneRetention time.Duration
	// ScrubDelay is how long after a deletion or overwrite of secret
	// material the background scrubber compacts it out of the files,
	// coalescing the deletions of a burst; zero means one second, negative
	// leaves scrubbing to Scrub and Close.
	ScrubDelay time.Duration
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.KDF == (KDFParams{}) {
		c.KDF = DefaultKDF
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = 10 * time.Minute
	}
	if c.TombstoneRetention == 0 {
		c.TombstoneRetention = 30 * 24 * time.Hour
	}
	if c.ScrubDelay == 0 {
		c.ScrubDelay = time.Second
	}
	return c
}

// Store is the node's one MLS provider and message log, in one LevelDB. It
// is safe for concurrent use.
type Store struct {
	dir   string
	opts  Options
	db    *leveldb.DB
	stor  io.Closer // LevelDB's storage, holding the directory lock; closed after db
	crypt *sealer   // nil for a plaintext store

	// Lock order: scrubMu, then closeMu, then commitMu.

	// closeMu is held for reading by every operation and for writing by
	// Close, so Close waits for operations in flight and refuses new ones.
	closeMu sync.RWMutex
	closed  bool

	// commitMu serializes Commit, which reads what it is about to change
	// (the log heads, whether a group exists) and the caches below.
	commitMu sync.Mutex
	groups   uint64            // number of group states, as in metaGroups
	heads    map[string]uint64 // cached log heads by channel
	dirty    uint64            // scrubSet: namespaces holding deleted secrets
	marked   uint64            // scrubSet persisted in metaScrub

	scrubMu   sync.Mutex // one Scrub at a time
	scrubKick chan struct{}

	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// ownerFile names the file in the data directory where the process that
// holds the lock writes its pid, so that a second process can say who
// holds it. LevelDB ignores files whose names it does not know.
const ownerFile = "OWNER"

// levelOptions are the LevelDB options every open uses.
func levelOptions() *opt.Options {
	return &opt.Options{
		// A damaged MANIFEST must stop the open, not silently drop the
		// tables it lists: that would drop groups.
		Strict: opt.DefaultStrict | opt.StrictManifest,
		// Values are mostly ciphertext and key material, which do not
		// compress; without compression a byte scan of the files is a
		// faithful test that a deleted secret is gone (scrub_test.go).
		Compression: opt.NoCompression,
	}
}

// Open opens (creating if needed) the store in dir. Only one process may
// have a directory open: a second gets a *LockedError. A damaged database
// gets a *CorruptError, never a store with data silently missing.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// The storage holds the directory's lock from here to Close, across
	// the reopenings below.
	stor, err := storage.OpenFile(dir, false)
	if err != nil {
		return nil, openError(dir, err)
	}
	db, err := openLevel(dir, stor)
	if err != nil {
		stor.Close()
		return nil, err
	}
	return start(dir, o, db, stor, nil)
}

// openLevel opens LevelDB on stor, working around two ways in which
// goleveldb fails a store that was killed.
func openLevel(dir string, stor storage.Storage) (*leveldb.DB, error) {
	replay := journalPending(dir)
	db, err := leveldb.Open(stor, levelOptions())
	var corrupted *lerrors.ErrCorrupted
	if errors.As(err, &corrupted) && !hasData(dir) {
		// Killed while goleveldb created the database, between writing
		// the MANIFEST and the CURRENT file that names it: goleveldb
		// then refuses the directory as corrupted. Nothing was written
		// yet (no table, no journal), so creating it again loses nothing.
		if rmErr := removeCreationLeftovers(dir); rmErr == nil {
			db, err = leveldb.Open(stor, levelOptions())
		}
	}
	if err == nil && replay {
		// goleveldb never deletes the table it builds from a replayed
		// journal once a compaction replaces it: it loses track of that
		// file until the next open. After a crash the replayed journal
		// holds the deletions the scrub is about to compact, so their
		// secrets would stay on disk for the life of this process.
		// Reopening once makes that table an ordinary one.
		if err = db.Close(); err == nil {
			db, err = leveldb.Open(stor, levelOptions())
		}
	}
	if err != nil {
		return nil, translate(dir, "open", err)
	}
	return db, nil
}

// journalPending reports whether dir has a non-empty LevelDB journal,
// which opening will replay.
func journalPending(dir string) bool {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// hasData reports whether dir has a table or a non-empty journal.
func hasData(dir string) bool {
	for _, pat := range []string{"*.ldb", "*.sst"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return true
		}
	}
	return journalPending(dir)
}

func removeCreationLeftovers(dir string) error {
	var errs []error
	for _, pat := range []string{"MANIFEST-*", "CURRENT*", "*.log"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			errs = append(errs, os.Remove(f))
		}
	}
	return errors.Join(errs...)
}

// openError translates an error from opening LevelDB's files.
func openError(dir string, err error) error {
	if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
		return &LockedError{Dir: dir, PID: readOwner(dir)}
	}
	return translate(dir, "open", err)
}

// start makes a Store of an open database. stor is the storage under db,
// which Close closes after it; rec is set by Recover.
func start(dir string, o Options, db *leveldb.DB, stor io.Closer, rec *recovery) (*Store, error) {
	s := &Store{
		dir:       dir,
		opts:      o,
		db:        db,
		stor:      stor,
		heads:     make(map[string]uint64),
		scrubKick: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	err := s.init(rec)
	// The derived key is all the store needs from here on.
	s.opts.Passphrase = nil
	if err != nil {
		db.Close()
		stor.Close()
		return nil, err
	}
	s.bg.Add(1)
	go s.maintain()
	return s, nil
}

// init brings a freshly opened database to a usable, verified state.
func (s *Store) init(rec *recovery) error {
	// The pid is advisory: it only improves the message a second process
	// prints.
	_ = os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	if err := s.checkTableFiles(); err != nil {
		return err
	}
	if err := s.initSchema(rec); err != nil {
		return err
	}
	if err := s.verify(); err != nil {
		return err
	}
	if err := s.loadCounters(rec); err != nil {
		return err
	}
	// A previous process may have died between deleting secrets and
	// compacting them away: finish its work first.
	return s.Scrub()
}

// readOwner returns the pid recorded in dir's owner file, or 0.
func readOwner(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// checkTableFiles compares every table the MANIFEST lists with the file on
// disk. LevelDB opens tables lazily, so without this a truncated table
// would surface only when a read reaches it.
func (s *Store) checkTableFiles() error {
	tables, err := s.listTables()
	if err != nil {
		return err
	}
	afterTableListing(s)
	for num, size := range tables {
		name := fmt.Sprintf("%06d.ldb", num)
		fi, err := os.Stat(filepath.Join(s.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			// LevelDB's older name for the same file.
			name = fmt.Sprintf("%06d.sst", num)
			fi, err = os.Stat(filepath.Join(s.dir, name))
		}
		if errors.Is(err, os.ErrNotExist) {
			// LevelDB compacts in the background from the moment it
			// opens, and deletes the tables a compaction replaced: a
			// table missing now may just be one the listing was too
			// early for. Only one the current version still lists is
			// lost.
			now, lerr := s.listTables()
			if lerr != nil {
				return lerr
			}
			if _, listed := now[num]; !listed {
				continue
			}
		}
		switch {
		case err != nil:
			return &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("table %s: %v", name, err)}
		case fi.Size() != size:
			return &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("table %s has %d bytes, the manifest says %d", name, fi.Size(), size)}
		}
	}
	return nil
}

// afterTableListing lets a test run a compaction between checkTableFiles'
// listing and its stats, the race it must survive.
var afterTableListing = func(*Store) {}

// listTables returns the size of every table in LevelDB's current
// version, by number.
func (s *Store) listTables() (map[int64]int64, error) {
	prop, err := s.db.GetProperty("leveldb.sstables")
	if err != nil {
		return nil, translate(s.dir, "list tables", err)
	}
	tables := make(map[int64]int64)
	for line := range strings.Lines(prop) {
		// Lines are "num:size[min .. max]" or "--- level N ---".
		numStr, rest, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "---") {
			continue
		}
		sizeStr, _, _ := strings.Cut(rest, "[")
		num, err1 := strconv.ParseInt(numStr, 10, 64)
		size, err2 := strconv.ParseInt(sizeStr, 10, 64)
		if err1 == nil && err2 == nil {
			tables[num] = size
		}
	}
	return tables, nil
}

// verify reads every entry outside the message log (with its head and its
// message-ID index) and the DHT namespace,
// which makes LevelDB check every block checksum on the way, and opens every
// sealed value. Those namespaces are small and are what a node cannot lose
// without noticing; damage in the log surfaces as ErrCorrupt when read.
func (s *Store) verify() error {
	for _, r := range []util.Range{
		{Start: []byte{nsMeta}, Limit: []byte{nsLog}},
		{Start: []byte{nsWelcome}, Limit: []byte{nsDHT}},
	} {
		it := s.db.NewIterator(&r, nil)
		for it.Next() {
			if _, err := s.openValue(it.Key(), it.Value()); err != nil {
				it.Release()
				return err
			}
		}
		it.Release()
		if err := it.Error(); err != nil {
			return translate(s.dir, "verify", err)
		}
	}
	return nil
}

// loadCounters reads the group counter and checks it against the group
// states present, so a group lost to damage is an error, not a silence.
// Under Recover, rec collects the numbers instead and decides.
func (s *Store) loadCounters(rec *recovery) error {
	found, err := s.countKeys([]byte{nsGroup})
	if err != nil {
		return err
	}
	n, err := s.readU64(metaKey(metaGroups))
	switch {
	case rec != nil:
		if n, err = rec.check(s, n, err, found); err != nil {
			return err
		}
	case err != nil:
		return err
	case found != n:
		return &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("%d group states found, %d recorded", found, n)}
	}
	s.groups = n
	m, err := s.readU64(metaKey(metaScrub))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.dirty, s.marked = m, m
	return nil
}

func (s *Store) readU64(key []byte) (uint64, error) {
	v, err := s.db.Get(key, nil)
	if err != nil {
		return 0, translate(s.dir, "read "+string(key[1:]), err)
	}
	if len(v) != 8 {
		return 0, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("meta %q has %d bytes", key[1:], len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *Store) countKeys(prefix []byte) (uint64, error) {
	var n uint64
	it := s.db.NewIterator(util.BytesPrefix(prefix), nil)
	for it.Next() {
		n++
	}
	it.Release()
	return n, translate(s.dir, "count", it.Error())
}

// Close scrubs what is pending, releases the database and its lock, and
// makes every later call return ErrClosed. It waits for calls in flight.
// Calling it again returns nil.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		close(s.stop)
		s.bg.Wait()
		scrubErr := s.Scrub()
		s.closeMu.Lock()
		s.closed = true
		// Compactions, ours or LevelDB's own, may have replaced tables
		// that are still on disk with what they replaced; LevelDB
		// forgets to delete them when it closes.
		s.awaitObsoleteFiles()
		s.closeMu.Unlock()
		if readOwner(s.dir) == os.Getpid() {
			os.Remove(filepath.Join(s.dir, ownerFile))
		}
		s.closeErr = errors.Join(scrubErr, translate(s.dir, "close", s.db.Close()))
		if s.stor != nil {
			s.closeErr = errors.Join(s.closeErr, translate(s.dir, "close", s.stor.Close()))
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// enter starts an operation; exit ends it.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) exit() { s.closeMu.RUnlock() }

// Dir is the data directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// sealValue returns what is stored under key for plain.
func (s *Store) sealValue(key, plain []byte) ([]byte, error) {
	if s.crypt == nil || !sealed(key[0]) {
		return plain, nil
	}
	return s.crypt.seal(key, plain)
}

// openValue returns the plaintext of val stored under key. val must not be
// retained by the caller if it came from an iterator: the result is always
// a fresh copy.
func (s *Store) openValue(key, val []byte) ([]byte, error) {
	if s.crypt == nil || !sealed(key[0]) {
		return bytes.Clone(val), nil
	}
	plain, err := s.crypt.open(key, val)
	if err != nil {
		return nil, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("%s key %x: %v", nsName(key[0]), key, err)}
	}
	return plain, nil
}

// get reads and opens one value.
func (s *Store) get(op string, key []byte) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	v, err := s.db.Get(key, nil)
	if err != nil {
		err = translate(s.dir, op, err)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, op)
		}
		return nil, err
	}
	return s.openValue(key, v)
}

// scan calls fn with every entry in r, in key order or (reverse) the
// opposite, until fn returns false. Values are opened; fn owns both
// slices.
func (s *Store) scan(op string, r *util.Range, reverse bool, fn func(k, v []byte) bool) error {
	var err error
	scanErr := s.scanRaw(op, r, reverse, func(k, raw []byte) bool {
		var v []byte
		if v, err = s.openValue(k, raw); err != nil {
			return false
		}
		return fn(k, v)
	})
	return errors.Join(err, scanErr)
}

// scanRaw is scan without opening values: fn owns k but raw is valid only
// during the call. The iterator is released before scanRaw returns: an
// open iterator pins a LevelDB snapshot, and a pinned snapshot keeps
// deleted secrets in the files through compaction.
func (s *Store) scanRaw(op string, r *util.Range, reverse bool, fn func(k, raw []byte) bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	it := s.db.NewIterator(r, nil)
	defer it.Release()
	next := it.Next
	if reverse {
		next = func() bool { next = it.Prev; return it.Last() }
	}
	for next() {
		if !fn(bytes.Clone(it.Key()), it.Value()) {
			break
		}
	}
	return translate(s.dir, op, it.Error())
}

func nsName(ns byte) string {
	switch ns {
	case nsMeta:
		return "meta"
	case nsIdentity:
		return "identity"
	case nsKP:
		return "keypackage"
	case nsKPExpiry:
		return "keypackage expiry"
	case nsKPGone:
		return "keypackage tombstone"
	case nsGroup:
		return "group"
	case nsRetiredSecret:
		return "retired epoch secret"
	case nsLog:
		return "log"
	case nsLogHead:
		return "log head"
	case nsLogID:
		return "log message ID"
	case nsLogSeqID:
		return "log message ID by seq"
	case nsWelcome:
		return "welcome"
	case nsInvite:
		return "invitation"
	case nsCursor:
		return "sync cursor"
	case nsDHT:
		return "datastore"
	}
	return fmt.Sprintf("namespace %#x", ns)
}
