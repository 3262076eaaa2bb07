// Package e2e holds end-to-end tests across mlsgroup, store, p2p and
// keypkgdir, wired the way the node will wire them: each member has one
// data directory with one store.Store, which is its only mlsgroup Storage,
// its DHT datastore, its Welcome outbox and its channel logs, and a real
// libp2p host on loopback. The tests follow mlsgroup's Usage contract step
// by step (persist before sending, consume the KeyPackage in the batch that
// saves the joined group), so that they show what the node must do and
// catch what the packages cannot do together.
//
// It has no code of its own: the wiring lives in its _test.go files until
// the node package exists.
package e2e
