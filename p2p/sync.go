package p2p

import (
	"bufio"
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// syncProtocol serves one page of a channel's log per stream:
//
//	client: frame(channel) frame(after) uvarint(limit), then closes its side
//	server: status; for a refusal frame(reason); otherwise uvarint(n),
//	        n times frame(cursor) frame(data), and a byte that is 1 when
//	        the log has nothing after the page
const syncProtocol = protocol.ID("/spacepanda/sync/1.0.0")

// Limits of the sync protocol: channel IDs and cursors are short names, and
// a page stays well within what one stream should carry.
const (
	maxChannelID    = 256
	maxCursor       = 1024
	maxSyncPageSize = 8 << 20
)

// SyncEntry is one entry of a channel's log, a commit or a message as it
// was published, and the cursor that follows it: a later request "after"
// that cursor continues behind it. Cursors are the provider's, opaque to
// p2p, and must be non-empty.
type SyncEntry struct {
	Cursor []byte
	Data   []byte
}

// SyncProvider serves a channel's log: up to limit entries after the cursor
// after (nil means from the start), in log order, and whether the log has
// more after them. maxBytes (Config.SyncPageBytes) is the page's budget
// for the entries' data: the provider stops before the entry that would
// take the page past it, and reads no further, but always serves a first
// entry when the log has one, however large, so that a sync moves on; p2p
// cuts a page that goes over all the same. A non-nil error refuses the
// request, for instance to a peer that is not a member of the channel; its
// text is the reason the requester sees.
type SyncProvider func(ctx context.Context, from peer.ID, channel, after []byte, limit, maxBytes int) (entries []SyncEntry, more bool, err error)

// Sync fetches the entries of a channel's log that peer p holds after the
// cursor after (nil for all of them), in order, page by page, calling each
// for every entry until the log is exhausted. Persisting each entry's
// cursor as each returns lets a later Sync resume where this one stopped.
// An error from each stops Sync and is returned. Sync fetches at most
// MaxSyncPages pages and then fails with ErrTooLarge; a page that ends on
// a cursor Sync has already passed is ErrProtocol; when ctx ends first, the
// error wraps ctx.Err().
func (h *Host) Sync(ctx context.Context, p peer.ID, channel, after []byte, each func(SyncEntry) error) error {
	if len(channel) > maxChannelID || len(after) > maxCursor {
		return fmt.Errorf("%w: channel ID or cursor", ErrTooLarge)
	}
	what := "p2p: sync from " + p.String()
	if err := h.ConnectPeer(ctx, p); err != nil {
		return h.blame(ctx, what, err)
	}
	// A cursor seen before means the peer leads Sync round in a circle,
	// which the page cap would end only after many pages. At most
	// MaxSyncPages cursors of maxCursor bytes.
	passed := map[string]bool{string(after): true}
	for range h.cfg.MaxSyncPages {
		page, end, err := h.syncPage(ctx, p, channel, after)
		if err != nil {
			return h.blame(ctx, what, err)
		}
		for _, e := range page {
			if err := each(e); err != nil {
				return err
			}
		}
		if end || len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Cursor
		if passed[string(after)] {
			return fmt.Errorf("%w: sync from %s: cursor %x came round again", ErrProtocol, p, after)
		}
		passed[string(after)] = true
	}
	return fmt.Errorf("%w: sync from %s: over %d pages", ErrTooLarge, p, h.cfg.MaxSyncPages)
}

// syncPage runs one request.
func (h *Host) syncPage(ctx context.Context, p peer.ID, channel, after []byte) (page []SyncEntry, end bool, err error) {
	ctx, cancel := h.streamContext(ctx)
	defer cancel()
	s, err := h.host.NewStream(overRelay(ctx), p, syncProtocol)
	if err != nil {
		return nil, false, fmt.Errorf("opening stream: %w", err)
	}
	defer func() {
		if err != nil {
			s.Reset()
		} else {
			s.Close()
		}
	}()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	w := bufio.NewWriter(s)
	writeSyncRequest(w, channel, after, uint64(h.cfg.SyncPageLimit))
	if err := w.Flush(); err != nil {
		return nil, false, fmt.Errorf("sending request: %w", err)
	}
	_ = s.CloseWrite()

	r := bufio.NewReader(s)
	if err := readStatus(r, ErrSyncRefused); err != nil {
		return nil, false, err
	}
	return readSyncPage(r, h.cfg.SyncPageLimit, h.cfg.MaxMessageSize, maxSyncPageSize)
}

// writeSyncRequest writes a request for up to limit entries after the
// cursor after.
func writeSyncRequest(w *bufio.Writer, channel, after []byte, limit uint64) {
	writeFrame(w, channel)
	writeFrame(w, after)
	writeUvarint(w, limit)
}

// readSyncRequest reads what writeSyncRequest writes. The limit is the
// requester's wish, unchecked.
func readSyncRequest(r *bufio.Reader) (channel, after []byte, limit uint64, err error) {
	if channel, err = readFrame(r, maxChannelID); err != nil {
		return nil, nil, 0, err
	}
	if after, err = readFrame(r, maxCursor); err != nil {
		return nil, nil, 0, err
	}
	if limit, err = readUvarint(r); err != nil {
		return nil, nil, 0, err
	}
	return channel, after, limit, nil
}

// writeSyncPage writes a page after the OK status: its entries, and whether
// the log has nothing after them.
func writeSyncPage(w *bufio.Writer, entries []SyncEntry, end bool) {
	writeUvarint(w, uint64(len(entries)))
	for _, e := range entries {
		writeFrame(w, e.Cursor)
		writeFrame(w, e.Data)
	}
	if end {
		w.WriteByte(1)
	} else {
		w.WriteByte(0)
	}
}

// readSyncPage reads what writeSyncPage writes, refusing pages of more than
// maxEntries entries, entries of more than maxData bytes of data, or more
// than maxBytes bytes of data in all, so that a peer cannot make it
// allocate more.
func readSyncPage(r *bufio.Reader, maxEntries, maxData, maxBytes int) (page []SyncEntry, end bool, err error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, false, err
	}
	if n > uint64(maxEntries) {
		return nil, false, fmt.Errorf("%w: sync page of %d entries, asked for %d", ErrProtocol, n, maxEntries)
	}
	page = make([]SyncEntry, n)
	total := 0
	for i := range page {
		e := &page[i]
		if e.Cursor, err = readFrame(r, maxCursor); err != nil {
			return nil, false, err
		}
		if e.Data, err = readFrame(r, maxData); err != nil {
			return nil, false, err
		}
		if total += len(e.Data); total > maxBytes {
			return nil, false, fmt.Errorf("%w: sync page over %d bytes", ErrTooLarge, maxBytes)
		}
		if len(e.Cursor) == 0 {
			return nil, false, fmt.Errorf("%w: sync entry without cursor", ErrProtocol)
		}
	}
	last, err := readByte(r)
	if err != nil {
		return nil, false, err
	}
	if last > 1 {
		return nil, false, fmt.Errorf("%w: sync page end flag %d", ErrProtocol, last)
	}
	return page, last == 1, nil
}

func (h *Host) handleSync(s network.Stream) {
	from := s.Conn().RemotePeer()
	if !h.syncStreams.acquire(from) {
		h.log.Warn("too many sync streams", "remote", from.String(), "max", h.cfg.MaxPeerStreams)
		s.Reset()
		return
	}
	defer h.syncStreams.release(from)
	ctx, cancel := h.streamContext(h.ctx)
	defer cancel()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	r := bufio.NewReader(s)
	channel, after, limit, err := readSyncRequest(r)
	if err != nil {
		h.log.Warn("bad sync request", "remote", from.String(), "err", err)
		s.Reset()
		return
	}
	limit = min(max(limit, 1), uint64(h.cfg.SyncPageLimit))
	if len(after) == 0 {
		after = nil
	}

	entries, more, refusal := h.cfg.SyncProvider(ctx, from, channel, after, int(limit), h.cfg.SyncPageBytes)
	if len(entries) > int(limit) {
		entries, more = entries[:limit], true
	}
	// Keep the page within its byte budget, past which only a first entry
	// may go; what is cut comes next page.
	total := 0
	for i, e := range entries {
		if len(e.Cursor) == 0 || len(e.Cursor) > maxCursor || len(e.Data) > h.cfg.MaxMessageSize {
			refusal = fmt.Errorf("sync provider returned an unservable entry")
			break
		}
		if total += len(e.Data); total > h.cfg.SyncPageBytes && i > 0 {
			entries, more = entries[:i], true
			break
		}
	}
	end := !more

	w := bufio.NewWriter(s)
	writeStatus(w, refusal)
	if refusal == nil {
		writeSyncPage(w, entries, end)
	} else {
		h.log.Info("sync refused", "remote", from.String(), "err", refusal)
	}
	if err := w.Flush(); err != nil {
		s.Reset()
		return
	}
	s.Close()
}
