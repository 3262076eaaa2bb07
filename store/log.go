package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// LogEntry is one entry of a channel's message log. Data is opaque.
type LogEntry struct {
	Seq  uint64
	Data []byte
}

// LogHead returns the last sequence number assigned in channel, or 0 if
// nothing was ever appended.
func (s *Store) LogHead(channel []byte) (uint64, error) {
	if err := checkID("channel ID", channel); err != nil {
		return 0, err
	}
	v, err := s.get("read log head", logHeadKey(channel))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("log head of %x has %d bytes", channel, len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}

// LogAfter returns up to limit entries of channel with sequence numbers
// above after, oldest first. The cursor is a sequence number: start with 0,
// and pass the last Seq of a page to get the next one; an empty page is the
// end for now.
func (s *Store) LogAfter(channel []byte, after uint64, limit int) ([]LogEntry, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	r := &util.Range{Start: logKey(channel, after+1), Limit: prefixEnd(logPrefix(channel))}
	return s.logPage(channel, r, false, limit, 0)
}

// LogAfterWithin is LogAfter that also stops before the entry that would
// take the data of the page past maxBytes, but for a first entry, which
// it always returns: a sync provider holds no more than it may serve.
func (s *Store) LogAfterWithin(channel []byte, after uint64, limit, maxBytes int) ([]LogEntry, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("%w: log page budget %d", ErrInvalidArgument, maxBytes)
	}
	r := &util.Range{Start: logKey(channel, after+1), Limit: prefixEnd(logPrefix(channel))}
	return s.logPage(channel, r, false, limit, maxBytes)
}

// LogBefore returns up to limit entries of channel with sequence numbers
// below before, newest first: start with math.MaxUint64 for the newest,
// and pass the last Seq of a page to get the one before it.
func (s *Store) LogBefore(channel []byte, before uint64, limit int) ([]LogEntry, error) {
	r := &util.Range{Start: logPrefix(channel), Limit: logKey(channel, before)}
	return s.logPage(channel, r, true, limit, 0)
}

// logPage reads up to limit entries and, when maxBytes is above zero, up
// to maxBytes of their data, but for a first entry.
func (s *Store) logPage(channel []byte, r *util.Range, reverse bool, limit, maxBytes int) ([]LogEntry, error) {
	if err := checkID("channel ID", channel); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: log page limit %d", ErrInvalidArgument, limit)
	}
	p := len(logPrefix(channel))
	var page []LogEntry
	total := 0
	err := s.scan("read log", r, reverse, func(k, v []byte) bool {
		if total += len(v); maxBytes > 0 && len(page) > 0 && total > maxBytes {
			return false
		}
		page = append(page, LogEntry{Seq: binary.BigEndian.Uint64(k[p:]), Data: v})
		return len(page) < limit
	})
	return page, err
}

// LogEntry returns the data of channel's entry seq, or ErrNotFound if it
// was never appended or has been trimmed.
func (s *Store) LogEntry(channel []byte, seq uint64) ([]byte, error) {
	if err := checkID("channel ID", channel); err != nil {
		return nil, err
	}
	return s.get("read log entry", logKey(channel, seq))
}

// LogSeqOf returns the sequence number of the first entry appended to
// channel under id (see Batch.AppendLog), or ErrNotFound. It is one read of
// the message-ID index, however long the log: deduplicating after a restart
// does not scan the log.
func (s *Store) LogSeqOf(channel, id []byte) (uint64, error) {
	if err := errors.Join(checkID("channel ID", channel), checkID("log message ID", id)); err != nil {
		return 0, err
	}
	v, err := s.get("read log message ID", logIDKey(channel, id))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, &CorruptError{Dir: s.dir, Detail: fmt.Sprintf("log message ID %x of %x has %d bytes", id, channel, len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}
