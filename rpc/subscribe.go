package rpc

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/creachadair/jrpc2"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/rpc/api"
)

// nodeBuffer is the node-side buffer of a connection's subscription. The
// connection's own queue (Server.maxPending) is the bound a client is held
// to; this one only absorbs bursts until the mover goroutine takes them,
// which it does without waiting on the client.
const nodeBuffer = 256

// subscription is a connection's feed of node events.
type subscription struct {
	ns   *node.Subscription
	done chan struct{}
	once sync.Once
}

func (s *subscription) stop() {
	s.once.Do(func() {
		close(s.done)
		s.ns.Close()
	})
}

func (s *Server) subscribe(ctx context.Context, p api.SubscribeParams) (api.SubscribeResult, error) {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil {
		return api.SubscribeResult{}, rpcError(api.CodeInternal, "no connection")
	}
	var filter []byte
	if p.Channel != "" {
		id, err := s.resolve(p.Channel)
		if err != nil {
			return api.SubscribeResult{}, err
		}
		filter = id
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		return api.SubscribeResult{}, rpcError(api.CodeInvalidArgument, "this connection is already subscribed; call %s first", api.MethodUnsubscribe)
	}
	// "" means live events only. SubscribeFrom(LastEvent()) is that with
	// no gap even though the two calls are not atomic: whatever happens
	// between them has a Seq after the cursor and is replayed.
	boot := s.n.BootID()
	var cursor uint64
	if p.Cursor == "" {
		cursor = s.n.LastEvent()
	} else {
		v, err := parseCursor(boot, p.Cursor)
		if err != nil {
			return api.SubscribeResult{}, err
		}
		cursor = v
	}
	ns, err := s.n.SubscribeFrom(cursor, nodeBuffer)
	if err != nil {
		return api.SubscribeResult{}, mapError(err)
	}
	sub := &subscription{ns: ns, done: make(chan struct{})}
	c.sub = sub

	// The first event waits for this response to be written, so that a
	// client reading the socket in order sees the subscription confirmed
	// before its events.
	var gate <-chan struct{}
	if req := jrpc2.InboundRequest(ctx); req != nil && !req.IsNotification() {
		gate = c.ch.gate(req.ID())
	} else {
		g := make(chan struct{})
		close(g)
		gate = g
	}
	go c.pump(sub, filter, gate)
	return api.SubscribeResult{Cursor: formatCursor(boot, cursor)}, nil
}

// A cursor is "<boot>-<seq>": the node's BootID and an event's Seq. The
// node numbers its events afresh on every open, so a bare Seq from before
// a restart would name other events than the ones the client saw and
// replay the wrong ones; with the boot in it such a cursor is refused.
// api.CursorOldest ("0") is the one cursor of no boot: it means every
// event held, in any run.
func formatCursor(boot string, seq uint64) string {
	return boot + "-" + strconv.FormatUint(seq, 10)
}

// parseCursor returns the Seq of a cursor of this boot. A malformed one is
// an invalid argument; a well-formed one of another boot is
// CodeCursorExpired, since the events it points after are gone with the
// daemon's previous run.
func parseCursor(boot, cursor string) (uint64, error) {
	if cursor == api.CursorOldest {
		return 0, nil
	}
	b, seqText, ok := strings.Cut(cursor, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || !isBootID(b, len(boot)) {
		return 0, rpcError(api.CodeInvalidArgument, "cursor %q is not an event cursor (use an event's or a subscribe result's cursor, as given)", cursor)
	}
	if b != boot {
		return 0, rpcError(api.CodeCursorExpired, "cursor %q is from an earlier run of the daemon: it restarted since, and the events after that cursor are gone; subscribe without a cursor and read message history to catch up", cursor)
	}
	return seq, nil
}

// isBootID says whether s looks like a node's BootID (lower-case hex of
// the length every boot's has), so that a typo is told apart from a stale
// cursor.
func isBootID(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func (s *Server) unsubscribe(ctx context.Context, _ none) (struct{}, error) {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil {
		return struct{}{}, rpcError(api.CodeInternal, "no connection")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		c.sub.stop()
		c.sub = nil
	}
	return struct{}{}, nil
}

// pump pushes a subscription's events to the client. A mover goroutine
// takes events off the node at once and puts them in a bounded queue; the
// pusher writes them to the socket, where a client that does not read
// blocks it. When the queue is full (or the node dropped the
// subscription), the client has fallen too far behind: the connection is
// closed, which also frees a pusher blocked in a write. Nothing here ever
// waits on the node or on other clients.
func (c *conn) pump(sub *subscription, filter []byte, gate <-chan struct{}) {
	s := c.s
	queue := make(chan node.Event, s.maxPending)
	go func() {
		defer close(queue)
		for e := range sub.ns.C {
			if filter != nil && string(e.Channel) != string(filter) {
				continue
			}
			select {
			case queue <- e:
			default:
				s.log.Warn("rpc: disconnecting a subscriber that left too many events unread", "pending", s.maxPending)
				c.close()
				return
			}
		}
		if sub.ns.Dropped() {
			s.log.Warn("rpc: disconnecting a subscriber the node dropped for falling behind")
			c.close()
		}
	}()

	select {
	case <-gate:
	case <-sub.done:
		return
	}
	for {
		select {
		case <-sub.done:
			return
		case e, ok := <-queue:
			if !ok {
				return
			}
			if err := c.srv.Notify(c.ctx, api.NotifyEvent, eventOf(c.s.n.BootID(), e)); err != nil {
				c.close()
				return
			}
		}
	}
}

// eventTypes renames the node's event types where the api's differ.
var eventTypes = map[node.EventType]string{
	node.EventInvitation: "invite",
}

func eventOf(boot string, e node.Event) api.Event {
	t, ok := eventTypes[e.Type]
	if !ok {
		t = string(e.Type)
	}
	ev := api.Event{
		Cursor: formatCursor(boot, e.Seq), Type: t, Time: e.Time,
		Epoch: e.Epoch, Error: e.Error,
	}
	if len(e.Channel) > 0 {
		ev.Channel = node.ChannelID(e.Channel)
	}
	if e.Peer != "" {
		ev.PeerID = e.Peer.String()
	}
	if e.Message != nil {
		m := messageOf(*e.Message)
		ev.Message = &m
	}
	if e.Invitation != nil {
		i := invitationOf(*e.Invitation)
		ev.Invitation = &i
	}
	return ev
}
