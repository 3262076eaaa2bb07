package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// A Batch is one state transition: everything a step of the node changes,
// applied by Store.Commit in one synced LevelDB write or not at all. A
// processed commit, for example, puts the new group state, appends the log
// entry and advances the sync cursor in one Batch, so no crash can leave
// the state and the log disagreeing.
//
// Operations apply in the order they are added, so a later one sees the
// effect of an earlier one. Every method copies its arguments. Errors in
// arguments are reported by Commit. The zero value is an empty batch; a
// Batch is not safe for concurrent use and is spent once committed.
type Batch struct {
	ops       []func(*writer) error
	err       error
	seqs      []uint64
	committed bool
}

func (b *Batch) add(err error, op func(*writer) error) {
	if err != nil && b.err == nil {
		b.err = err
	}
	b.ops = append(b.ops, op)
}

// Seqs returns the sequence numbers that Commit gave b's AppendLog calls,
// in call order. It is empty before Commit.
func (b *Batch) Seqs() []uint64 { return slices.Clone(b.seqs) }

// PutSignatureKey stores the node's signature private key under name.
func (b *Batch) PutSignatureKey(name, private []byte) {
	k, v := identityKey(name), bytes.Clone(private)
	b.add(checkID("signature key name", name), func(w *writer) error { return w.put(k, v) })
}

// DeleteSignatureKey deletes the signature key stored under name.
func (b *Batch) DeleteSignatureKey(name []byte) {
	k := identityKey(name)
	b.add(checkID("signature key name", name), func(w *writer) error { return w.del(k) })
}

// PutKeyPackage stores the private half of a KeyPackage under its
// KeyPackageRef (RFC 9420 §5.2) until notAfter (Unix seconds), after which
// the expiry schedule deletes it. A lastResort KeyPackage is the one a node
// keeps published so it can always be invited (RFC 9420 §16.8): it
// survives being joined from (ConsumeKeyPackage keeps it, marked used), and
// outlives its expiry until a newer last-resort KeyPackage exists. Putting
// a ref again replaces its private half, expiry and flag.
func (b *Batch) PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) {
	var flags byte
	if lastResort {
		flags = kpLastResort
	}
	ref, private = bytes.Clone(ref), bytes.Clone(private)
	b.add(checkID("KeyPackageRef", ref), func(w *writer) error {
		return w.putKeyPackage(ref, private, notAfter, flags)
	})
}

// ConsumeKeyPackage deletes the private half of ref after a join used it,
// and remembers that it was consumed. Commit fails with ErrNotFound if ref
// is not held. A last-resort KeyPackage is kept.
func (b *Batch) ConsumeKeyPackage(ref []byte) {
	ref = bytes.Clone(ref)
	b.add(checkID("KeyPackageRef", ref), func(w *writer) error { return w.consumeKeyPackage(ref) })
}

// PutGroup stores a group's state, opaque bytes that mlsgroup owns.
func (b *Batch) PutGroup(id, state []byte) {
	k, v := groupKey(id), bytes.Clone(state)
	b.add(checkID("group ID", id), func(w *writer) error {
		ok, err := w.has(k)
		if err != nil {
			return err
		}
		if !ok {
			w.groupDelta++
		}
		return w.put(k, v)
	})
}

// DeleteGroup deletes a group's state. The group's log and sync cursors
// stay (see TrimLog and DeleteSyncCursors).
func (b *Batch) DeleteGroup(id []byte) {
	k := groupKey(id)
	b.add(checkID("group ID", id), func(w *writer) error {
		ok, err := w.has(k)
		if err != nil || !ok {
			return err
		}
		w.groupDelta--
		return w.del(k)
	})
}

// AppendLog appends entry to channel's message log. Its sequence number is
// assigned by Commit, under the commit lock, so numbers increase in commit
// order and a reader paging forward never finds a smaller number appearing
// behind its cursor. Numbers start at 1 and are never reused, not even
// after TrimLog.
//
// A non-empty id (a message ID, say) is indexed to the entry's sequence
// number in the same write, so that LogSeqOf finds it with one read, after
// a restart too. The index keeps the first sequence number an id was given:
// appending it again adds the entry but leaves the index as it was, and
// once TrimLog deletes that first entry the id is no longer found. Callers
// that deduplicate check LogSeqOf before appending. An empty id (a commit,
// say) is not indexed.
func (b *Batch) AppendLog(channel, id, entry []byte) {
	channel, id, entry = bytes.Clone(channel), bytes.Clone(id), bytes.Clone(entry)
	err := checkID("channel ID", channel)
	if len(id) > 0 {
		err = errors.Join(err, checkID("log message ID", id))
	}
	b.add(err, func(w *writer) error { return w.appendLog(channel, id, entry) })
}

// TrimLog deletes channel's log entries with sequence numbers below before
// (math.MaxUint64 deletes them all), and their message IDs from the index.
func (b *Batch) TrimLog(channel []byte, before uint64) {
	channel = bytes.Clone(channel)
	b.add(checkID("channel ID", channel), func(w *writer) error { return w.trimLog(channel, before) })
}

// PutWelcome stores a Welcome waiting for delivery (p2p's outbox) under
// id, which the caller chooses, replacing any value there.
func (b *Batch) PutWelcome(id, value []byte) {
	k, v := welcomeKey(id), bytes.Clone(value)
	b.add(checkID("welcome ID", id), func(w *writer) error { return w.put(k, v) })
}

// DeleteWelcome deletes the Welcome stored under id, once delivered or
// given up; an absent id is not an error.
func (b *Batch) DeleteWelcome(id []byte) {
	k := welcomeKey(id)
	b.add(checkID("welcome ID", id), func(w *writer) error { return w.delIfPresent(k) })
}

// PutInvitation stores a Welcome this node received, waiting for the user
// to accept it, under id, replacing any value there. Invitations are a key
// space apart from the outbox's Welcomes: the two never share IDs.
func (b *Batch) PutInvitation(id, data []byte) {
	k, v := inviteKey(id), bytes.Clone(data)
	b.add(checkID("invitation ID", id), func(w *writer) error { return w.put(k, v) })
}

// DeleteInvitation deletes an invitation, once accepted or declined; an
// absent id is not an error.
func (b *Batch) DeleteInvitation(id []byte) {
	k := inviteKey(id)
	b.add(checkID("invitation ID", id), func(w *writer) error { return w.delIfPresent(k) })
}

// PutSyncCursor records how far channel's history has been synced with
// peer. The cursor is opaque and must not be empty: SyncCursor reports
// "none" as nil.
func (b *Batch) PutSyncCursor(channel, peer, cursor []byte) {
	k, v := cursorKey(channel, peer), bytes.Clone(cursor)
	err := errors.Join(checkID("channel ID", channel), checkID("peer ID", peer))
	if len(cursor) == 0 {
		err = errors.Join(err, fmt.Errorf("%w: empty sync cursor", ErrInvalidArgument))
	}
	b.add(err, func(w *writer) error { return w.put(k, v) })
}

// DeleteSyncCursors deletes every sync cursor of channel.
func (b *Batch) DeleteSyncCursors(channel []byte) {
	r := util.BytesPrefix(cursorPrefix(channel))
	b.add(checkID("channel ID", channel), func(w *writer) error { return w.delRange(r) })
}

// Commit applies b in one synced write: when it returns nil, all of b is on
// disk; when it returns an error, none of it is. A batch that fails can be
// fixed and committed again; one that succeeded is spent.
func (s *Store) Commit(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	if b.committed {
		return ErrBatchCommitted
	}
	var seqs []uint64
	err := s.update("commit", func(w *writer) error {
		for _, op := range b.ops {
			if err := op(w); err != nil {
				return err
			}
		}
		seqs = w.seqs
		return nil
	})
	if err != nil {
		return err
	}
	b.committed, b.seqs = true, seqs
	return nil
}

// update runs fn against a writer under the commit lock and writes what it
// staged in one synced batch.
func (s *Store) update(op string, fn func(w *writer) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	w := &writer{s: s, lb: new(leveldb.Batch), pending: make(map[string]staged), heads: make(map[string]uint64)}
	if err := fn(w); err != nil {
		return err
	}
	if w.lb.Len() == 0 {
		return nil
	}
	groups := int64(s.groups) + w.groupDelta
	if groups < 0 {
		return &CorruptError{Dir: s.dir, Detail: "group counter would go negative"}
	}
	if w.groupDelta != 0 {
		w.lb.Put(metaKey(metaGroups), binary.BigEndian.AppendUint64(nil, uint64(groups)))
	}
	// Record what needs scrubbing in the same write as the deletion, so
	// that a crash before the scrub is finished by the next Open.
	if marked := s.marked | w.dirty; marked != s.marked {
		w.lb.Put(metaKey(metaScrub), binary.BigEndian.AppendUint64(nil, marked))
	}
	if err := s.db.Write(w.lb, syncWrite); err != nil {
		return translate(s.dir, op, err)
	}
	s.groups = uint64(groups)
	for ch, h := range w.heads {
		s.heads[ch] = h
	}
	if w.dirty != 0 {
		s.dirty |= w.dirty
		s.marked |= w.dirty
		select {
		case s.scrubKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// writer stages one batch and answers reads against the database as the
// batch has changed it so far.
type writer struct {
	s          *Store
	lb         *leveldb.Batch
	pending    map[string]staged
	heads      map[string]uint64 // log heads after this batch
	seqs       []uint64
	groupDelta int64
	dirty      uint64 // scrubSet
}

type staged struct {
	plain   []byte
	deleted bool
}

func (w *writer) get(key []byte) ([]byte, bool, error) {
	if p, ok := w.pending[string(key)]; ok {
		return p.plain, !p.deleted, nil
	}
	v, err := w.s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, translate(w.s.dir, "read "+nsName(key[0]), err)
	}
	plain, err := w.s.openValue(key, v)
	return plain, err == nil, err
}

func (w *writer) has(key []byte) (bool, error) {
	if p, ok := w.pending[string(key)]; ok {
		return !p.deleted, nil
	}
	ok, err := w.s.db.Has(key, nil)
	return ok, translate(w.s.dir, "read "+nsName(key[0]), err)
}

// put stages key = plain. Overwriting a secret-bearing value leaves the old
// one in the files until a scrub compacts it away.
func (w *writer) put(key, plain []byte) error {
	// Log keys are never reused, and appendLog puts an index entry only
	// where there is none: neither overwrites, so neither needs the read.
	if secretBearing(key[0]) && key[0] != nsLog && key[0] != nsLogID && key[0] != nsLogSeqID {
		ok, err := w.has(key)
		if err != nil {
			return err
		}
		if ok {
			w.dirty |= scrubBit(key[0])
		}
	}
	v, err := w.s.sealValue(key, plain)
	if err != nil {
		return err
	}
	w.lb.Put(key, v)
	w.pending[string(key)] = staged{plain: plain}
	return nil
}

// delIfPresent is del for a key that may be absent, which then stages
// nothing, so that it marks no namespace for a scrub.
func (w *writer) delIfPresent(key []byte) error {
	ok, err := w.has(key)
	if err != nil || !ok {
		return err
	}
	return w.del(key)
}

func (w *writer) del(key []byte) error {
	if secretBearing(key[0]) {
		w.dirty |= scrubBit(key[0])
	}
	w.lb.Delete(key)
	w.pending[string(key)] = staged{deleted: true}
	return nil
}

// delRange stages the deletion of every key in r, including keys this
// batch put.
func (w *writer) delRange(r *util.Range) error {
	keys, err := w.keys(r)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}

// keys lists the keys in r as the batch sees them, in order.
func (w *writer) keys(r *util.Range) ([][]byte, error) {
	var keys [][]byte
	it := w.s.db.NewIterator(r, nil)
	for it.Next() {
		if p, ok := w.pending[string(it.Key())]; !ok || !p.deleted {
			keys = append(keys, bytes.Clone(it.Key()))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return nil, translate(w.s.dir, "read range", err)
	}
	n := len(keys)
	for k, p := range w.pending {
		kb := []byte(k)
		if p.deleted || bytes.Compare(kb, r.Start) < 0 || (r.Limit != nil && bytes.Compare(kb, r.Limit) >= 0) {
			continue
		}
		if _, found := slices.BinarySearchFunc(keys[:n], kb, bytes.Compare); !found {
			keys = append(keys, kb)
		}
	}
	if len(keys) > n {
		slices.SortFunc(keys, bytes.Compare)
	}
	return keys, nil
}

func (w *writer) appendLog(channel, id, entry []byte) error {
	seq, err := w.logHead(channel)
	if err != nil {
		return err
	}
	seq++
	if err := w.put(logKey(channel, seq), entry); err != nil {
		return err
	}
	if err := w.put(logHeadKey(channel), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return err
	}
	if len(id) > 0 {
		ik := logIDKey(channel, id)
		indexed, err := w.has(ik)
		if err != nil {
			return err
		}
		if !indexed {
			if err := w.put(ik, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
				return err
			}
			if err := w.put(logSeqIDKey(channel, seq), id); err != nil {
				return err
			}
		}
	}
	w.heads[string(channel)] = seq
	w.seqs = append(w.seqs, seq)
	return nil
}

// trimLog deletes channel's entries below before and, through the
// seq-to-ID direction of the index, the IDs that point at them, without
// reading the entries themselves.
func (w *writer) trimLog(channel []byte, before uint64) error {
	if err := w.delRange(&util.Range{Start: logPrefix(channel), Limit: logKey(channel, before)}); err != nil {
		return err
	}
	byseq, err := w.keys(&util.Range{Start: logSeqIDPrefix(channel), Limit: logSeqIDKey(channel, before)})
	if err != nil {
		return err
	}
	for _, k := range byseq {
		id, ok, err := w.get(k)
		if err != nil {
			return err
		}
		if ok && len(id) > 0 {
			if err := w.del(logIDKey(channel, id)); err != nil {
				return err
			}
		}
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}

// logHead is the last sequence number assigned in channel, counting this
// batch.
func (w *writer) logHead(channel []byte) (uint64, error) {
	if h, ok := w.heads[string(channel)]; ok {
		return h, nil
	}
	if h, ok := w.s.heads[string(channel)]; ok {
		return h, nil
	}
	// The cache holds committed state only, so filling it from the
	// database is right even if this batch fails.
	h, err := w.s.readU64(logHeadKey(channel))
	if errors.Is(err, ErrNotFound) {
		h, err = 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("log head: %w", err)
	}
	w.s.heads[string(channel)] = h
	return h, nil
}
