package node

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// EventType says what happened.
type EventType string

// Event types, stable strings that the RPC layer passes on.
const (
	EventMessage            EventType = "message"        // Message is set
	EventMemberJoined       EventType = "member_joined"  // Peer joined Channel
	EventMemberLeft         EventType = "member_left"    // Peer left (its leave was committed)
	EventMemberRemoved      EventType = "member_removed" // Peer was removed by another member
	EventInvitation         EventType = "invitation"     // Invitation is set
	EventChannelJoined      EventType = "channel_joined" // this node joined Channel
	EventChannelLeft        EventType = "channel_left"   // this node left or was removed
	EventEpoch              EventType = "epoch"          // Channel entered Epoch
	EventCommitLost         EventType = "commit_lost"    // this node's commit lost and is made again
	EventRewound            EventType = "rewound"        // Channel went back to Epoch for a late winning commit (rewind.go)
	EventRejoined           EventType = "rejoined"       // Channel was rejoined by external commit into Epoch, off a branch the group left (rejoin.go)
	EventKeyPackagesPublish EventType = "keypackages_published"
	EventError              EventType = "error" // Error is a failure a user should see
)

// Event is one thing that happened on the node, for the layers above.
type Event struct {
	// Seq numbers the node's events from 1 since it opened: a subscriber's
	// cursor (SubscribeFrom), meaningful only together with the node's
	// BootID, since every open starts again from 1.
	Seq        uint64
	Type       EventType
	Time       time.Time
	Channel    []byte // group ID, when it concerns a channel
	Epoch      uint64
	Peer       peer.ID
	Message    *Message
	Invitation *Invitation
	Error      string
}

// Subscription receives the node's events from the moment it is made.
// A subscriber that falls more than its buffer behind is dropped: C is
// closed and Err says so, so that one slow client never holds the node up.
type Subscription struct {
	C <-chan Event

	c       chan Event
	b       *broker
	mu      sync.Mutex
	dropped bool
}

// Dropped reports whether the node dropped the subscription because it
// fell behind.
func (s *Subscription) Dropped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() { s.b.remove(s, false) }

// eventBacklog is how many recent events the node keeps for subscribers
// that resume from a cursor.
const eventBacklog = 8192

type broker struct {
	mu     sync.Mutex
	boot   string // see bootID
	subs   map[*Subscription]struct{}
	closed bool
	seq    uint64
	recent []Event // a ring of the last eventBacklog events
	head   int     // index of the oldest in recent, once it is full
}

// bootIDBytes is the length of a boot ID before hex: 64 random bits make
// two opens colliding (and a stale cursor passing for a current one)
// negligible.
const bootIDBytes = 8

// BootID identifies this opening of the node: random, made once per Open
// (in fact on first use, which is the same thing to a caller), lower-case
// hex. Seq restarts from 1 on every open, so a cursor is a Seq together
// with the BootID it was issued under; a cursor of another boot names
// events this node never had and must be refused, not replayed.
func (n *Node) BootID() string { return n.events.bootID() }

func (b *broker) bootID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.boot == "" {
		var r [bootIDBytes]byte
		// crypto/rand.Read never returns an error on the platforms Go
		// supports (it panics instead, since Go 1.24).
		_, _ = rand.Read(r[:])
		b.boot = hex.EncodeToString(r[:])
	}
	return b.boot
}

// held returns the retained events, oldest first.
func (b *broker) held() []Event {
	return append(append([]Event(nil), b.recent[b.head:]...), b.recent[:b.head]...)
}

func (b *broker) subscribe(buffer int) *Subscription {
	s, _ := b.subscribeFrom(0, false, buffer)
	return s
}

// subscribeFrom subscribes and, with replay, first queues the retained
// events after cursor: under one lock, so nothing falls between the
// backlog and the live events, and nothing is in both.
func (b *broker) subscribeFrom(cursor uint64, replay bool, buffer int) (*Subscription, error) {
	if buffer <= 0 {
		buffer = 256
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var backlog []Event
	if replay {
		if cursor > b.seq {
			return nil, fmt.Errorf("%w: cursor %d is ahead of the node's events (%d)", ErrCursorExpired, cursor, b.seq)
		}
		held := b.held()
		if len(held) > 0 && cursor+1 < held[0].Seq {
			return nil, fmt.Errorf("%w: events after %d are no longer held (oldest %d)", ErrCursorExpired, cursor, held[0].Seq)
		}
		for _, e := range held {
			if e.Seq > cursor {
				backlog = append(backlog, e)
			}
		}
	}
	c := make(chan Event, buffer+len(backlog))
	s := &Subscription{C: c, c: c, b: b}
	for _, e := range backlog {
		c <- e
	}
	if b.closed {
		close(c)
		return s, nil
	}
	if b.subs == nil {
		b.subs = make(map[*Subscription]struct{})
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// lastSeq is the Seq of the newest event.
func (b *broker) lastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if len(b.recent) < eventBacklog {
		b.recent = append(b.recent, e)
	} else {
		b.recent[b.head] = e
		b.head = (b.head + 1) % eventBacklog
	}
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.mu.Lock()
			s.dropped = true
			s.mu.Unlock()
			delete(b.subs, s)
			close(s.c)
		}
	}
}

func (b *broker) remove(s *Subscription, _ bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.c)
	}
}
