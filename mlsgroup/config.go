package mlsgroup

import (
	"io"
	"math"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
)

// Config is what a group needs from its owner beyond its own state. It is
// not part of the persisted state: the caller hands the same Config (or an
// updated one) to LoadGroup. Set the fields before first use; Rand and Now
// are required, because this package reads no randomness or clock it is
// not given.
type Config struct {
	// Storage is the node's one provider of KeyPackage private keys: a
	// join looks up the KeyPackageRefs of a Welcome in it.
	Storage Storage
	// Rand supplies every random value: leaf secrets, reuse guards, PSK
	// nonces, signature and HPKE key seeds.
	Rand io.Reader
	// Now is the clock that lifetimes are checked against.
	Now func() time.Time
	// Validation holds the application's choices about credentials and
	// lifetimes.
	Validation ValidationOptions

	// MaxGenerationsBehind is how many generations older than the newest
	// one received from a sender stay decryptable (§9.2's out-of-order
	// keys); zero means DefaultMaxGenerationsBehind, negative means none.
	MaxGenerationsBehind int
	// MaxGenerationsAhead is how many generations a receiver ratchets
	// forward to reach a message from the future; zero means
	// DefaultMaxGenerationsAhead, negative means none.
	MaxGenerationsAhead int
	// MaxSkippedKeys caps the keys an epoch keeps for skipped generations
	// over all its senders together; zero means no cap beyond
	// MaxGenerationsBehind per sender, negative is refused. With a wide
	// MaxGenerationsBehind it bounds what every sender's gaps together
	// add to the state (about 35 bytes a key).
	MaxSkippedKeys int
	// PastEpochs is how many superseded epochs keep the keys that decrypt
	// their late application messages, and their resumption PSKs (§8.6);
	// zero means DefaultPastEpochs, negative means none.
	PastEpochs int
	// PadTo is the block size that PrivateMessage content is padded to a
	// multiple of (§6.3.1); zero means DefaultPadTo, one turns padding off.
	PadTo int
	// PublicHandshake sends proposals and commits as PublicMessages
	// (§6.2), so that a delivery service can read them, rather than as
	// PrivateMessages. Application messages are always private.
	PublicHandshake bool
	// ExternalPSK returns the value of the external pre-shared key named
	// id (§8.4), for PreSharedKey proposals and Welcomes that inject one;
	// nil means this node has no external PSKs. It returns an error when
	// it does not know id.
	ExternalPSK func(id []byte) ([]byte, error)
}

// Defaults of Config. Messages in a group usually arrive in order or
// nearly so: 32 kept keys per sender ride out real reordering, and 1024
// generations ahead survive a burst of lost messages while bounding the
// hashing a forged generation can cause (see package keyschedule). Two
// past epochs let messages sent just before a commit be read after it,
// as commits race application data on any network.
const (
	DefaultMaxGenerationsBehind = keyschedule.DefaultMaxBehind
	DefaultMaxGenerationsAhead  = keyschedule.DefaultMaxAhead
	DefaultPastEpochs           = 2
	DefaultPadTo                = 32
)

// config is a validated Config with its defaults filled in.
type config struct {
	Config
	window     keyschedule.Window
	pastEpochs int
}

func (c *Config) validate() (*config, error) {
	if c.Rand == nil {
		return nil, errorf(ErrInvalidConfig, "Rand is nil")
	}
	if c.Now == nil {
		return nil, errorf(ErrInvalidConfig, "Now is nil")
	}
	if c.PadTo < 0 {
		return nil, errorf(ErrInvalidConfig, "PadTo is negative")
	}
	if c.MaxSkippedKeys < 0 || c.MaxSkippedKeys > math.MaxUint32 {
		return nil, errorf(ErrInvalidConfig, "MaxSkippedKeys %d is out of range", c.MaxSkippedKeys)
	}
	out := &config{Config: *c}
	out.window.MaxBehind = windowValue(c.MaxGenerationsBehind, DefaultMaxGenerationsBehind)
	out.window.MaxAhead = windowValue(c.MaxGenerationsAhead, DefaultMaxGenerationsAhead)
	out.window.MaxSkipped = uint32(c.MaxSkippedKeys)
	out.pastEpochs = c.PastEpochs
	switch {
	case c.PastEpochs == 0:
		out.pastEpochs = DefaultPastEpochs
	case c.PastEpochs < 0:
		out.pastEpochs = 0
	}
	if out.PadTo == 0 {
		out.PadTo = DefaultPadTo
	}
	return out, nil
}

func windowValue(v int, def uint32) uint32 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	case v > 1<<30:
		return 1 << 30
	}
	return uint32(v)
}

func (c *config) now() time.Time { return c.Now() }
