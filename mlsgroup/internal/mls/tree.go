package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// certificate is §5.3's Certificate: one opaque cert_data<V>.
type certificate []byte

func (c *certificate) Marshal(b *cryptobyte.Builder) { wire.AddOpaque(b, *c) }

func (c *certificate) Unmarshal(s *cryptobyte.String) error {
	return readOpaque(s, (*[]byte)(c), "Certificate.cert_data")
}

// Marshal encodes a Credential (§5.3).
func (x *Credential) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.Type))
	switch x.Type {
	case CredentialBasic:
		wire.AddOpaque(b, x.Identity)
	case CredentialX509:
		wire.AddVector(b, func(b *cryptobyte.Builder) {
			for _, c := range x.Certificates {
				wire.AddOpaque(b, c)
			}
		})
	default:
		invalidf(b, "Credential.credential_type %d", x.Type)
	}
}

// Unmarshal decodes a Credential. Other credential types have no length
// prefix to skip them by, so they are malformed here.
func (x *Credential) Unmarshal(s *cryptobyte.String) error {
	var t uint16
	if !s.ReadUint16(&t) {
		return wire.Errorf("Credential.credential_type")
	}
	*x = Credential{Type: CredentialType(t)}
	switch x.Type {
	case CredentialBasic:
		return readOpaque(s, &x.Identity, "Credential.identity")
	case CredentialX509:
		var certs []certificate
		if err := readVector(s, &certs, "Credential.certificates"); err != nil {
			return err
		}
		if certs != nil {
			x.Certificates = make([][]byte, len(certs))
			for i, c := range certs {
				x.Certificates[i] = c
			}
		}
		return nil
	default:
		return wire.Errorf("Credential.credential_type %d", t)
	}
}

// Marshal encodes Capabilities (§7.2).
func (x *Capabilities) Marshal(b *cryptobyte.Builder) {
	addUint16s(b, x.Versions)
	addUint16s(b, x.CipherSuites)
	addUint16s(b, x.Extensions)
	addUint16s(b, x.Proposals)
	addUint16s(b, x.Credentials)
}

// Unmarshal decodes Capabilities. Unknown values are kept: advertising
// values others may not know (including GREASE, §13.5) is the point.
func (x *Capabilities) Unmarshal(s *cryptobyte.String) error {
	if err := readUint16s(s, &x.Versions, "Capabilities.versions"); err != nil {
		return err
	}
	if err := readUint16s(s, &x.CipherSuites, "Capabilities.cipher_suites"); err != nil {
		return err
	}
	if err := readUint16s(s, &x.Extensions, "Capabilities.extensions"); err != nil {
		return err
	}
	if err := readUint16s(s, &x.Proposals, "Capabilities.proposals"); err != nil {
		return err
	}
	return readUint16s(s, &x.Credentials, "Capabilities.credentials")
}

// Marshal encodes a Lifetime (§7.2).
func (x *Lifetime) Marshal(b *cryptobyte.Builder) {
	b.AddUint64(x.NotBefore)
	b.AddUint64(x.NotAfter)
}

// Unmarshal decodes a Lifetime.
func (x *Lifetime) Unmarshal(s *cryptobyte.String) error {
	if !s.ReadUint64(&x.NotBefore) || !s.ReadUint64(&x.NotAfter) {
		return wire.Errorf("Lifetime")
	}
	return nil
}

// Marshal encodes a LeafNode (§7.2).
func (x *LeafNode) Marshal(b *cryptobyte.Builder) {
	x.marshalContent(b)
	wire.AddOpaque(b, x.Signature)
}

// marshalContent encodes the fields LeafNode and LeafNodeTBS share: all but
// the signature.
func (x *LeafNode) marshalContent(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.EncryptionKey)
	wire.AddOpaque(b, x.SignatureKey)
	x.Credential.Marshal(b)
	x.Capabilities.Marshal(b)
	b.AddUint8(uint8(x.Source))
	switch x.Source {
	case LeafNodeSourceKeyPackage:
		x.Lifetime.Marshal(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		wire.AddOpaque(b, x.ParentHash)
	default:
		invalidf(b, "LeafNode.leaf_node_source %d", x.Source)
	}
	addVector(b, x.Extensions)
}

// Unmarshal decodes a LeafNode. Lifetime and ParentHash are left zero
// unless the source carries them.
func (x *LeafNode) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.EncryptionKey, "LeafNode.encryption_key"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.SignatureKey, "LeafNode.signature_key"); err != nil {
		return err
	}
	if err := x.Credential.Unmarshal(s); err != nil {
		return err
	}
	if err := x.Capabilities.Unmarshal(s); err != nil {
		return err
	}
	var src uint8
	if !s.ReadUint8(&src) {
		return wire.Errorf("LeafNode.leaf_node_source")
	}
	x.Source = LeafNodeSource(src)
	x.Lifetime, x.ParentHash = Lifetime{}, nil
	switch x.Source {
	case LeafNodeSourceKeyPackage:
		if err := x.Lifetime.Unmarshal(s); err != nil {
			return err
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if err := readOpaque(s, &x.ParentHash, "LeafNode.parent_hash"); err != nil {
			return err
		}
	default:
		return wire.Errorf("LeafNode.leaf_node_source %d", src)
	}
	if err := readExtensions(s, &x.Extensions, "LeafNode.extensions"); err != nil {
		return err
	}
	return readOpaque(s, &x.Signature, "LeafNode.signature")
}

// MarshalTBS returns the LeafNodeTBS of §7.2, the content of the leaf's
// signature. groupID and leafIndex bind update and commit leaves to their
// place in a group; they are ignored for key package leaves, which are
// signed before they have one.
func (x *LeafNode) MarshalTBS(groupID []byte, leafIndex uint32) ([]byte, error) {
	return marshal(func(b *cryptobyte.Builder) {
		x.marshalContent(b)
		switch x.Source {
		case LeafNodeSourceUpdate, LeafNodeSourceCommit:
			wire.AddOpaque(b, groupID)
			b.AddUint32(leafIndex)
		}
	})
}

// Marshal encodes a ParentNode (§7.1).
func (x *ParentNode) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.EncryptionKey)
	wire.AddOpaque(b, x.ParentHash)
	addUint32s(b, x.UnmergedLeaves)
}

// Unmarshal decodes a ParentNode.
func (x *ParentNode) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.EncryptionKey, "ParentNode.encryption_key"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.ParentHash, "ParentNode.parent_hash"); err != nil {
		return err
	}
	return readUint32s(s, &x.UnmergedLeaves, "ParentNode.unmerged_leaves")
}

// Marshal encodes a Node (§7.8).
func (x *Node) Marshal(b *cryptobyte.Builder) {
	switch {
	case x.Leaf != nil && x.Parent == nil:
		b.AddUint8(uint8(NodeTypeLeaf))
		x.Leaf.Marshal(b)
	case x.Parent != nil && x.Leaf == nil:
		b.AddUint8(uint8(NodeTypeParent))
		x.Parent.Marshal(b)
	default:
		invalidf(b, "Node: exactly one of Leaf and Parent must be set")
	}
}

// Unmarshal decodes a Node.
func (x *Node) Unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) {
		return wire.Errorf("Node.node_type")
	}
	x.Leaf, x.Parent = nil, nil
	switch NodeType(t) {
	case NodeTypeLeaf:
		x.Leaf = new(LeafNode)
		return x.Leaf.Unmarshal(s)
	case NodeTypeParent:
		x.Parent = new(ParentNode)
		return x.Parent.Unmarshal(s)
	default:
		return wire.Errorf("Node.node_type %d", t)
	}
}

// Marshal encodes a ratchet tree (§12.4.3.3). Trailing blank nodes are left
// out, as the RFC requires, so a tree padded to its full width of
// 2^(d+1)-1 nodes can be passed as is. An empty tree or a node of the wrong
// kind for its index is an error.
func (x *RatchetTree) Marshal(b *cryptobyte.Builder) {
	nodes := *x
	for len(nodes) > 0 && nodes[len(nodes)-1] == nil {
		nodes = nodes[:len(nodes)-1]
	}
	if len(nodes) == 0 {
		invalidf(b, "RatchetTree: no non-blank node")
		return
	}
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for i, n := range nodes {
			if n == nil {
				b.AddUint8(0)
				continue
			}
			if (n.Leaf != nil) != (i%2 == 0) {
				invalidf(b, "RatchetTree: node %d is of the wrong type for its index", i)
				return
			}
			b.AddUint8(1)
			n.Marshal(b)
		}
	})
}

// Unmarshal decodes a ratchet tree as sent: it is not padded out to a full
// tree. The encoding must end in a non-blank node (§12.4.3.3), and leaves
// must sit at even indices and parents at odd ones (Appendix C), since a
// node of the wrong kind has no meaning in the array layout.
func (x *RatchetTree) Unmarshal(s *cryptobyte.String) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) {
		return wire.Errorf("RatchetTree")
	}
	var nodes RatchetTree
	for !body.Empty() {
		var present bool
		if err := readOptional(&body, &present, "RatchetTree.node"); err != nil {
			return err
		}
		if !present {
			nodes = append(nodes, nil)
			continue
		}
		n := new(Node)
		if err := n.Unmarshal(&body); err != nil {
			return err
		}
		if i := len(nodes); (n.Leaf != nil) != (i%2 == 0) {
			return wire.Errorf("RatchetTree: node %d is of the wrong type for its index", i)
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return wire.Errorf("RatchetTree: empty")
	}
	if nodes[len(nodes)-1] == nil {
		return wire.Errorf("RatchetTree: last node is blank")
	}
	*x = nodes
	return nil
}

// Marshal encodes an HPKECiphertext (§7.6).
func (x *HPKECiphertext) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.KEMOutput)
	wire.AddOpaque(b, x.Ciphertext)
}

// Unmarshal decodes an HPKECiphertext.
func (x *HPKECiphertext) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.KEMOutput, "HPKECiphertext.kem_output"); err != nil {
		return err
	}
	return readOpaque(s, &x.Ciphertext, "HPKECiphertext.ciphertext")
}

// Marshal encodes an UpdatePathNode (§7.6).
func (x *UpdatePathNode) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.EncryptionKey)
	addVector(b, x.EncryptedPathSecret)
}

// Unmarshal decodes an UpdatePathNode.
func (x *UpdatePathNode) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.EncryptionKey, "UpdatePathNode.encryption_key"); err != nil {
		return err
	}
	return readVector(s, &x.EncryptedPathSecret, "UpdatePathNode.encrypted_path_secret")
}

// Marshal encodes an UpdatePath (§7.6).
func (x *UpdatePath) Marshal(b *cryptobyte.Builder) {
	x.LeafNode.Marshal(b)
	addVector(b, x.Nodes)
}

// Unmarshal decodes an UpdatePath.
func (x *UpdatePath) Unmarshal(s *cryptobyte.String) error {
	if err := x.LeafNode.Unmarshal(s); err != nil {
		return err
	}
	return readVector(s, &x.Nodes, "UpdatePath.nodes")
}
