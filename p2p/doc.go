// Package p2p is spacepanda's network: a libp2p host (TCP and QUIC, a
// persistent identity, connection limits, NAT port mapping and hole
// punching), a Kademlia DHT under its own protocol prefix, one gossipsub
// topic per channel, and two stream protocols, one that delivers Welcomes
// and one that lets a returning member catch up.
//
// p2p moves opaque bytes. It knows nothing of MLS and imports nothing else
// of spacepanda: what a valid DHT record or a valid channel message is, the
// caller says through the validators in Config and JoinChannel; Welcomes and
// sync entries are bytes it carries. Only node wires it to the rest.
//
// # Usage
//
// The caller (node):
//
//  1. Loads or makes the host's identity (GenerateIdentity) and keeps it:
//     the peer ID is the node's name in the DHT and in MLS credentials.
//  2. Fills a Config: listen addresses, bootstrap peers, the DHT validators
//     for its record namespaces (keypkgdir's), a Datastore for DHT records,
//     a WelcomeHandler, a WelcomeStore and a SyncProvider. The zero value of
//     every other field is a safe default.
//  3. Calls New, then JoinChannel for each channel, with a MessageValidator
//     that decides Accept, Ignore or Reject before a message is forwarded.
//  4. Queues each Welcome with QueueWelcome; the outbox delivers it when
//     the invitee is reachable and retries, across restarts when a
//     WelcomeStore is set, until the invitee acknowledges it or it expires.
//  5. After being away, calls Sync on a member for each channel, one
//     channel at a time, resuming from the last cursor it persisted (also
//     when Sync stops at MaxSyncPages with ErrTooLarge).
//  6. Calls Close once; it ends every goroutine p2p started.
//
// # Wire
//
// DHT protocol /spacepanda/kad/1.0.0 (kad-dht with prefix /spacepanda; the
// /ipfs prefix admits only its own validators). Channel topic
// /spacepanda/ch/<hex(sha256(channel ID))>, messages without author or
// signature (StrictNoSign) and identified by a hash of their content. Stream
// protocols /spacepanda/welcome/1.0.0 and /spacepanda/sync/1.0.0 frame
// every field as an unsigned varint length followed by the bytes; see
// welcome.go and sync.go for the exchanges.
//
// # Mailboxes
//
// An inviter whose first attempt to deliver a Welcome fails leaves two
// DHT provider records, so that the invitee, when it comes online
// anywhere in the network, finds the inviter and connects to it (the
// connection makes the inviter's outbox send at once):
//
//   - the beacon, under one constant key for everyone (beaconKey): "this
//     host holds Welcomes for someone";
//   - the hint, under a key only inviter and invitee can compute
//     (pairKey): HKDF-SHA256 over the X25519 shared secret of the two
//     peers' identity keys (their Ed25519 keys in Montgomery form, RFC 7748
//     §4.1), with both peer IDs, inviter first, in the info.
//
// A host checking its mailbox asks for the beacon's providers (up to
// maxMailboxProviders), computes the hint key each of them would use for
// it, and connects only to those that provide under that key too.
//
// What a DHT observer still learns:
//
//   - From the beacon, anyone: which hosts (peer ID and addresses) hold
//     Welcomes not yet delivered, for someone, from their first failed
//     attempt until 48 hours (the provider record lifetime) after their
//     last renewal, every 12 hours while a Welcome is pending. Not for whom,
//     nor how many.
//   - From the hint, nobody but the two peers can tell whose it is: its key
//     needs one of their private keys, so knowing the invitee's peer ID or
//     its public KeyPackage record does not give it, and no observer can
//     pick its node ID to sit near a key it cannot compute. The ~20 DHT
//     servers that happen to be closest to it do see the inviter's peer ID
//     store it and the invitee's peer ID ask for it, and so can link the
//     two, as the servers on a lookup's path always see who asks.
//   - The invitee asks for the hint key of every beacon provider it finds,
//     so the servers closest to those keys see a lookup from it; to them,
//     unanswered keys are random.
//   - The inviter's own lookups of the invitee (its KeyPackage record, its
//     addresses, on every retry) are seen by the servers on their path,
//     while they run.
//   - Anyone who can watch the network sees the invitee connect to the
//     inviter.
//
// Limits: anyone can announce itself under the beacon, for nothing, and a
// check looks at only the first maxMailboxProviders providers it finds, so a
// flood of announcements can hide an inviter's; the inviter's own retries,
// at least every WelcomeRetryMax, still deliver then. The key needs both
// peers' keys to be Ed25519, the only kind GenerateIdentity makes and whose
// public key a peer ID carries; for other keys no hint is left and no
// mailbox checked. Identity keys never rotate, so the hint key of two
// peers never changes, and a restart needs nothing beyond the identity the
// host already persists.
package p2p
