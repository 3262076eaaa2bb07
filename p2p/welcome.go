package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// welcomeProtocol delivers one Welcome per stream:
//
//	sender:   frame(welcome), then closes its side
//	receiver: status (0 acknowledged, 1 refused), and for a refusal frame(reason)
const welcomeProtocol = protocol.ID("/spacepanda/welcome/1.0.0")

// SendWelcome delivers a Welcome to its invitee now, connecting first (via
// the DHT if need be). It returns nil once the invitee acknowledged it, an
// error matching ErrWelcomeRejected if the invitee refused it, and any other
// error when it could not be delivered; QueueWelcome retries those. When
// ctx is cancelled or reaches its deadline, the exchange ends at once and
// the error wraps ctx.Err(); ErrProtocol means the invitee broke the
// protocol or did not answer within StreamTimeout.
func (h *Host) SendWelcome(ctx context.Context, to peer.ID, welcome []byte) error {
	return h.sendWelcome(ctx, context.Background(), to, welcome)
}

// sendWelcome is SendWelcome whose search for the invitee also ends when
// interrupt does; if the invitee is connected by then, the Welcome goes
// over that connection. Once the stream is open, only caller's end, Close
// and StreamTimeout end it.
func (h *Host) sendWelcome(caller, interrupt context.Context, to peer.ID, welcome []byte) error {
	if len(welcome) > h.cfg.MaxWelcomeSize {
		return fmt.Errorf("%w: Welcome of %d bytes, limit %d", ErrTooLarge, len(welcome), h.cfg.MaxWelcomeSize)
	}
	what := "p2p: Welcome to " + to.String()
	ctx, cancel := h.streamContext(caller)
	defer cancel()
	reach, stopReach := context.WithCancel(ctx)
	defer stopReach()
	stop := context.AfterFunc(interrupt, stopReach)
	defer stop()
	if err := h.ConnectPeer(reach, to); err != nil {
		if interrupt.Err() == nil || !h.connected(to) {
			return h.blame(caller, what, err)
		}
	}
	s, err := h.host.NewStream(overRelay(ctx), to, welcomeProtocol)
	if err != nil {
		return h.blame(caller, what+": opening stream", err)
	}
	defer s.Close()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	w := bufio.NewWriter(s)
	writeFrame(w, welcome)
	if err := w.Flush(); err != nil {
		s.Reset()
		return h.blame(caller, what+": sending", err)
	}
	_ = s.CloseWrite()
	if err := readStatus(bufio.NewReader(s), ErrWelcomeRejected); err != nil {
		s.Reset()
		return h.blame(caller, what, err)
	}
	return nil
}

func (h *Host) handleWelcome(s network.Stream) {
	from := s.Conn().RemotePeer()
	if !h.welcomeStreams.acquire(from) {
		h.log.Warn("too many Welcome streams", "remote", from.String(), "max", h.cfg.MaxPeerStreams)
		s.Reset()
		return
	}
	defer h.welcomeStreams.release(from)
	defer s.Close()
	ctx, cancel := h.streamContext(h.ctx)
	defer cancel()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	held := h.welcomeBuffers.open(func() { s.Reset() })
	defer held.close()
	welcome, err := readFrameHeld(bufio.NewReader(s), h.cfg.MaxWelcomeSize, held)
	if err != nil {
		h.log.Warn("bad Welcome stream", "remote", from.String(), "err", err)
		s.Reset()
		return
	}
	refusal := h.cfg.WelcomeHandler(ctx, from, welcome)
	if refusal != nil {
		h.log.Info("Welcome refused", "remote", from.String(), "err", refusal)
	}
	w := bufio.NewWriter(s)
	writeStatus(w, refusal)
	if err := w.Flush(); err != nil {
		s.Reset()
	}
}

// PendingWelcome is a Welcome waiting in the outbox for its invitee.
type PendingWelcome struct {
	// ID names it: queueing another Welcome with the same ID replaces it.
	ID      []byte
	To      peer.ID
	Welcome []byte
	// Expires is when to give up: the end of the lifetime of the invitee's
	// KeyPackage the Welcome was made for, after which it cannot be used.
	Expires time.Time
}

// pendingWelcomeVersion versions the encoding handed to WelcomeStore.
const pendingWelcomeVersion = 1

func (w *PendingWelcome) marshal() []byte {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	bw.WriteByte(pendingWelcomeVersion)
	writeFrame(bw, w.ID)
	writeFrame(bw, []byte(w.To))
	writeUvarint(bw, uint64(w.Expires.UnixMilli()))
	writeFrame(bw, w.Welcome)
	bw.Flush()
	return b.Bytes()
}

func parsePendingWelcome(data []byte) (*PendingWelcome, error) {
	r := bufio.NewReader(bytes.NewReader(data))
	var w PendingWelcome
	version, err := readByte(r)
	if err == nil && version != pendingWelcomeVersion {
		err = fmt.Errorf("version %d", version)
	}
	var to []byte
	var expires uint64
	if err == nil {
		w.ID, err = readFrame(r, len(data))
	}
	if err == nil {
		to, err = readFrame(r, len(data))
	}
	if err == nil {
		expires, err = readUvarint(r)
	}
	if err == nil {
		w.Welcome, err = readFrame(r, len(data))
	}
	if err == nil {
		w.To, err = peer.IDFromBytes(to)
	}
	if err == nil {
		if _, e := r.ReadByte(); e != io.EOF {
			err = errors.New("trailing bytes")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: stored Welcome: %w", err)
	}
	w.Expires = time.UnixMilli(int64(expires))
	return &w, nil
}

// QueueWelcome puts a Welcome in the outbox, persisting it in WelcomeStore
// first. The outbox sends it at once and again whenever the invitee
// connects, and meanwhile retries with growing delays (up to
// WelcomeRetryMax), looking the invitee up in the DHT; it also leaves a
// mailbox hint in the DHT, so that the invitee, when it comes online, finds
// and connects to this host; only the two of them can tell whose hint it
// is (see the package doc, Mailboxes). It stops when the invitee
// acknowledges or refuses the Welcome, or when it expires, and reports
// which to WelcomeDone.
func (h *Host) QueueWelcome(w PendingWelcome) error {
	switch {
	case h.ctx.Err() != nil:
		return ErrClosed
	case len(w.ID) == 0:
		return fmt.Errorf("p2p: queueing a Welcome without ID")
	case w.To.Validate() != nil:
		return fmt.Errorf("p2p: queueing a Welcome for invalid peer ID: %w", w.To.Validate())
	case len(w.Welcome) > h.cfg.MaxWelcomeSize:
		return fmt.Errorf("%w: Welcome of %d bytes, limit %d", ErrTooLarge, len(w.Welcome), h.cfg.MaxWelcomeSize)
	case !w.Expires.After(time.Now()):
		return fmt.Errorf("%w: it expired at %s", ErrWelcomeExpired, w.Expires.UTC().Format(time.RFC3339))
	}
	w.ID, w.Welcome = bytes.Clone(w.ID), bytes.Clone(w.Welcome)
	if st := h.cfg.WelcomeStore; st != nil {
		if err := st.PutWelcome(w.ID, w.marshal()); err != nil {
			return fmt.Errorf("p2p: storing Welcome for %s: %w", w.To, err)
		}
	}
	select {
	case h.out.add <- w:
		return nil
	case <-h.ctx.Done():
		return ErrClosed
	}
}

// outbox delivers queued Welcomes. Its loop goroutine owns pending; the
// delivery attempts and mailbox hints it starts report back on channels.
type outbox struct {
	h         *Host
	add       chan PendingWelcome
	results   chan attempt
	hints     chan hintResult
	connected event.Subscription

	pending map[string]*pending // by ID; owned by loop
	hinted  map[peer.ID]time.Time
}

type pending struct {
	w        PendingWelcome
	next     time.Time     // when to try next
	delay    time.Duration // the last delay between attempts
	busy     bool          // an attempt is running
	tryAgain bool          // the invitee connected during the attempt
	// interrupt cuts short the running attempt's search for the invitee
	// when the invitee connects: the attempt may be stuck dialling an
	// address the invitee no longer has (a QUIC handshake to a dead
	// address takes seconds to time out), while the fresh connection can
	// carry the Welcome at once. It does not stop a Welcome being sent:
	// the connection may be the attempt's own dial, and cutting off a
	// transfer the invitee already took would deliver the Welcome twice.
	interrupt context.CancelFunc
}

type attempt struct {
	id  string
	err error
}

type hintResult struct {
	to peer.ID
	ok bool
}

// Delays between attempts to reach an invitee, and how often a mailbox
// hint is renewed (provider records live 48 hours).
const (
	welcomeRetryMin = time.Second
	hintRenew       = 12 * time.Hour
	hintRetry       = 10 * time.Second
)

func newOutbox(h *Host) (*outbox, error) {
	sub, err := h.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(256))
	if err != nil {
		return nil, fmt.Errorf("p2p: outbox: %w", err)
	}
	o := &outbox{
		h:         h,
		add:       make(chan PendingWelcome),
		results:   make(chan attempt),
		hints:     make(chan hintResult),
		connected: sub,
		pending:   make(map[string]*pending),
		hinted:    make(map[peer.ID]time.Time),
	}
	if st := h.cfg.WelcomeStore; st != nil {
		stored, err := st.Welcomes()
		if err != nil {
			sub.Close()
			return nil, fmt.Errorf("p2p: loading pending Welcomes: %w", err)
		}
		for _, v := range stored {
			w, err := parsePendingWelcome(v)
			if err != nil {
				h.log.Error("dropping unreadable stored Welcome", "err", err)
				continue
			}
			o.pending[string(w.ID)] = &pending{w: *w}
		}
	}
	h.wg.Go(o.loop)
	return o, nil
}

func (o *outbox) loop() {
	h := o.h
	defer o.connected.Close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	running := 0 // attempts and hints started and not yet reported
	for {
		wake := o.schedule(&running)
		timer.Reset(time.Until(wake))
		select {
		case <-h.ctx.Done():
			// Attempts end with h.ctx; drain their reports so that none
			// blocks forever.
			for ; running > 0; running-- {
				select {
				case <-o.results:
				case <-o.hints:
				}
			}
			return
		case w := <-o.add:
			if p, ok := o.pending[string(w.ID)]; ok && p.busy {
				p.w, p.tryAgain = w, true
			} else {
				o.pending[string(w.ID)] = &pending{w: w}
			}
		case ev := <-o.connected.Out():
			e := ev.(event.EvtPeerConnectednessChanged)
			if e.Connectedness != network.Connected && e.Connectedness != network.Limited {
				continue
			}
			for _, p := range o.pending {
				if p.w.To == e.Peer {
					p.next, p.tryAgain = time.Time{}, true
					if p.busy {
						p.interrupt()
					}
				}
			}
		case r := <-o.results:
			running--
			o.finishAttempt(r)
		case r := <-o.hints:
			running--
			if r.ok {
				o.hinted[r.to] = time.Now()
			} else {
				o.hinted[r.to] = time.Now().Add(hintRetry - hintRenew)
			}
		case <-timer.C:
		}
	}
}

// schedule expires Welcomes, starts the attempts and hints that are due,
// and returns when it next has something to do.
func (o *outbox) schedule(running *int) time.Time {
	now := time.Now()
	wake := now.Add(time.Hour)
	want := make(map[peer.ID]bool)
	for id, p := range o.pending {
		if p.busy {
			continue
		}
		if !p.w.Expires.After(now) {
			o.finish(id, p, fmt.Errorf("%w: for %s at %s", ErrWelcomeExpired, p.w.To, p.w.Expires.UTC().Format(time.RFC3339)))
			continue
		}
		// Hint only for invitees that could not be reached at once.
		if p.delay > 0 {
			want[p.w.To] = true
		}
		if !p.next.After(now) {
			interrupt, cancel := context.WithCancel(context.Background())
			p.busy, p.tryAgain, p.interrupt = true, false, cancel
			*running++
			to, welcome := p.w.To, p.w.Welcome
			o.h.wg.Go(func() {
				err := o.h.sendWelcome(o.h.ctx, interrupt, to, welcome)
				cancel()
				o.results <- attempt{id, err}
			})
			continue
		}
		wake = earliest(wake, p.next, p.w.Expires)
	}
	for to := range want {
		last, ok := o.hinted[to]
		if ok && now.Sub(last) < hintRenew {
			wake = earliest(wake, last.Add(hintRenew))
			continue
		}
		o.hinted[to] = now // in flight; the report sets it again
		*running++
		o.h.wg.Go(func() { o.hints <- hintResult{to, o.h.leaveHint(to)} })
	}
	for to := range o.hinted {
		if !want[to] && !o.hasPending(to) {
			delete(o.hinted, to)
		}
	}
	return wake
}

func (o *outbox) hasPending(to peer.ID) bool {
	for _, p := range o.pending {
		if p.w.To == to {
			return true
		}
	}
	return false
}

func (o *outbox) finishAttempt(r attempt) {
	p, ok := o.pending[r.id]
	if !ok {
		return
	}
	p.busy, p.interrupt = false, nil
	switch {
	case r.err == nil || errors.Is(r.err, ErrWelcomeRejected):
		o.finish(r.id, p, r.err)
	case p.tryAgain:
		p.next = time.Time{}
		o.h.log.Debug("Welcome not delivered yet", "to", p.w.To.String(), "retry", time.Duration(0), "err", r.err)
	default:
		p.delay = min(max(2*p.delay, welcomeRetryMin), o.h.cfg.WelcomeRetryMax)
		p.next = time.Now().Add(p.delay)
		o.h.log.Debug("Welcome not delivered yet", "to", p.w.To.String(), "retry", p.delay, "err", r.err)
	}
}

func (o *outbox) finish(id string, p *pending, err error) {
	delete(o.pending, id)
	h := o.h
	if st := h.cfg.WelcomeStore; st != nil {
		if derr := st.DeleteWelcome(p.w.ID); derr != nil {
			h.log.Error("deleting delivered Welcome", "to", p.w.To.String(), "err", derr)
		}
	}
	if err == nil {
		h.log.Info("Welcome delivered", "to", p.w.To.String())
	} else {
		h.log.Warn("Welcome dropped", "to", p.w.To.String(), "err", err)
	}
	if h.cfg.WelcomeDone != nil {
		h.cfg.WelcomeDone(p.w, err)
	}
}

func earliest(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}
