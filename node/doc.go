// Package node is spacepanda's composition root: the one package that
// knows every subsystem. A Node owns the node's one MLS provider (its
// store), its identity, its libp2p host, its KeyPackage publisher and its
// channels, and turns every MLS step into one store batch before anything
// leaves the node or reaches a client.
//
// # One provider
//
// The store opened by Open is handed to every MLS operation as the
// mlsgroup.Storage: KeyPackages are made into it by the publisher, and a
// Welcome is joined from it. Nothing else in the process opens a provider.
//
// # Steps
//
// Each channel (one MLS group) has one goroutine that owns its state; the
// layers above and the network hand it work and wait for the answer, so
// operations on different channels never wait on each other. A step runs
// mlsgroup on the current state, turns its Effects into one synced
// store.Batch (writeStep, the one place that does so), and only then
// publishes, queues Welcomes and notifies subscribers.
//
// # Commits
//
// A commit is published, then merged once it wins its epoch. gossipsub
// hands a node its own messages first, so "first commit seen" would let
// every concurrent committer win at home and fork the group; instead the
// commits of an epoch are gathered for Config.SettleWindow from the first
// one seen, and the valid one that ranks first wins on every member
// alike. The rank is the committer's turn (the leaves take the front in
// turn, one epoch each), then the lowest SHA-256 of the commit's bytes:
// it reads only authenticated content, never arrival time or a sender's
// clock, and no committer can choose it by drawing fresh commits. A
// Welcome is queued only after its commit won (RFC 9420 §14). A member
// whose commit lost makes it again in the next epoch. A rival that ranks
// first but arrives after a member's window is not yet rewound to (the
// convergence issue's work).
//
// # Reading messages
//
// Messages from the topic are read in order per sender: gossipsub loses
// runs of messages under load, and reading past a run would let it fall
// out of the window of kept keys before sync brings it. A message after a
// gap waits for sync, which reads each member's log with the window
// (mlsgroup.ProcessWith).
//
// Import rule: node may import every spacepanda package below it (mlsgroup,
// keypkgdir, store, p2p); nothing below imports node.
package node
