package keypkgdir

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// PublisherConfig configures a Publisher. Zero fields take the defaults
// documented on each.
type PublisherConfig struct {
	DHT DHT
	// Identity is the node's libp2p key: it signs the record, and every
	// KeyPackage's identity binds Signer to its peer ID (NewIdentity).
	Identity crypto.PrivKey
	// Storage is the node's one MLS provider: new KeyPackages' private
	// keys go there, the last-resort one marked as such, and stay until
	// they expire or a join consumes them by the Storage's rule (which
	// keeps the last-resort one).
	Storage mlsgroup.Storage
	// Signer is the node's MLS signature key.
	Signer *mlsgroup.Signer
	// KeyPackageOptions are the capabilities and extensions the node
	// wants in every KeyPackage. The publisher sets Lifetime (from
	// Lifetime below) and LastResort itself.
	KeyPackageOptions mlsgroup.KeyPackageOptions
	// Rand feeds KeyPackage generation; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// BatchSize is how many one-time KeyPackages are published besides
	// the last-resort one; zero means 8, and at most MaxEntries-1. Several,
	// so that inviters picking at random rarely pick the same before the
	// owner rotates it out.
	BatchSize int
	// Lifetime is each KeyPackage's lifetime; zero means mlsgroup's
	// default, four weeks.
	Lifetime time.Duration
	// RotateBefore replaces a KeyPackage, the last-resort one included,
	// once less than this is left of its lifetime; zero means a quarter
	// of Lifetime. It also bounds how soon the record expires.
	RotateBefore time.Duration
	// RepublishInterval is how often the record is put again, which keeps
	// it on DHT nodes that drop records older than their maximum record
	// age (48 hours by default); zero means 4 hours, so that a dozen
	// republications fit in one record age.
	RepublishInterval time.Duration
	// RetryInterval is how soon a failed publication is retried; zero
	// means 30 seconds.
	RetryInterval time.Duration
	// Logger receives the publisher's logs; nil discards them.
	Logger *slog.Logger
}

// Publisher keeps the node's record in the DHT. Its methods are safe for
// concurrent use.
type Publisher struct {
	cfg   PublisherConfig
	self  peer.ID
	log   *slog.Logger
	valid Validator     // the signer's suite only: resuming another's KeyPackages would mix suites
	kick  chan struct{} // a KeyPackage was used: publish soon

	publishing sync.Mutex // serialises Publish; taken before mu

	mu        sync.Mutex // guards the fields below; never held across I/O
	entries   []entry
	seq       uint64
	fit       int // how many entries fit in a record, once one did not; 0 before
	resumed   bool
	published []byte // the last record put, nil when entries changed since
}

type entry struct {
	kp         *mlsgroup.KeyPackage
	lastResort bool
}

// NewPublisher checks cfg and makes a Publisher; nothing is published until
// Publish or Run.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.DHT == nil || cfg.Identity == nil || cfg.Storage == nil || cfg.Signer == nil {
		return nil, errors.New("keypkgdir: publisher needs DHT, Identity, Storage and Signer")
	}
	self, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: publisher identity: %w", err)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 8
	}
	if cfg.BatchSize >= MaxEntries {
		return nil, fmt.Errorf("keypkgdir: BatchSize %d leaves no room in a record for the last-resort KeyPackage (MaxEntries %d)", cfg.BatchSize, MaxEntries)
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = mlsgroup.DefaultKeyPackageLifetime
	}
	if cfg.RotateBefore <= 0 {
		cfg.RotateBefore = cfg.Lifetime / 4
	}
	if cfg.RotateBefore >= cfg.Lifetime {
		return nil, fmt.Errorf("keypkgdir: RotateBefore %s is not shorter than Lifetime %s", cfg.RotateBefore, cfg.Lifetime)
	}
	if cfg.RepublishInterval <= 0 {
		cfg.RepublishInterval = 4 * time.Hour
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{
		cfg:   cfg,
		self:  self,
		log:   cfg.Logger.With("peer", self.String()),
		valid: Validator{Now: cfg.Now, Suites: []mlsgroup.CipherSuite{cfg.Signer.CipherSuite()}},
		kick:  make(chan struct{}, 1),
	}, nil
}

// Used is a notification: a KeyPackage was consumed, rotate it out soon.
// The node calls it after the batch that saved the joined group (and
// consumed the KeyPackage in its Storage) is durable. A one-time
// KeyPackage leaves the record at the next publication, which Run makes
// soon; the last-resort one stays published, as the Storage keeps its
// private keys by its own rule. A ref the publisher does not know is
// ignored.
func (p *Publisher) Used(ref []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.entries {
		if !bytes.Equal(e.kp.Ref(), ref) {
			continue
		}
		if e.lastResort {
			return
		}
		p.entries = slices.Delete(p.entries, i, i+1)
		p.published = nil
		select {
		case p.kick <- struct{}{}:
		default:
		}
		return
	}
}

// Run publishes the record, then keeps it fresh until ctx ends: it
// republishes every RepublishInterval, soon after a KeyPackage is used, and
// when one is due for rotation, and retries failures every RetryInterval.
// It returns nil when ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.kick:
		}
		wait := p.cfg.RepublishInterval
		if err := p.Publish(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("publishing KeyPackages", "err", err)
			wait = p.cfg.RetryInterval
		}
		if next := p.nextRotation(); next < wait {
			wait = max(next, time.Second)
		}
		timer.Reset(wait)
	}
}

// nextRotation is how long until the first KeyPackage is due for rotation.
func (p *Publisher) nextRotation() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.cfg.Lifetime
	for _, e := range p.entries {
		next = min(next, e.kp.NotAfter().Add(-p.cfg.RotateBefore).Sub(p.cfg.Now()))
	}
	return next
}

// Publish brings the record up to date and puts it in the DHT now: used
// and ageing KeyPackages are replaced, the batch refilled, and, when
// anything changed, the sequence number raised. The first call first looks
// up the record a previous run of the node published, to carry on from its
// sequence number and KeyPackages (those whose private keys Storage still
// holds), so that a restart neither goes backwards nor wastes KeyPackages.
func (p *Publisher) Publish(ctx context.Context) error {
	p.publishing.Lock()
	defer p.publishing.Unlock()
	p.mu.Lock()
	resumed := p.resumed
	p.mu.Unlock()
	if !resumed {
		p.resume(ctx)
	}
	value, err := p.refresh()
	if err != nil {
		return err
	}
	if err := p.cfg.DHT.PutValue(ctx, Key(p.self), value); err != nil {
		return fmt.Errorf("keypkgdir: putting record: %w", err)
	}
	return nil
}

// resume adopts the record found in the DHT, if any.
func (p *Publisher) resume(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RetryInterval)
	defer cancel()
	value, err := p.cfg.DHT.GetValue(ctx, Key(p.self))
	if err != nil {
		if !errors.Is(err, routing.ErrNotFound) {
			p.log.Info("no previous record to resume from", "err", err)
		}
		p.mu.Lock()
		p.resumed = true
		p.mu.Unlock()
		return
	}
	var kept []entry
	r, kps, err := p.valid.validate(Key(p.self), value)
	if err == nil {
		for i, kp := range kps {
			if _, status, serr := p.cfg.Storage.KeyPackage(kp.Ref()); serr == nil && status == mlsgroup.KeyPackageAvailable {
				kept = append(kept, entry{kp: kp, lastResort: r.Entries[i].LastResort})
			}
		}
	} else if sr, oerr := open(value); oerr == nil && sr.Peer == p.self {
		// Expired or otherwise unusable, but its sequence number still
		// stands in the way of lower ones.
		r = &sr.Record
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resumed = true
	if r != nil {
		p.seq = max(p.seq, r.Seq)
		p.entries = append(kept, p.entries...)
		p.log.Info("resumed KeyPackage record", "seq", r.Seq, "kept", len(kept))
	}
}

// refresh updates the batch and returns the record to put.
func (p *Publisher) refresh() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	entries := slices.DeleteFunc(slices.Clone(p.entries), func(e entry) bool {
		return e.kp.NotAfter().Sub(now) < p.cfg.RotateBefore
	})
	changed := len(entries) != len(p.entries) || p.published == nil
	hasLastResort := slices.ContainsFunc(entries, func(e entry) bool { return e.lastResort })
	oneTime := len(entries)
	if hasLastResort {
		oneTime--
	}
	batch := p.cfg.BatchSize
	if p.fit > 0 {
		batch = min(batch, p.fit-1)
	}
	for !hasLastResort || oneTime < batch {
		// The last-resort KeyPackage comes first, so that a failure
		// part way leaves the node invitable.
		identity, err := NewIdentity(p.cfg.Identity, p.cfg.Signer.PublicKey())
		if err != nil {
			return nil, err
		}
		opts := p.cfg.KeyPackageOptions
		opts.Lifetime, opts.LastResort = p.cfg.Lifetime, !hasLastResort
		opts.NotBefore, opts.NotAfter = time.Time{}, time.Time{}
		kp, err := mlsgroup.NewKeyPackage(p.cfg.Storage, identity, p.cfg.Signer, opts, p.cfg.Rand, now)
		if err != nil {
			return nil, fmt.Errorf("keypkgdir: making a KeyPackage: %w", err)
		}
		changed = true
		if opts.LastResort {
			entries, hasLastResort = append(entries, entry{kp: kp, lastResort: true}), true
		} else {
			entries, oneTime = append(entries, entry{kp: kp}), oneTime+1
		}
	}
	if !changed {
		return p.published, nil
	}
	// Keep the last-resort KeyPackage last, so that trimming for size
	// drops one-time ones first.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return boolCompare(a.lastResort, b.lastResort)
	})
	// A resumed record may hold MaxEntries one-time KeyPackages and no
	// last-resort one: one more would have every DHT node refuse it.
	if n := len(entries) - MaxEntries; n > 0 {
		entries = entries[n:]
	}
	for {
		value, err := p.seal(entries, now)
		if err == nil {
			p.entries, p.published = entries, value
			return value, nil
		}
		if !errors.Is(err, ErrTooLarge) || len(entries) <= 1 {
			return nil, err
		}
		// Remember the fit, or every publication would make KeyPackages
		// only to drop them again.
		entries, p.fit = entries[1:], len(entries)-1
		p.log.Warn("KeyPackage record too large, publishing fewer", "entries", p.fit)
	}
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// seal signs a record of entries with the next sequence number. Sequence
// numbers follow the clock in milliseconds as well as the last record, so
// that a node that lost track of its record still goes forward.
func (p *Publisher) seal(entries []entry, now time.Time) ([]byte, error) {
	r := Record{Peer: p.self, Seq: max(p.seq+1, uint64(max(now.UnixMilli(), 0)))}
	for _, e := range entries {
		if r.Expiry.IsZero() || e.kp.NotAfter().Before(r.Expiry) {
			r.Expiry = e.kp.NotAfter()
		}
		r.Entries = append(r.Entries, Entry{KeyPackage: e.kp.Bytes(), LastResort: e.lastResort})
	}
	value, err := r.Seal(p.cfg.Identity)
	if err != nil {
		return nil, err
	}
	if len(value) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(value))
	}
	p.seq = r.Seq
	return value, nil
}
