package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

var (
	// ErrNotFound is returned by reads of a key that is not in the store,
	// and by a Batch operation that needs an entry that is not there.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
	// ErrLocked is returned by Open when another process holds the data
	// directory; the error is a *LockedError naming it and its holder.
	ErrLocked = errors.New("store: data directory in use by another process")
	// ErrCorrupt is returned when the database files are damaged; the error
	// is a *CorruptError naming the directory and the recovery path.
	ErrCorrupt = errors.New("store: database corrupted")
	// ErrWrongPassphrase is returned by Open when the passphrase does not
	// match the one the store was created with.
	ErrWrongPassphrase = errors.New("store: wrong passphrase")
	// ErrPassphraseRequired is returned by Open for an encrypted store when
	// Options.Passphrase is empty.
	ErrPassphraseRequired = errors.New("store: store is encrypted and no passphrase was given")
	// ErrNotEncrypted is returned by Open when a passphrase is given for a
	// store created without one: values already on disk are in plaintext,
	// and silently mixing the two would suggest protection that is not there.
	ErrNotEncrypted = errors.New("store: store is not encrypted but a passphrase was given")
	// ErrSchemaTooNew is returned by Open for a database written by a newer
	// version of this package.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
	// ErrGroupsLost is returned by Recover when fewer group states survive
	// than the store recorded (see RecoverResult).
	ErrGroupsLost = errors.New("store: recovery lost group states")
	// ErrInvalidArgument is returned for an empty or oversized ID.
	ErrInvalidArgument = errors.New("store: invalid argument")
	// ErrBatchCommitted is returned by Commit for a Batch committed before.
	ErrBatchCommitted = errors.New("store: batch already committed")
)

// LockedError is returned by Open when another process holds the data
// directory. PID is the holder's process ID as it recorded it, or 0 if
// unknown.
type LockedError struct {
	Dir string
	PID int
}

func (e *LockedError) Error() string {
	holder := "holder unknown"
	if e.PID > 0 {
		holder = fmt.Sprintf("held by pid %d", e.PID)
	}
	return fmt.Sprintf("store: %s is in use by another process (%s); is another spacepandad running on it?", e.Dir, holder)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// CorruptError is returned when the files in Dir are damaged. Detail says
// what LevelDB or the store's own checks found. The recovery path is
// Recover; see the package documentation.
type CorruptError struct {
	Dir    string
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: database in %s is corrupted (%s); stop the node and run store.Recover on it, which copies the directory to a backup first", e.Dir, e.Detail)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func isMissing(err error, m **lerrors.ErrMissingFiles) bool { return errors.As(err, m) }

// translate converts an error from goleveldb into one of this package's, so
// that nothing above store/ sees a goleveldb type: callers match our
// sentinels with errors.Is, and I/O errors from the operating system stay
// wrapped (ENOSPC is worth knowing). Anything else from LevelDB is flattened
// into text.
func translate(dir, op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		corrupted  *lerrors.ErrCorrupted
		scorrupted *storage.ErrCorrupted
		missing    *lerrors.ErrMissingFiles
	)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, leveldb.ErrClosed):
		return ErrClosed
	case errors.As(err, &corrupted) && isMissing(corrupted.Err, &missing), errors.As(err, &missing):
		return &CorruptError{Dir: dir, Detail: fmt.Sprintf("%s: files missing: %v", op, missing.Fds)}
	case errors.As(err, &corrupted), errors.As(err, &scorrupted):
		return &CorruptError{Dir: dir, Detail: op + ": " + err.Error()}
	case errors.Is(err, leveldb.ErrReadOnly):
		// goleveldb turns read-only when a compaction meets a damaged table.
		return &CorruptError{Dir: dir, Detail: op + ": a compaction failed and LevelDB turned read-only"}
	}
	switch err.(type) {
	case *fs.PathError, *os.LinkError, *os.SyscallError, syscall.Errno:
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return fmt.Errorf("store: %s: %v", op, err)
}
