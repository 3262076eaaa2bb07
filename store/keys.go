package store

import (
	"encoding/binary"
	"fmt"
)

// Every key in the database starts with one namespace byte. This file is the
// one place that knows the layout of each namespace; nothing else builds or
// parses keys by hand.
//
// Keys are never encrypted (LevelDB orders and ranges over them), so they
// hold only what is public or merely structural: refs, IDs, numbers. Secret
// material lives in values only, which is what lets encryption at rest seal
// every value and lets compaction scrub a deleted secret without it leaking
// through a key in a table index or the MANIFEST.
//
// Notation: "|" concatenates; u8/u16/u64 are big-endian unsigned integers
// (big-endian so that byte order is numeric order); lp(x) is u16 len(x) | x,
// used where a variable-length ID is followed by more key, so that no ID is a
// prefix of another ID's range.
//
//	nsMeta      0x00 | name                          plaintext, see meta*
//	nsIdentity  0x01 | name                          signature private key
//	nsKP        0x02 | ref                           u64 notAfter | u8 flags | private key
//	nsKPExpiry  0x03 | u64 notAfter | ref            u8 flags (plaintext)
//	nsKPGone    0x04 | ref                           u8 status | u64 deletedAt (plaintext)
//	nsGroup     0x10 | group ID                      group state
//	(0x11, retired in schema 3: epoch secrets, see nsRetiredSecret)
//	nsLog       0x20 | lp(channel) | u64 seq         log entry
//	nsLogHead   0x21 | channel                       u64 last assigned seq (plaintext)
//	nsLogID     0x22 | lp(channel) | message ID      u64 seq (plaintext)
//	nsLogSeqID  0x23 | lp(channel) | u64 seq         message ID (plaintext)
//	nsWelcome   0x30 | id                            Welcome waiting for delivery (p2p's outbox)
//	nsInvite    0x31 | id                            Welcome received, waiting to be accepted
//	nsCursor    0x32 | lp(channel) | peer            sync cursor
//	nsDHT       0x40 | datastore key ("/a/b")        go-datastore value
//
// nsLogID and nsLogSeqID are the two directions of the message-ID index:
// the first answers LogSeqOf with one read, the second lets TrimLog find
// the IDs of the entries it deletes without reading the entries. Both hold
// only IDs and numbers, like the keys, so they stay plaintext.
//
// Before schema 3, nsWelcome keys were lp(recipient) | id; migration 3
// rewrites them to id alone.
//
// Values are sealed with the at-rest key when the store is encrypted, except
// where the table says "plaintext": the meta records needed before a key
// exists, and indexes whose content is not secret and which maintenance reads
// without the key.
const (
	nsMeta     byte = 0x00
	nsIdentity byte = 0x01
	nsKP       byte = 0x02
	nsKPExpiry byte = 0x03
	nsKPGone   byte = 0x04
	nsGroup    byte = 0x10
	nsLog      byte = 0x20
	nsLogHead  byte = 0x21
	nsLogID    byte = 0x22
	nsLogSeqID byte = 0x23
	nsWelcome  byte = 0x30
	nsInvite   byte = 0x31
	nsCursor   byte = 0x32
	nsDHT      byte = 0x40
)

// nsRetiredSecret held the epoch secrets and message keys of groups until
// schema 3 (0x11 | lp(group ID) | u64 epoch | id). mlsgroup keeps past
// epochs inside the group state instead, and migration 3 deletes whatever
// an older database still has under this prefix. The byte stays reserved,
// and it keeps its place in scrubNamespaces, whose positions are persisted.
const nsRetiredSecret byte = 0x11

// Meta records, under nsMeta. All plaintext.
const (
	// metaSchema: u32 schema version (schema.go).
	metaSchema = "schema"
	// metaCrypt: present iff the store is encrypted at rest (crypt.go).
	metaCrypt = "crypt"
	// metaGroups: u64 number of nsGroup keys, kept in the same batch as
	// every group put or delete, and checked at Open and after Recover so
	// that a lost group is an error, never silence. Since schema 2.
	metaGroups = "groups"
	// metaDSSync: u64 bumped by a synced write to make earlier unsynced
	// datastore writes durable (Datastore.Sync).
	metaDSSync = "dssync"
	// metaScrub: u64 scrubSet of namespaces with deletions not yet
	// compacted out of the files, written in the batch that deletes, so
	// that Open finishes a scrub a crash interrupted.
	metaScrub = "scrub"
)

// maxIDLen bounds the IDs that lp() encodes.
const maxIDLen = 1<<16 - 1

// sealed reports whether values in namespace ns are sealed when the store is
// encrypted.
func sealed(ns byte) bool {
	switch ns {
	case nsMeta, nsKPExpiry, nsKPGone, nsLogHead, nsLogID, nsLogSeqID:
		return false
	}
	return true
}

// secretBearing reports whether a deleted or overwritten value in ns must be
// compacted out of the files (forward secrecy). The log and its message-ID
// index are included: trimming history is a deletion the user means, and
// the IDs are hashes of what was trimmed.
func secretBearing(ns byte) bool {
	switch ns {
	case nsIdentity, nsKP, nsGroup, nsRetiredSecret, nsLog, nsLogID, nsLogSeqID, nsWelcome, nsInvite:
		return true
	}
	return false
}

func metaKey(name string) []byte { return append([]byte{nsMeta}, name...) }

func identityKey(name []byte) []byte { return cat1(nsIdentity, name) }

func kpKey(ref []byte) []byte { return cat1(nsKP, ref) }

func kpGoneKey(ref []byte) []byte { return cat1(nsKPGone, ref) }

func kpExpiryKey(notAfter uint64, ref []byte) []byte {
	k := make([]byte, 0, 9+len(ref))
	k = append(k, nsKPExpiry)
	k = binary.BigEndian.AppendUint64(k, notAfter)
	return append(k, ref...)
}

// parseKPExpiryKey is kpExpiryKey's inverse.
func parseKPExpiryKey(k []byte) (notAfter uint64, ref []byte, ok bool) {
	if len(k) < 9 || k[0] != nsKPExpiry {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(k[1:9]), k[9:], true
}

func groupKey(id []byte) []byte { return cat1(nsGroup, id) }

func logPrefix(channel []byte) []byte { return lp(nsLog, channel) }

func logKey(channel []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(channel), seq)
}

func logHeadKey(channel []byte) []byte { return cat1(nsLogHead, channel) }

// logIDPrefix is the range of channel's message-ID index.
func logIDPrefix(channel []byte) []byte { return lp(nsLogID, channel) }

func logIDKey(channel, id []byte) []byte { return append(logIDPrefix(channel), id...) }

func logSeqIDPrefix(channel []byte) []byte { return lp(nsLogSeqID, channel) }

func logSeqIDKey(channel []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(logSeqIDPrefix(channel), seq)
}

func welcomeKey(id []byte) []byte { return cat1(nsWelcome, id) }

// parseOldWelcomeKey splits a key of the Welcomes schema 2 filed under
// their recipient.
func parseOldWelcomeKey(k []byte) (recipient, id []byte, ok bool) {
	if len(k) < 3 || k[0] != nsWelcome {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return nil, nil, false
	}
	return k[3 : 3+n], k[3+n:], true
}

func inviteKey(id []byte) []byte { return cat1(nsInvite, id) }

// cursorPrefix is the range of channel's sync cursors.
func cursorPrefix(channel []byte) []byte { return lp(nsCursor, channel) }

func cursorKey(channel, peer []byte) []byte { return append(cursorPrefix(channel), peer...) }

func dhtKey(dsKey string) []byte { return append([]byte{nsDHT}, dsKey...) }

func cat1(ns byte, b []byte) []byte {
	k := make([]byte, 0, 1+len(b))
	return append(append(k, ns), b...)
}

// lp is ns | u16 len(id) | id. Callers validate len(id) <= maxIDLen first
// (checkID), so the length cannot wrap.
func lp(ns byte, id []byte) []byte {
	k := make([]byte, 0, 3+len(id)+8)
	k = append(k, ns)
	k = binary.BigEndian.AppendUint16(k, uint16(len(id)))
	return append(k, id...)
}

// checkID validates an ID used in a key: what is empty or too long for lp
// is refused rather than silently colliding.
func checkID(what string, id []byte) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: empty %s", ErrInvalidArgument, what)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrInvalidArgument, what, len(id), maxIDLen)
	}
	return nil
}

// prefixEnd is the smallest key greater than every key that starts with p,
// or nil (no upper bound) when p is all 0xff.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
