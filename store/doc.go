// Package store is the node's one MLS provider: every key, group state and
// message a spacepanda node keeps, in one LevelDB per data directory. It
// satisfies mlsgroup's Storage interface structurally (it does not import
// mlsgroup) and p2p's WelcomeStore the same way, and never interprets the
// values it holds: group states, log entries, Welcomes and sync cursors are
// opaque bytes whose formats their owners version.
//
// What it holds, by namespace (keys.go has the byte layout): the node's
// signature keys; KeyPackage private keys by KeyPackageRef, with an expiry
// index and tombstones that remember why a ref is gone, and the last-resort
// KeyPackage kept after use; group states by group ID (mlsgroup keeps the
// past epochs it still needs inside the state); each channel's message log
// with an index from message ID to sequence number; the sync cursor of each
// channel and peer; Welcomes waiting for delivery (p2p's outbox) and
// Welcomes received, waiting for the user to accept them (invitations),
// each by ID; and a go-datastore namespace for the DHT.
//
// # Usage
//
// Open the store once per node and hand the same *Store to everything; a
// second process on the same directory gets a *LockedError. Then:
//
//   - Make each state transition one Batch and Commit it: a processed
//     message is PutGroup (the new state) + AppendLog (its entry, indexed by
//     its message ID) + PutSyncCursor (how far the sync got), all or
//     nothing, synced before Commit returns.
//     Persist before acting: commit the batch before publishing a message
//     or acknowledging a commit, so that a crash never leaves the network
//     ahead of the disk.
//   - Read with the typed getters (Group, KeyPackage, LogAfter, LogBefore,
//     LogSeqOf, SyncCursor, Welcomes, Invitations, ...). Returned slices
//     belong to the caller.
//   - Close the store when the node stops; every call after returns
//     ErrClosed.
//
// # Forward secrecy
//
// A deleted secret is not gone while LevelDB's journal or an old table file
// still holds it. Every commit that deletes or overwrites secret material
// marks its namespace, and the store compacts those namespaces
// (CompactRange) ScrubDelay later, at Close, and at the next Open if the
// process died first; Scrub does it on demand. scrub.go explains what is
// and is not reached.
//
// # Encryption at rest
//
// With Options.Passphrase, every value is sealed with XChaCha20-Poly1305
// under a key derived with argon2id from the passphrase and a random salt,
// with the value's key as associated data, so a value cannot be moved to
// another key. Keys stay in plaintext (they hold IDs and numbers, never
// secrets). A wrong passphrase is ErrWrongPassphrase, checked against a key
// check value before anything is read.
//
// # Damage and recovery
//
// Open refuses a damaged store with a *CorruptError (errors.Is ErrCorrupt)
// naming the directory, never returning one with groups silently missing.
// It checks every table's size against the MANIFEST (which it reads
// strictly), reads every block of every namespace except the message log
// and the DHT's, so LevelDB verifies their checksums, opens every sealed
// value there, and compares the number of group states with a counter kept
// in the same batches that add and delete groups: LevelDB drops a journal
// block that fails its checksum as it replays, and the counter turns a
// group lost that way into an error. Damage in the message log shows as
// ErrCorrupt when the damaged page is read.
//
// The recovery path is Recover: it copies the directory to a backup,
// rebuilds LevelDB's MANIFEST from what is readable, and refuses
// (ErrGroupsLost) to hand back a store with fewer groups than were recorded
// unless told to accept it. The backup holds the secrets of the damaged
// store: delete it when done with it.
//
// Nothing above this package sees a goleveldb type: errors are translated
// to this package's sentinels, and I/O errors of the operating system are
// wrapped as they are.
package store
