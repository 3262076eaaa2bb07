// Package testnet runs multi-node simulations of real spacepanda nodes:
// a scenario (a small TOML file: nodes, links, channels, message load,
// faults, assertions, a seed) is played against real node.Nodes on
// go-libp2p's mocknet or on loopback hosts, every node writes one JSON
// line per event, and the report (delivery, latency, join and convergence
// times, rollbacks, resources) is rebuilt from those lines alone, so a
// run can be analysed again without rerunning it. With a baseline, the
// same message load runs on raw gossipsub topics between the same hosts,
// without MLS or a store, so the report can say what MLS costs.
//
// The nodes are the real ones, not a model: the testnet drives them only
// through node's public API (Open, CreateChannel, Invite, Accept, Send,
// Update, Subscribe, Info, Members, Close), as a user's program would.
package testnet
