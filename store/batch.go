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
// entry and deletes the epoch secrets it made obsolete in one Batch, so no
// crash can leave the state and the log disagreeing.
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
// the expiry schedule deletes it.
func (b *Batch) PutKeyPackage(ref, private []byte, notAfter uint64) {
	b.putKeyPackage(ref, private, notAfter, 0)
}

// PutLastResortKeyPackage is PutKeyPackage for the last-resort KeyPackage,
// the one a node keeps published so it can always be invited: it survives
// being joined from (ConsumeKeyPackage keeps it), and outlives its expiry
// until a newer last-resort KeyPackage exists.
func (b *Batch) PutLastResortKeyPackage(ref, private []byte, notAfter uint64) {
	b.putKeyPackage(ref, private, notAfter, kpLastResort)
}

func (b *Batch) putKeyPackage(ref, private []byte, notAfter uint64, flags byte) {
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

// DeleteGroup deletes a group's state and every secret retained for it.
// The group's log stays (see TrimLog).
func (b *Batch) DeleteGroup(id []byte) {
	id = bytes.Clone(id)
	k := groupKey(id)
	b.add(checkID("group ID", id), func(w *writer) error {
		ok, err := w.has(k)
		if err != nil {
			return err
		}
		if ok {
			w.groupDelta--
			if err := w.del(k); err != nil {
				return err
			}
		}
		return w.delRange(util.BytesPrefix(secretPrefix(id)))
	})
}

// PutEpochSecret retains a secret of a group's epoch: the epoch's secrets
// for messages that arrive out of order, or one message key (id names it;
// its meaning is mlsgroup's).
func (b *Batch) PutEpochSecret(group []byte, epoch uint64, id, secret []byte) {
	k, v := secretKey(group, epoch, id), bytes.Clone(secret)
	b.add(checkID("group ID", group), func(w *writer) error { return w.put(k, v) })
}

// DeleteEpochSecret deletes one retained secret, such as a message key once
// used.
func (b *Batch) DeleteEpochSecret(group []byte, epoch uint64, id []byte) {
	k := secretKey(group, epoch, id)
	b.add(checkID("group ID", group), func(w *writer) error { return w.del(k) })
}

// DeleteEpochSecrets deletes every secret retained for the group's epochs
// before the given one: the epochs that left the out-of-order window.
func (b *Batch) DeleteEpochSecrets(group []byte, before uint64) {
	r := &util.Range{Start: secretPrefix(group), Limit: secretEpochPrefix(group, before)}
	b.add(checkID("group ID", group), func(w *writer) error { return w.delRange(r) })
}

// AppendLog appends entry to channel's message log. Its sequence number is
// assigned by Commit, under the commit lock, so numbers increase in commit
// order and a reader paging forward never finds a smaller number appearing
// behind its cursor. Numbers start at 1 and are never reused, not even
// after TrimLog.
func (b *Batch) AppendLog(channel, entry []byte) {
	channel, entry = bytes.Clone(channel), bytes.Clone(entry)
	b.add(checkID("channel ID", channel), func(w *writer) error { return w.appendLog(channel, entry) })
}

// TrimLog deletes channel's log entries with sequence numbers below before
// (math.MaxUint64 deletes them all).
func (b *Batch) TrimLog(channel []byte, before uint64) {
	r := &util.Range{Start: logPrefix(channel), Limit: logKey(channel, before)}
	b.add(checkID("channel ID", channel), func(w *writer) error { return w.delRange(r) })
}

// PutWelcome stores a Welcome waiting for delivery to recipient (a peer ID)
// under id, which the caller chooses (a hash of the message, say).
func (b *Batch) PutWelcome(recipient, id, welcome []byte) {
	k, v := welcomeKey(recipient, id), bytes.Clone(welcome)
	err := errors.Join(checkID("welcome recipient", recipient), checkID("welcome ID", id))
	b.add(err, func(w *writer) error { return w.put(k, v) })
}

// DeleteWelcome deletes a Welcome once its recipient acknowledged it.
func (b *Batch) DeleteWelcome(recipient, id []byte) {
	k := welcomeKey(recipient, id)
	err := errors.Join(checkID("welcome recipient", recipient), checkID("welcome ID", id))
	b.add(err, func(w *writer) error { return w.del(k) })
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
	if secretBearing(key[0]) && key[0] != nsLog { // log keys are never reused
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

func (w *writer) appendLog(channel, entry []byte) error {
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
	w.heads[string(channel)] = seq
	w.seqs = append(w.seqs, seq)
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
