package keyschedule

import (
	"bytes"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
)

// Clone returns a copy of t that shares no key material with it: keys
// consumed from one, and the secrets deleted with them, stay in the other.
// A group state is a value, and decrypting a message yields a new state
// while the old one is kept until the new one is persisted; copying the
// tree is how the new state gets a ratchet of its own. The copy costs one
// pass over the node slice and a copy of each secret still held, which the
// deletion schedule keeps few.
func (t *SecretTree) Clone() *SecretTree {
	c := &SecretTree{suite: t.suite, nLeaves: t.nLeaves, window: t.window}
	if t.nodes != nil {
		c.nodes = make([]secret.Secret, len(t.nodes))
		for i := range t.nodes {
			if !t.nodes[i].IsZero() {
				c.nodes[i] = cloneSecret(t.nodes[i])
			}
		}
	}
	c.leaves = make([]*[2]ratchet, len(t.leaves))
	for i, l := range t.leaves {
		if l != nil {
			c.leaves[i] = &[2]ratchet{l[Handshake].clone(), l[Application].clone()}
		}
	}
	return c
}

func (r *ratchet) clone() ratchet {
	c := ratchet{next: r.next, secret: cloneSecret(r.secret)}
	if len(r.skipped) > 0 {
		c.skipped = make([]skippedKey, len(r.skipped))
		for i, k := range r.skipped {
			c.skipped[i] = skippedKey{generation: k.generation, key: cloneSecret(k.key), nonce: cloneSecret(k.nonce)}
		}
	}
	return c
}

func cloneSecret(s secret.Secret) secret.Secret {
	if s.IsZero() {
		return secret.Secret{}
	}
	return secret.New(bytes.Clone(s.Bytes()))
}
