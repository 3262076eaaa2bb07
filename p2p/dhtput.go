package p2p

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Every DHT node validates every record put to it, and validating a
// record can be costly (a KeyPackage record's signatures), while peer IDs
// cost nothing. So one peer may make the host validate only so many
// records: each PUT_VALUE takes a token from the peer's bucket, which
// holds MaxPeerPuts and gains one every PeerPutInterval, and a PUT without
// a token is refused unvalidated. A record that fails validation costs its
// sender every token it has and counts towards the gate's MaxRejections:
// a record is found invalid only by validating it, at up to the cost of a
// valid one, and honest peers put none.

// putBudget is the per-peer token buckets.
type putBudget struct {
	burst    float64
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newPutBudget(burst int, interval time.Duration) *putBudget {
	return &putBudget{burst: float64(burst), interval: interval, now: time.Now, peers: make(map[peer.ID]*bucket)}
}

// refill brings b up to now.
func (pb *putBudget) refill(b *bucket, now time.Time) {
	b.tokens = min(pb.burst, b.tokens+float64(now.Sub(b.at))/float64(pb.interval))
	b.at = now
}

// take spends one of p's tokens, or reports that it has none.
func (pb *putBudget) take(p peer.ID) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	now := pb.now()
	b, ok := pb.peers[p]
	if !ok {
		if len(pb.peers) >= sweepAt {
			pb.sweep(now)
		}
		b = &bucket{tokens: pb.burst, at: now}
		pb.peers[p] = b
	}
	pb.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// drain spends every token p has.
func (pb *putBudget) drain(p peer.ID) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if b, ok := pb.peers[p]; ok {
		b.tokens, b.at = 0, pb.now()
	}
}

// sweep forgets full buckets: a peer seen again gets a full one anyway.
func (pb *putBudget) sweep(now time.Time) {
	for p, b := range pb.peers {
		if pb.refill(b, now); b.tokens >= pb.burst {
			delete(pb.peers, p)
		}
	}
}

// validated remembers the records the PUT hook has just validated, so
// that the DHT's own validation of the same PUT, which follows at once,
// does not verify them a second time. Each entry serves one validation
// and lives validatedTTL at most.
type validated struct {
	mu      sync.Mutex
	records map[[32]byte]validatedEntry
}

type validatedEntry struct {
	n  int
	at time.Time
}

const validatedTTL = 10 * time.Second

func recordHash(key string, value []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(value)
	return [32]byte(h.Sum(nil))
}

func (v *validated) add(key string, value []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if len(v.records) >= sweepAt {
		for k, e := range v.records {
			if now.Sub(e.at) >= validatedTTL {
				delete(v.records, k)
			}
		}
	}
	h := recordHash(key, value)
	e := v.records[h]
	v.records[h] = validatedEntry{n: e.n + 1, at: now}
}

// take reports whether key and value were validated just now, using up
// that validation.
func (v *validated) take(key string, value []byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := recordHash(key, value)
	e, ok := v.records[h]
	if !ok {
		return false
	}
	if e.n--; e.n == 0 {
		delete(v.records, h)
	} else {
		v.records[h] = e
	}
	return time.Since(e.at) < validatedTTL
}

// prevalidated is a namespace's Validator as the DHT sees it: a record the
// PUT hook has just validated passes without a second validation.
type prevalidated struct {
	Validator
	done *validated
}

func (p prevalidated) Validate(key string, value []byte) error {
	if p.done.take(key, value) {
		return nil
	}
	return p.Validator.Validate(key, value)
}

// checkPut runs before the DHT handles each request from a peer; for a
// PUT_VALUE it spends the peer's budget and validates the record, and it
// refuses the PUT, by taking its record away (which the DHT answers as a
// malformed request), when the peer is gated, over budget, or the record
// is invalid.
func (h *Host) checkPut(_ context.Context, s network.Stream, req *dhtpb.Message) {
	rec := req.GetRecord()
	if req.GetType() != dhtpb.Message_PUT_VALUE || rec == nil {
		return
	}
	p := s.Conn().RemotePeer()
	key, value := string(rec.GetKey()), rec.GetValue()
	refuse := func(why string, err error) {
		h.log.Debug("DHT PUT refused", "remote", p.String(), "why", why, "err", err)
		req.Record = nil
	}
	switch {
	case h.gate.gated(p):
		refuse("gated", nil)
		return
	case !h.puts.take(p):
		refuse("over budget", nil)
		return
	case key != string(req.GetKey()):
		return // the DHT refuses it without validating
	}
	if err := h.validators.Validate(key, value); err != nil {
		h.puts.drain(p)
		if h.gate.reject(p) {
			h.shutOut(p)
		}
		refuse("invalid", err)
		return
	}
	h.validated.add(key, value)
}

// namespaced is cfg's validators as the DHT's validator.
func namespaced(vs map[string]Validator, wrap func(Validator) Validator) record.NamespacedValidator {
	out := make(record.NamespacedValidator, len(vs))
	for ns, v := range vs {
		out[ns] = wrap(v)
	}
	return out
}
