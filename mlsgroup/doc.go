// Package mlsgroup is spacepanda's implementation of MLS, RFC 9420: a pure
// state machine over one Storage, the node's provider of key material.
//
// The RFC's layers live in internal packages (codec, cipher suites, tree
// math, ratchet tree and TreeKEM, key schedule and secret tree, framing);
// this package holds KeyPackages, the group life cycle and the Storage
// interface. Nothing here does I/O, reads a clock or draws randomness it is
// not handed: time and an io.Reader come in through Config, so that the
// working group's test vectors and every test replay exactly. The only
// goroutines are those that spread a large commit's signature checks and
// HPKE operations over the cores, and they end before the call returns.
//
// # Values, not objects
//
// A *Group is one member's state of a group in one epoch, and it is never
// changed: every operation returns the state that follows, together with
// what to send or deliver. Even decrypting an application message yields a
// new state, because it moves a hash ratchet and deletes the key it used
// (§9.2). States share their unchanged parts (the ratchet tree, the epoch
// secrets), so a transition copies what it changes and no more.
//
// A Group has a role, and each role has its own step function for incoming
// messages: a member processes everything; a removed member and a member
// of a group that committed a ReInit can still read late application
// messages of the epochs they kept, and nothing else.
//
// # Usage
//
// The node owns one Storage and hands the same one to every call through
// Config. Every step returns an *Effects, whose documentation is the
// contract; in short, for each step:
//
//  1. Call the operation on the current state: Process for a message from
//     the network; Encrypt, Propose, ProposeUpdate or Commit to send;
//     MergeCommit once the delivery service accepted a staged commit.
//  2. Persist Effects.Group (Group.MarshalBinary) before anything leaves
//     the node, in one batch with the deletion the step asks for: after
//     Join, of the KeyPackage named by Effects.ConsumedKeyPackage. A
//     state that is sent from but not persisted can reuse a key.
//  3. Publish Effects.Message to the group.
//  4. Send Effects.Welcome to the members in Effects.Commit.Added. Only a
//     merged commit has one (§14): Commit keeps it in the staged state.
//  5. Deliver what the Effects say: plaintext, membership changes.
//  6. Replace the current state with the returned one, and drop the old.
//     Only then is a consumed key gone from memory as well as from disk.
//
// A commit is staged, not applied: Commit returns the current epoch with
// the commit, and its Welcome, attached and persisted. When the delivery
// service accepts it (its echo reaches Process, or the node learns
// otherwise), MergeCommit, or Process of the echo, moves to the new epoch
// and hands out the Welcome. A node that restarts with a staged commit
// publishes Group.StagedCommit again. When another member's commit for the
// epoch wins, Process applies that one and reports the loss
// (Effects.DiscardedCommit): the staged commit and its Welcome are
// dropped, and the proposals and messages the lost commit covered must be
// sent again.
//
// Joining: NewKeyPackage stores a KeyPackage's private keys in the
// Storage under its KeyPackageRef, marked last-resort if the options say
// so, and the Storage decides by that mark whether consuming it deletes
// it; Join looks up the refs a Welcome names there, and when none is
// available fails with a *NoMatchingKeyPackageError that says, for each ref, whether this Storage never held it, held it
// until it expired, or consumed it in an earlier join.
//
// # Errors
//
// Errors wrap this package's sentinels (ErrWrongEpoch, ErrInvalidSignature,
// ErrReplay, ErrInvalidProposal, ...) and say what failed; match them with
// errors.Is. A failed call changes nothing: the caller's state stays valid.
package mlsgroup
