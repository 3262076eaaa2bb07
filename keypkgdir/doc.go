// Package keypkgdir is the directory of MLS KeyPackages in the DHT: the
// signed record a peer publishes under /spacepanda-kp/<peer ID>, the
// validator every DHT node runs on it, the owner's Publisher that keeps the
// record fresh, and Fetch, which gives an inviter one of a peer's
// KeyPackages or says clearly why it cannot.
//
// # Identity
//
// A KeyPackage names a peer when the identity of its basic credential is
// the peer ID's bytes ([]byte(peer.ID), the multihash). The record binds
// its KeyPackages to the peer twice: it is signed by the peer's libp2p key,
// the key the peer ID is derived from, and every KeyPackage in it names
// that peer. The MLS signature key inside the KeyPackages is a different
// key; an inviter that wants to recognise the peer's later leaves can
// remember the pairing of peer ID and MLS signature key from the record it
// fetched.
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
//     Suites the cipher suites the node uses.
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
