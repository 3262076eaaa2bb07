package keypkgdir

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// DHT is what keypkgdir needs of the DHT; p2p's Host satisfies it.
type DHT interface {
	// PutValue stores value under key, locally and on the peers closest
	// to key, if the key's validator accepts it and prefers it to what is
	// stored there.
	PutValue(ctx context.Context, key string, value []byte) error
	// GetValue returns the best valid value stored under key. When there
	// is none, the error matches go-libp2p's routing.ErrNotFound. It
	// returns when ctx ends, at the latest.
	GetValue(ctx context.Context, key string) ([]byte, error)
}

// DefaultFetchTimeout bounds a Fetch whose context has no deadline.
const DefaultFetchTimeout = 30 * time.Second

// Directory fetches peers' KeyPackages for inviters. Set its fields before
// first use; it is then safe for concurrent use.
type Directory struct {
	DHT DHT
	// Validator checks fetched records again, with this node's clock,
	// options and suites: a DHT implementation need not have validated
	// them.
	Validator Validator
	// Rand picks among a record's one-time KeyPackages, so that inviters
	// rarely pick the same one; nil means crypto/rand.
	Rand io.Reader
	// Timeout bounds a Fetch whose context has no deadline; zero means
	// DefaultFetchTimeout.
	Timeout time.Duration
}

// Fetch returns one of p's published KeyPackages, validated: one of the
// one-time ones, picked at random, or the last-resort one when the record
// holds no other. It fails with an error matching ErrNoKeyPackages when p
// has no record in the DHT (never published, or expired and dropped) or the
// lookup fails or runs out of time, and ErrKeyPackageExpired when the
// record found is past its lifetime. It never waits beyond ctx, nor beyond
// Timeout when ctx has no deadline.
func (d *Directory) Fetch(ctx context.Context, p peer.ID) (*mlsgroup.KeyPackage, error) {
	if _, ok := ctx.Deadline(); !ok {
		timeout := d.Timeout
		if timeout <= 0 {
			timeout = DefaultFetchTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	key := Key(p)
	value, err := d.DHT.GetValue(ctx, key)
	switch {
	case err == nil:
	case errors.Is(err, routing.ErrNotFound):
		return nil, fmt.Errorf("%w for %s (never published, or expired)", ErrNoKeyPackages, p)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w for %s: lookup gave up: %w", ErrNoKeyPackages, p, ctx.Err())
	default:
		return nil, fmt.Errorf("%w for %s: lookup failed: %w", ErrNoKeyPackages, p, err)
	}
	r, kps, err := d.Validator.validate(key, value)
	switch {
	case errors.Is(err, ErrKeyPackageExpired):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w for %s: the DHT served an invalid record: %w", ErrNoKeyPackages, p, err)
	}
	var oneTime []int
	lastResort := -1
	for i, e := range r.Entries {
		if e.LastResort {
			lastResort = i
		} else {
			oneTime = append(oneTime, i)
		}
	}
	if len(oneTime) == 0 {
		return kps[lastResort], nil
	}
	i, err := d.pick(len(oneTime))
	if err != nil {
		return nil, err
	}
	return kps[oneTime[i]], nil
}

func (d *Directory) pick(n int) (int, error) {
	r := d.Rand
	if r == nil {
		r = rand.Reader
	}
	i, err := rand.Int(r, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("keypkgdir: picking a KeyPackage: %w", err)
	}
	return int(i.Int64()), nil
}
