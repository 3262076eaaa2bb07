package keyschedule

import (
	"fmt"
	"math"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
	"golang.org/x/crypto/cryptobyte"
)

// secretTreeStateVersion leads a SecretTree's persisted form.
const secretTreeStateVersion = 1

// MarshalBinary persists exactly what the tree retains under §9.2, in the
// TLS presentation language:
//
//	uint8 version = 1;
//	uint16 cipher_suite;
//	uint32 n_leaves;
//	uint32 max_behind; uint32 max_ahead;
//	struct { uint32 node; opaque secret<V>; } nodes<V>;          /* ascending */
//	struct { uint32 leaf; Ratchet handshake; Ratchet application; } leaves<V>;
//	struct {
//	    uint32 next;                /* 2^32-1: exhausted, secret empty */
//	    opaque secret<V>;
//	    struct { uint32 generation; opaque key<V>; opaque nonce<V>; } kept<V>;
//	} Ratchet;
func (t *SecretTree) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(secretTreeStateVersion)
	b.AddUint16(uint16(t.suite.ID()))
	b.AddUint32(t.nLeaves)
	b.AddUint32(t.window.MaxBehind)
	b.AddUint32(t.window.MaxAhead)
	wire.AddVector(&b, func(b *cryptobyte.Builder) {
		for x, s := range t.nodes {
			if !s.IsZero() {
				b.AddUint32(uint32(x))
				wire.AddOpaque(b, s.Bytes())
			}
		}
	})
	wire.AddVector(&b, func(b *cryptobyte.Builder) {
		for leaf, l := range t.leaves {
			if l == nil {
				continue
			}
			b.AddUint32(uint32(leaf))
			for _, r := range l {
				b.AddUint32(r.next)
				wire.AddOpaque(b, r.secret.Bytes())
				wire.AddVector(b, func(b *cryptobyte.Builder) {
					for _, k := range r.skipped {
						b.AddUint32(k.generation)
						wire.AddOpaque(b, k.key.Bytes())
						wire.AddOpaque(b, k.nonce.Bytes())
					}
				})
			}
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: secret tree state: %v", ErrEncoding, err)
	}
	return out, nil
}

// UnmarshalBinary restores a tree persisted by MarshalBinary. It accepts
// only states the tree could have reached, so a corrupted state cannot
// resurrect deleted secrets or strand a leaf without keys.
func (t *SecretTree) UnmarshalBinary(data []byte) error {
	in := cryptobyte.String(data)
	var (
		version uint8
		id      uint16
		out     SecretTree
	)
	if !in.ReadUint8(&version) || version != secretTreeStateVersion ||
		!in.ReadUint16(&id) || !in.ReadUint32(&out.nLeaves) ||
		!in.ReadUint32(&out.window.MaxBehind) || !in.ReadUint32(&out.window.MaxAhead) {
		return fmt.Errorf("%w: secret tree header", ErrMalformedState)
	}
	s, err := suite.Lookup(suite.ID(id))
	if err != nil {
		return fmt.Errorf("%w: secret tree: %w", ErrMalformedState, err)
	}
	if out.nLeaves > 1<<31 {
		return fmt.Errorf("%w: secret tree of %d leaves", ErrMalformedState, out.nLeaves)
	}
	out.suite = s
	out.leaves = make([]*[2]ratchet, out.nLeaves)
	if out.nLeaves > 0 {
		out.nodes = make([]secret.Secret, treemath.NodeWidth(out.paddedLeaves()))
	}
	if err := out.readNodes(&in); err != nil {
		return err
	}
	if err := out.readLeaves(&in); err != nil {
		return err
	}
	if !in.Empty() {
		return fmt.Errorf("%w: secret tree state has trailing bytes", ErrMalformedState)
	}
	if err := out.checkCoverage(); err != nil {
		return err
	}
	out.own()
	*t = out
	return nil
}

func (t *SecretTree) readNodes(in *cryptobyte.String) error {
	var body cryptobyte.String
	if !wire.ReadVector(in, &body) {
		return fmt.Errorf("%w: secret tree nodes", ErrMalformedState)
	}
	prev := int64(-1)
	for !body.Empty() {
		var x uint32
		var v []byte
		if !body.ReadUint32(&x) || !wire.ReadOpaqueCopy(&body, &v) {
			return fmt.Errorf("%w: secret tree node", ErrMalformedState)
		}
		if int64(x) <= prev || x >= uint32(len(t.nodes)) || len(v) != t.suite.Nh() {
			return fmt.Errorf("%w: secret tree node %d", ErrMalformedState, x)
		}
		prev = int64(x)
		t.nodes[x] = secret.New(v)
	}
	return nil
}

func (t *SecretTree) readLeaves(in *cryptobyte.String) error {
	var body cryptobyte.String
	if !wire.ReadVector(in, &body) {
		return fmt.Errorf("%w: secret tree leaves", ErrMalformedState)
	}
	prev := int64(-1)
	for !body.Empty() {
		var leaf uint32
		if !body.ReadUint32(&leaf) || int64(leaf) <= prev || leaf >= t.nLeaves {
			return fmt.Errorf("%w: secret tree leaf", ErrMalformedState)
		}
		prev = int64(leaf)
		l := new([2]ratchet)
		for k := range l {
			if err := t.readRatchet(&body, &l[k]); err != nil {
				return fmt.Errorf("%w (leaf %d %v)", err, leaf, RatchetKind(k))
			}
		}
		t.leaves[leaf] = l
	}
	return nil
}

func (t *SecretTree) readRatchet(in *cryptobyte.String, r *ratchet) error {
	s := t.suite
	var v []byte
	var kept cryptobyte.String
	if !in.ReadUint32(&r.next) || !wire.ReadOpaqueCopy(in, &v) || !wire.ReadVector(in, &kept) {
		return fmt.Errorf("%w: ratchet", ErrMalformedState)
	}
	exhausted := r.next == math.MaxUint32
	if (exhausted && len(v) != 0) || (!exhausted && len(v) != s.Nh()) {
		return fmt.Errorf("%w: ratchet secret", ErrMalformedState)
	}
	r.secret = secret.New(v)
	prev := int64(-1)
	for !kept.Empty() {
		var k skippedKey
		var key, nonce []byte
		if !kept.ReadUint32(&k.generation) || !wire.ReadOpaqueCopy(&kept, &key) || !wire.ReadOpaqueCopy(&kept, &nonce) {
			return fmt.Errorf("%w: kept key", ErrMalformedState)
		}
		// Kept keys lie below next, ascending, within the window, as trim
		// leaves them.
		if int64(k.generation) <= prev || k.generation >= r.next ||
			r.next-1-k.generation > t.window.MaxBehind ||
			len(key) != s.AEADKeySize() || len(nonce) != s.AEADNonceSize() {
			return fmt.Errorf("%w: kept key of generation %d", ErrMalformedState, k.generation)
		}
		prev = int64(k.generation)
		k.key, k.nonce = secret.New(key), secret.New(nonce)
		r.skipped = append(r.skipped, k)
	}
	return nil
}

// checkCoverage checks the invariant deriveLeaf relies on: along the path
// from each leaf to the root, exactly one node holds a secret if the leaf's
// ratchets are not yet derived, and none does once they are. It also
// rejects secrets held for padding leaves only, which the tree never keeps.
func (t *SecretTree) checkCoverage() error {
	if t.nLeaves == 0 {
		return nil
	}
	root, padded := t.root(), t.paddedLeaves()
	for x := range t.nodes {
		if !t.nodes[x].IsZero() && firstLeaf(treemath.NodeIndex(x)) >= t.nLeaves {
			return fmt.Errorf("%w: secret held for padding node %d", ErrMalformedState, x)
		}
	}
	for leaf := range t.nLeaves {
		held := 0
		for x := treemath.LeafIndex(leaf).Node(); ; x = treemath.Parent(x, padded) {
			if !t.nodes[x].IsZero() {
				held++
			}
			if x == root {
				break
			}
		}
		want := 1
		if t.leaves[leaf] != nil {
			want = 0
		}
		if held != want {
			return fmt.Errorf("%w: leaf %d has %d secrets on its path, want %d", ErrMalformedState, leaf, held, want)
		}
	}
	return nil
}
