package mlsgroup

// Effects is what one step returns: the state that follows and what the
// caller must do about it. Every step (Commit, Encrypt, Propose,
// ProposeUpdate, ExternalJoin, ReInitGroup, Process, Join, MergeCommit)
// returns one; a field a step has nothing for is zero. The caller handles
// it in this order, and a crash between two steps of the order loses
// nothing that cannot be redone:
//
//  1. Persist Group (Group.MarshalBinary) and, in the same atomic batch,
//     delete the KeyPackage named by ConsumedKeyPackage (Join only; the
//     Storage keeps a last-resort KeyPackage by its own rule). A state
//     that is sent from but not persisted can reuse a key (§6.3.1).
//  2. Only after that batch is durable: publish Message to the group, if
//     it is non-nil. A node that restarts with a staged commit publishes
//     Group.StagedCommit again.
//  3. Only after that: send Welcome to the members in Commit.Added.
//     Welcome is non-nil only when a commit that adds members has been
//     merged (MergeCommit, or Process of the commit's echo): a Welcome
//     must not leave before the delivery service accepted its commit
//     (§14), or the new members would join an epoch that may never exist.
//  4. Deliver to the user what the step carried: Kind, Epoch, Sender,
//     AuthenticatedData, Plaintext, ProposalType and ProposalRef, Commit,
//     OwnCommit, DiscardedCommit.
//  5. Replace the current state by Group, and drop the old one: only then
//     is a consumed key gone from memory as well as from disk.
type Effects struct {
	// Group is the state after the step. After Commit (and ReInitGroup)
	// it is still in the old epoch, with the commit staged: MergeCommit
	// once the delivery service has accepted it, DiscardCommit if another
	// commit won the epoch. After a received commit it is the new epoch.
	Group *Group
	// Message is the MLSMessage for the group, a PublicMessage or
	// PrivateMessage, for a step that sends.
	Message []byte
	// ProposalRef is a proposal's ProposalRef (§5.2), by which commits
	// include it: of a proposal sent (Propose, ProposeUpdate) or received.
	ProposalRef []byte
	// Welcome is the Welcome for the members a merged commit added
	// (§12.4.3.1), to send to Commit.Added once Group is persisted.
	Welcome []byte
	// ConsumedKeyPackage is the KeyPackageRef whose private keys Join
	// used: delete it from the Storage in the batch that saves Group, as
	// a KeyPackage is for one join (§16.8).
	ConsumedKeyPackage []byte

	// Kind is what the message carried: the one received, or for a step
	// that sends, the one in Message.
	Kind MessageKind
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// Sender is who sent a received message; for a merged commit of this
	// member's own, this member.
	Sender Sender
	// AuthenticatedData is a received message's authenticated_data.
	AuthenticatedData []byte
	// Plaintext is the application data of a received application
	// message.
	Plaintext []byte
	// ProposalType describes a proposal sent or received.
	ProposalType ProposalType
	// Commit describes a commit that took effect: one received, or this
	// member's own once merged. A staged commit has none yet.
	Commit *CommitInfo
	// OwnCommit is set when the commit that took effect was this member's
	// staged one, now merged.
	OwnCommit bool
	// DiscardedCommit is set when a received commit won the epoch over
	// this member's staged one, which is dropped with its Welcome:
	// proposals and application data it meant to carry must be sent again.
	DiscardedCommit bool
}
