package keyschedule

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync/atomic"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// RatchetKind selects one of a leaf's two hash ratchets (§9).
type RatchetKind int

const (
	// Handshake is the ratchet for Proposals and Commits.
	Handshake RatchetKind = iota
	// Application is the ratchet for application data.
	Application
)

func (k RatchetKind) String() string {
	switch k {
	case Handshake:
		return "handshake"
	case Application:
		return "application"
	}
	return fmt.Sprintf("RatchetKind(%d)", int(k))
}

// Default out-of-order window of a SecretTree.
//
// §9.2 lets a receiver keep unconsumed keys "for some reasonable amount of
// time to handle out-of-order message delivery". Messages usually arrive
// nearly in order, so a few dozen keys behind the newest one covers real
// reordering while bounding the keys that sit in memory per sender (and the
// forward secrecy lost by keeping them). Ratcheting forward costs one HKDF
// expansion per skipped generation, decided by a generation an attacker who
// knows the sender data key may choose, so the forward bound caps that work
// at about a millisecond while still riding out a burst of a thousand lost
// messages.
const (
	DefaultMaxBehind = 32
	DefaultMaxAhead  = 1024
)

// Window is how far out of order a SecretTree accepts generations.
type Window struct {
	// MaxBehind is how many generations older than the newest one consumed
	// keep their keys, if unconsumed. 0 accepts only in-order delivery.
	MaxBehind uint32
	// MaxAhead is how many generations past the next expected one a
	// receiver will skip to.
	MaxAhead uint32
	// MaxSkipped caps the kept keys of skipped generations over all the
	// tree's ratchets; 0 means no cap beyond MaxBehind per ratchet. A wide
	// MaxBehind rides out long gaps, but every sender could then make a
	// receiver keep that many keys; the cap bounds the sum.
	MaxSkipped uint32
}

// SecretTree is the secret tree of §9 for one epoch, and the hash ratchets
// hanging from its leaves (§9.1). It derives secrets lazily and deletes them
// as §9.2 asks: a tree node's secret as soon as both children are derived,
// a leaf's once its two ratchets are, a ratchet secret once the next one
// is, a key and nonce once they are handed out. Keys of skipped generations
// are kept only within the Window.
type SecretTree struct {
	suite   *suite.Suite
	nLeaves uint32
	window  Window
	// nodes holds the tree node secrets not yet derived from (zero if not
	// yet derived or already deleted), by node index.
	nodes []secret.Secret
	// leaves holds each leaf's ratchets once the leaf secret is consumed.
	leaves []*[2]ratchet

	// Copy-on-write bookkeeping (see secrettree_clone.go): version is the
	// tree's, read and written atomically because Clone writes it on the
	// tree it copies; the others stamp the parts the tree owns.
	version       uint64
	nodesVersion  uint64
	leavesVersion uint64
	leafVersions  []uint64 // by leaf, for the ratchets in leaves
}

// ratchet is one hash ratchet of §9.1.
type ratchet struct {
	// next is the generation that secret yields the key and nonce of; the
	// ratchet is exhausted when it reaches math.MaxUint32, which keeps the
	// generation arithmetic free of overflow at the price of one generation
	// out of four billion.
	next   uint32
	secret secret.Secret
	// skipped holds the unconsumed keys of generations below next, in
	// ascending order.
	skipped []skippedKey
}

type skippedKey struct {
	generation uint32
	key, nonce secret.Secret
}

// NewSecretTree starts the secret tree of an epoch with nLeaves leaves from
// its encryption_secret, which it copies. RFC 9420 trees always have a
// power-of-two number of leaves; any other nLeaves is padded up to one, and
// leaves at nLeaves and beyond are refused. nLeaves is at most 2^31, the
// largest tree whose node indices fit a uint32. The window starts at
// DefaultMaxBehind and DefaultMaxAhead.
func NewSecretTree(s *suite.Suite, encryptionSecret []byte, nLeaves uint32) *SecretTree {
	t := &SecretTree{
		suite:   s,
		nLeaves: nLeaves,
		window:  Window{MaxBehind: DefaultMaxBehind, MaxAhead: DefaultMaxAhead},
		leaves:  make([]*[2]ratchet, nLeaves),
	}
	if nLeaves > 0 {
		t.nodes = make([]secret.Secret, treemath.NodeWidth(t.paddedLeaves()))
		t.nodes[t.root()] = secret.New(bytes.Clone(encryptionSecret))
	}
	t.own()
	return t
}

// SetWindow changes the out-of-order window, dropping kept keys that fall
// outside the new one.
func (t *SecretTree) SetWindow(w Window) {
	t.window = w
	for i, l := range t.leaves {
		if l != nil {
			l = t.ownLeaf(uint32(i))
			l[Handshake].trim(w.MaxBehind)
			l[Application].trim(w.MaxBehind)
		}
	}
	t.capSkipped()
}

// Skipped is how many keys of skipped generations the tree keeps.
func (t *SecretTree) Skipped() int {
	n := 0
	for _, l := range t.leaves {
		if l != nil {
			n += len(l[Handshake].skipped) + len(l[Application].skipped)
		}
	}
	return n
}

// capSkipped holds the kept keys to Window.MaxSkipped by dropping the
// oldest generations of the ratchets that keep the most, so that one
// sender's long gap costs the others' few nothing.
func (t *SecretTree) capSkipped() {
	limit := int(t.window.MaxSkipped)
	if limit == 0 {
		return
	}
	total := t.Skipped()
	for total > limit {
		// The largest ratchet shrinks to the size of the next largest
		// (or by the excess, if that is less), then the loop goes on.
		var (
			leaf        = -1
			kind        RatchetKind
			most, after int
		)
		for i, l := range t.leaves {
			if l == nil {
				continue
			}
			for _, k := range []RatchetKind{Handshake, Application} {
				switch n := len(l[k].skipped); {
				case n > most:
					leaf, kind, after, most = i, k, most, n
				case n > after:
					after = n
				}
			}
		}
		drop := min(total-limit, max(most-after, 1))
		r := &t.ownLeaf(uint32(leaf))[kind]
		for i := range drop {
			r.skipped[i].key.Wipe()
			r.skipped[i].nonce.Wipe()
		}
		r.skipped = slices.Delete(r.skipped, 0, drop)
		total -= drop
	}
}

// SetMaxAhead changes only the window's MaxAhead, which drops nothing.
func (t *SecretTree) SetMaxAhead(n uint32) { t.window.MaxAhead = n }

// Window is the current out-of-order window.
func (t *SecretTree) Window() Window { return t.window }

// Next is the sender's side: it returns the key and nonce of the next
// generation of leaf's ratchet of kind k, and consumes them.
func (t *SecretTree) Next(leaf treemath.LeafIndex, k RatchetKind) (generation uint32, key, nonce secret.Secret, err error) {
	r, err := t.ratchet(leaf, k)
	if err != nil {
		return 0, secret.Secret{}, secret.Secret{}, err
	}
	if r.next == math.MaxUint32 {
		return 0, secret.Secret{}, secret.Secret{}, fmt.Errorf("%w: leaf %d %v", ErrRatchetExhausted, leaf, k)
	}
	generation = r.next
	key, nonce = r.step(t.suite, true)
	r.trim(t.window.MaxBehind)
	return generation, key, nonce, nil
}

// Get is the receiver's side: it returns the key and nonce of the given
// generation of leaf's ratchet of kind k, and consumes them, keeping the
// keys of generations it skips over within the window. A generation already
// consumed, or skipped so long ago that its key fell out of the window,
// fails with ErrReplay; one more than Window.MaxAhead past the next
// expected generation fails with ErrGenerationTooFar and leaves the ratchet
// as it was.
//
// Get deletes the key before the caller has tried it, so a message that
// then fails to decrypt still uses up its generation.
func (t *SecretTree) Get(leaf treemath.LeafIndex, k RatchetKind, generation uint32) (key, nonce secret.Secret, err error) {
	r, err := t.ratchet(leaf, k)
	if err != nil {
		return secret.Secret{}, secret.Secret{}, err
	}
	if generation < r.next {
		i, ok := slices.BinarySearchFunc(r.skipped, generation, func(s skippedKey, g uint32) int {
			return cmp.Compare(s.generation, g)
		})
		if !ok {
			return secret.Secret{}, secret.Secret{}, fmt.Errorf("%w: leaf %d %v generation %d", ErrReplay, leaf, k, generation)
		}
		sk := r.skipped[i]
		r.skipped = slices.Delete(r.skipped, i, i+1)
		return sk.key, sk.nonce, nil
	}
	if generation == math.MaxUint32 {
		return secret.Secret{}, secret.Secret{}, fmt.Errorf("%w: leaf %d %v generation %d", ErrRatchetExhausted, leaf, k, generation)
	}
	if generation-r.next > t.window.MaxAhead {
		return secret.Secret{}, secret.Secret{}, fmt.Errorf("%w: leaf %d %v generation %d, expected at most %d",
			ErrGenerationTooFar, leaf, k, generation, uint64(r.next)+uint64(t.window.MaxAhead))
	}
	kept := false
	for r.next < generation {
		// Derive keys only for skipped generations the window will keep;
		// the others are stepped over.
		keep := generation-r.next <= t.window.MaxBehind
		g := r.next
		sKey, sNonce := r.step(t.suite, keep)
		if keep {
			r.skipped = append(r.skipped, skippedKey{generation: g, key: sKey, nonce: sNonce})
			kept = true
		}
	}
	key, nonce = r.step(t.suite, true)
	r.trim(t.window.MaxBehind)
	if kept {
		t.capSkipped() // a walk over every leaf, so only when keys were added
	}
	return key, nonce, nil
}

// Wipe deletes every secret the tree holds. Secrets it still shares with
// a clone are dropped, not wiped: the clone holds them too.
func (t *SecretTree) Wipe() {
	v := atomic.LoadUint64(&t.version)
	if t.nodesVersion == v {
		for i := range t.nodes {
			t.nodes[i].Wipe()
		}
	} else if t.nodes != nil {
		t.nodes = make([]secret.Secret, len(t.nodes))
		t.nodesVersion = v
	}
	t.ownLeaves()
	for i, l := range t.leaves {
		switch {
		case l == nil:
		case t.leafVersions[i] == v:
			l[Handshake].wipe()
			l[Application].wipe()
		default:
			t.leaves[i] = &[2]ratchet{{next: l[Handshake].next}, {next: l[Application].next}}
			t.leafVersions[i] = v
		}
	}
}

// ratchet returns leaf's ratchet of kind k, deriving the leaf's ratchets
// (and the tree nodes above it) on first use.
func (t *SecretTree) ratchet(leaf treemath.LeafIndex, k RatchetKind) (*ratchet, error) {
	if uint32(leaf) >= t.nLeaves {
		return nil, fmt.Errorf("%w: leaf %d of %d", ErrLeafOutOfRange, leaf, t.nLeaves)
	}
	if k != Handshake && k != Application {
		return nil, fmt.Errorf("%w: %v", ErrRatchetKind, k)
	}
	if t.leaves[leaf] == nil {
		if err := t.deriveLeaf(leaf); err != nil {
			return nil, err
		}
	}
	// Every caller moves the ratchet on.
	return &t.ownLeaf(uint32(leaf))[k], nil
}

// deriveLeaf walks down from the lowest ancestor of leaf that still holds a
// secret, deriving both children of each node on the way and deleting the
// node (§9, §9.2), then turns the leaf secret into the two ratchets.
func (t *SecretTree) deriveLeaf(leaf treemath.LeafIndex) error {
	s := t.suite
	target := leaf.Node()
	root := t.root()
	x := target
	for t.nodes[x].IsZero() {
		if x == root {
			// Every path keeps a secret until its leaf's ratchets exist,
			// and UnmarshalBinary checks that; this is a broken invariant.
			return fmt.Errorf("%w: no secret left above leaf %d", ErrMalformedState, leaf)
		}
		x = treemath.Parent(x, t.paddedLeaves())
	}
	t.ownNodes()
	for x != target {
		left, right := treemath.Left(x), treemath.Right(x)
		parent := t.nodes[x].Bytes()
		t.setNode(left, s.ExpandWithLabel(parent, "tree", []byte("left"), s.Nh()))
		t.setNode(right, s.ExpandWithLabel(parent, "tree", []byte("right"), s.Nh()))
		t.nodes[x].Wipe()
		if treemath.IsInSubtree(target, left) {
			x = left
		} else {
			x = right
		}
	}
	leafSecret := t.nodes[target].Bytes()
	t.setLeaf(uint32(leaf), &[2]ratchet{
		Handshake:   {secret: secret.New(s.ExpandWithLabel(leafSecret, "handshake", nil, s.Nh()))},
		Application: {secret: secret.New(s.ExpandWithLabel(leafSecret, "application", nil, s.Nh()))},
	})
	t.nodes[target].Wipe()
	return nil
}

// setNode stores a derived node secret, unless the node covers only the
// padding leaves of a tree whose nLeaves is not a power of two: nothing
// will ever read it.
func (t *SecretTree) setNode(x treemath.NodeIndex, v []byte) {
	if firstLeaf(x) >= t.nLeaves {
		clear(v)
		return
	}
	t.nodes[x] = secret.New(v)
}

// firstLeaf is the leftmost leaf below x.
func firstLeaf(x treemath.NodeIndex) uint32 {
	return (uint32(x) - (1<<treemath.Level(x) - 1)) / 2
}

// paddedLeaves is nLeaves rounded up to a power of two.
func (t *SecretTree) paddedLeaves() uint32 {
	if t.nLeaves <= 1 {
		return t.nLeaves
	}
	return 1 << bits.Len32(t.nLeaves-1)
}

func (t *SecretTree) root() treemath.NodeIndex { return treemath.Root(t.paddedLeaves()) }

// step returns the key and nonce of generation r.next (if wanted) and moves
// the ratchet one generation on, deleting the secret it came from (§9.1).
func (r *ratchet) step(s *suite.Suite, wantKey bool) (key, nonce secret.Secret) {
	g, cur := r.next, r.secret.Bytes()
	if wantKey {
		key = secret.New(s.DeriveTreeSecret(cur, "key", g, s.AEADKeySize()))
		nonce = secret.New(s.DeriveTreeSecret(cur, "nonce", g, s.AEADNonceSize()))
	}
	r.next++
	var next secret.Secret
	if r.next != math.MaxUint32 {
		next = secret.New(s.DeriveTreeSecret(cur, "secret", g, s.Nh()))
	}
	r.secret.Wipe()
	r.secret = next
	return key, nonce
}

// trim deletes kept keys more than maxBehind generations older than the
// newest generation the ratchet has reached.
func (r *ratchet) trim(maxBehind uint32) {
	if r.next == 0 {
		return
	}
	newest := r.next - 1
	drop := 0
	for drop < len(r.skipped) && newest-r.skipped[drop].generation > maxBehind {
		r.skipped[drop].key.Wipe()
		r.skipped[drop].nonce.Wipe()
		drop++
	}
	r.skipped = slices.Delete(r.skipped, 0, drop)
}

func (r *ratchet) wipe() {
	r.secret.Wipe()
	for i := range r.skipped {
		r.skipped[i].key.Wipe()
		r.skipped[i].nonce.Wipe()
	}
	r.skipped = nil
}

// SenderDataKeyNonce derives the AEAD key and nonce that protect a
// PrivateMessage's sender data (§6.3.2), from sender_data_secret and the
// first KDF.Nh bytes of the content ciphertext (all of it if shorter).
func SenderDataKeyNonce(s *suite.Suite, senderDataSecret, ciphertext []byte) (key, nonce secret.Secret) {
	sample := ciphertext[:min(len(ciphertext), s.Nh())]
	key = secret.New(s.ExpandWithLabel(senderDataSecret, "key", sample, s.AEADKeySize()))
	nonce = secret.New(s.ExpandWithLabel(senderDataSecret, "nonce", sample, s.AEADNonceSize()))
	return key, nonce
}
