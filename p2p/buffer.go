package p2p

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// Frames are read in chunks allocated as their bytes arrive, never ahead
// of them: a length prefix costs a peer a few bytes, so a buffer sized to
// it, or doubled towards it, would let the peer make the host hold what it
// never sent. A frame holds at most what arrived plus one chunk until it
// is complete; then its chunks are joined into one buffer of its length.
const (
	frameChunk    = 4 << 10  // the chunk of a frame's first 64 KiB
	frameBigChunk = 64 << 10 // the chunk after them
)

// bufferBudget is what the frames of inbound Welcome streams, from every
// peer together, may hold at once (Config.MaxWelcomeBuffers). Without it,
// fresh peer IDs, which cost nothing, each within MaxPeerStreams, could
// pin memory without bound until their streams time out. When a frame
// needs more than is left, the host resets the stream whose frame has
// waited longest for bytes, if that is more than budgetIdle: an honest
// sender delivers its Welcome in one go, a hostile one that stalls holds
// what it sent and is the first to go.
type bufferBudget struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	used  int
	holds map[*hold]struct{}
}

// budgetIdle is how long a frame must have waited for bytes before another
// frame's need for room may evict it.
const budgetIdle = time.Second

func newBufferBudget(max int) *bufferBudget {
	return &bufferBudget{max: max, now: time.Now, holds: make(map[*hold]struct{})}
}

// hold is one stream's share of a bufferBudget.
type hold struct {
	b       *bufferBudget
	n       int
	last    time.Time // when the frame last grew
	evict   func()    // resets the stream
	evicted bool
	whole   bool // the frame is complete: evicting it would free nothing
}

// open starts a hold for a stream that evict resets.
func (b *bufferBudget) open(evict func()) *hold {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := &hold{b: b, last: b.now(), evict: evict}
	b.holds[h] = struct{}{}
	return h
}

// grow reserves k more bytes for h, evicting the idlest other hold if need
// be; it fails with ErrBusy when that is not enough, or when h itself was
// evicted.
func (h *hold) grow(k int) error {
	if h == nil {
		return nil
	}
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for !h.evicted && b.used+k > b.max {
		var idlest *hold
		for o := range b.holds {
			if o != h && !o.whole && o.n > 0 && now.Sub(o.last) >= budgetIdle && (idlest == nil || o.last.Before(idlest.last)) {
				idlest = o
			}
		}
		if idlest == nil {
			return fmt.Errorf("%w: %d bytes of Welcome buffers held, limit %d", ErrBusy, b.used, b.max)
		}
		b.used -= idlest.n
		idlest.n, idlest.evicted = 0, true
		delete(b.holds, idlest)
		// Its reader fails at once and drops its chunks.
		go idlest.evict()
	}
	if h.evicted {
		return fmt.Errorf("%w: evicted from the Welcome buffers", ErrBusy)
	}
	b.used += k
	h.n += k
	h.last = now
	return nil
}

// complete marks h's frame whole, so that it is no longer evicted: its
// handler holds it, and resetting the stream would not free it.
func (h *hold) complete() {
	if h == nil {
		return
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.whole = true
}

// shrink gives back k bytes of h.
func (h *hold) shrink(k int) {
	if h == nil {
		return
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if !h.evicted {
		h.b.used -= k
		h.n -= k
	}
}

// close gives back all of h.
func (h *hold) close() {
	if h == nil {
		return
	}
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !h.evicted {
		b.used -= h.n
		h.n = 0
	}
	delete(b.holds, h)
}

// inUse is what the budget's holds reserve.
func (b *bufferBudget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// readFrameHeld reads one frame of at most limit bytes, its chunks charged
// to h (nil charges nothing). The frame stays charged to h until h is
// closed.
func readFrameHeld(r *bufio.Reader, limit int, h *hold) ([]byte, error) {
	v, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if v > uint64(limit) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, v, limit)
	}
	n := int(v)
	var chunks [][]byte
	got := 0
	for got < n {
		// Wait for a byte before allocating the room for it.
		if _, err := r.Peek(1); err != nil {
			return nil, protocolError(err)
		}
		size := frameChunk
		if got >= frameBigChunk {
			size = frameBigChunk
		}
		size = min(size, n-got)
		if err := h.grow(size); err != nil {
			return nil, err
		}
		c := make([]byte, size)
		k, err := io.ReadFull(r, c)
		chunks, got = append(chunks, c[:k]), got+k
		if err != nil {
			return nil, protocolError(err)
		}
	}
	h.complete()
	switch len(chunks) {
	case 0:
		return []byte{}, nil
	case 1:
		return chunks[0], nil
	}
	if err := h.grow(n); err != nil {
		return nil, err
	}
	out := make([]byte, 0, n)
	for _, c := range chunks {
		out = append(out, c...)
	}
	h.shrink(n)
	return out, nil
}
