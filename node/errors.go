package node

import "errors"

// Errors returned by the node, matched with errors.Is. The errors returned
// wrap them with what is concerned. Errors of the layers below (keypkgdir's
// ErrNoKeyPackages and ErrKeyPackageExpired, store's ErrLocked, mlsgroup's)
// are wrapped, not translated, so that errors.Is finds them too.
var (
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("node: closed")
	// ErrInvalidArgument: a name, body, peer ID or option that is not
	// acceptable; the text says which.
	ErrInvalidArgument = errors.New("node: invalid argument")
	// ErrUnknownChannel: no channel with that ID on this node.
	ErrUnknownChannel = errors.New("node: unknown channel")
	// ErrNotMember: the channel was left or this node was removed, or the
	// peer named is not a member.
	ErrNotMember = errors.New("node: not a member")
	// ErrAlreadyMember: an invite of a peer that is in the channel.
	ErrAlreadyMember = errors.New("node: already a member")
	// ErrUnknownInvitation: no pending invitation with that ID.
	ErrUnknownInvitation = errors.New("node: unknown invitation")
	// ErrTooLarge: a message body over MaxBodySize.
	ErrTooLarge = errors.New("node: too large")
	// ErrBadIdentity: a KeyPackage or leaf whose credential does not bind
	// its MLS key to the peer it names.
	ErrBadIdentity = errors.New("node: identity binding does not verify")
	// ErrCommitLost: a commit of this node lost its epoch to another
	// member's and could not be made again.
	ErrCommitLost = errors.New("node: commit lost to a concurrent one")
	// ErrTooManyInvitations: a peer has more pending invitations here than
	// the node keeps.
	ErrTooManyInvitations = errors.New("node: too many pending invitations from this peer")
	// ErrCursorExpired: an event cursor older than the events the node
	// still holds, or from before it last opened.
	ErrCursorExpired = errors.New("node: event cursor expired")
)
