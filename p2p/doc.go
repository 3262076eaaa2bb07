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
package p2p
