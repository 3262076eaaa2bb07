// Package keypkgdir is the directory of MLS KeyPackages in the DHT: the
// signed record a peer publishes under /spacepanda-kp/<peer ID>, the
// validator every DHT node runs on it, the owner's Publisher that keeps the
// record fresh, and Fetch, which gives an inviter one of a peer's
// KeyPackages or says clearly why it cannot.
//
// # Identity
//
// The identity of a spacepanda basic credential (RFC 9420 §5.3) binds the
// leaf's MLS signature key to a peer: the peer's libp2p key, the key its
// peer ID is derived from, signs the MLS signature key. In TLS presentation
// language:
//
//	struct {
//	    uint8  version = 1;
//	    opaque public_key<0..2^16-1>;   // libp2p protobuf encoding
//	    opaque signature<0..2^16-1>;    // over "spacepanda credential binding v1\0" || mls_signature_key
//	} Identity;
//
// NewIdentity makes one; PeerOf checks one against a leaf's signature key
// and returns the peer it names. Because the binding travels in the leaf,
// every member, not only an inviter who fetched the peer's record, can
// check it: a node sets CredentialValidator as its mlsgroup
// ValidationOptions.Credentials, and mlsgroup applies it to every leaf it
// is asked to trust (a KeyPackage to add, an Update or commit leaf, every
// leaf of a tree it joins, an external commit's leaf).
//
// Decoding is strict: trailing bytes, a truncated field, a public key that
// does not unmarshal or is not in its one canonical encoding, and any
// version but 1 are refused. Refusing unknown versions is what lets the
// encoding grow without a flag day: a version 2 (one user on several
// devices) would add a user key and its signature over the device's
// libp2p key, the chain PeerOf checks before the device's binding of the
// MLS key, and name the device's peer as version 1 does. Nodes first ship
// code that accepts version 2 while still presenting version 1, which stays
// valid; a device presents version 2 only where its peers accept it. Code
// that knew only version 1 refuses version 2 outright rather than accept a
// chain it cannot check.
//
// A record binds its KeyPackages to the peer twice: it is signed by the
// peer's libp2p key, and every KeyPackage in it names that peer through
// such an Identity. A member that replaces its MLS signature key presents
// a new identity; mlsgroup's default succession rule, same identity bytes,
// refuses that, so a node that rotates MLS keys sets a Succession that
// compares the peers PeerOf names.
//
// # Record
//
// In TLS presentation language, with 2-byte length prefixes:
//
//	struct {
//	    uint8  version = 1;
//	    opaque public_key<0..2^16-1>;   // libp2p protobuf encoding
//	    opaque peer_id<0..2^16-1>;      // its bytes, matching public_key
//	    uint64 sequence;                // higher replaces lower
//	    uint64 expiry;                  // Unix seconds; <= every not_after
//	    Entry  entries<0..2^16-1>;
//	    opaque signature<0..2^16-1>;    // over "spacepanda KeyPackage record v1\0" || all of the above
//	} Record;
//	struct {
//	    opaque key_package<0..2^16-1>;  // an MLSMessage holding a KeyPackage
//	    uint8  last_resort;             // 1 for the one last-resort KeyPackage
//	} Entry;
//
// A record is at most MaxRecordSize bytes and holds at most MaxEntries
// KeyPackages, all in one cipher suite.
//
// # Usage
//
// keypkgdir reaches the DHT through the two-method DHT interface; p2p's
// Host satisfies it. The node:
//
//  1. Registers a Validator for Namespace with the DHT on every node, its
//     Suites the cipher suites the node uses; sets CredentialValidator in
//     the ValidationOptions of every group, and creates groups under
//     NewIdentity of its libp2p key and its MLS signer's public key.
//  2. Runs a Publisher with the node's one Storage, its MLS signer and its
//     libp2p key: it publishes a batch of one-time KeyPackages and one
//     last-resort KeyPackage, republishes well within the DHT's record age,
//     and rotates KeyPackages out as they age.
//  3. After joining a group through a Welcome, consumes the KeyPackage
//     named by mlsgroup's Effects.ConsumedKeyPackage in the batch that
//     saves the joined group (the Storage keeps the last-resort one, which
//     the publisher created with KeyPackageOptions.LastResort), and once
//     that batch is durable calls Publisher.Used with the ref: a
//     notification, so that a one-time KeyPackage is rotated out soon.
//  4. To invite a peer, calls Directory.Fetch, bounded by a context.
package keypkgdir
