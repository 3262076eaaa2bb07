package mlsgroup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors returned by mlsgroup. Each is matched with errors.Is; the errors
// actually returned wrap them with what was being checked.
var (
	// ErrUnsupportedCipherSuite: a cipher suite this implementation lacks.
	ErrUnsupportedCipherSuite = errors.New("mlsgroup: unsupported cipher suite")
	// ErrMalformed: bytes that do not decode as the expected structure.
	ErrMalformed = errors.New("mlsgroup: malformed message")
	// ErrInvalidKeyPackage: a KeyPackage that fails §10.1's checks.
	ErrInvalidKeyPackage = errors.New("mlsgroup: invalid KeyPackage")
	// ErrKeyPackageExpired: a KeyPackage or leaf outside its lifetime.
	ErrKeyPackageExpired = errors.New("mlsgroup: KeyPackage outside its lifetime")
	// ErrInvalidLeafNode: a LeafNode that fails §7.3's checks.
	ErrInvalidLeafNode = errors.New("mlsgroup: invalid LeafNode")
	// ErrInvalidSignature: a signature that does not verify.
	ErrInvalidSignature = errors.New("mlsgroup: invalid signature")
	// ErrCredentialRejected: the CredentialValidator refused an identity.
	ErrCredentialRejected = errors.New("mlsgroup: credential rejected")
	// ErrNoMatchingKeyPackage: a Welcome for none of this Storage's
	// KeyPackages; the error is a *NoMatchingKeyPackageError.
	ErrNoMatchingKeyPackage = errors.New("mlsgroup: no matching KeyPackage")

	// ErrWrongGroup: a message for another group.
	ErrWrongGroup = errors.New("mlsgroup: message for another group")
	// ErrWrongEpoch: a message for an epoch this state cannot process: a
	// handshake message for any epoch but the current one, or an
	// application message older than the retained past epochs or from
	// the future.
	ErrWrongEpoch = errors.New("mlsgroup: message for another epoch")
	// ErrNotMember: the operation needs a member, and this state is not
	// one (removed from the group), or a message names a sender that is
	// not a member.
	ErrNotMember = errors.New("mlsgroup: not a member")
	// ErrInvalidMembershipTag: a member's PublicMessage whose membership
	// tag does not verify (§6.2): it was not made with this epoch's keys.
	ErrInvalidMembershipTag = errors.New("mlsgroup: invalid membership tag")
	// ErrDecrypt: a PrivateMessage, Welcome or path secret that does not
	// decrypt.
	ErrDecrypt = errors.New("mlsgroup: decryption failed")
	// ErrReplay: a PrivateMessage whose generation was already consumed,
	// or whose key was deleted because it fell out of the out-of-order
	// window (§9.2).
	ErrReplay = errors.New("mlsgroup: message replayed or too old")
	// ErrTooFarAhead: a PrivateMessage whose generation lies beyond the
	// window the receiver ratchets forward to.
	ErrTooFarAhead = errors.New("mlsgroup: message generation too far ahead")
	// ErrInvalidProposal: a proposal, or a list of proposals in a commit,
	// that §12.1 or §12.2 forbids.
	ErrInvalidProposal = errors.New("mlsgroup: invalid proposal")
	// ErrInvalidCommit: a commit that fails §12.4.2's checks other than
	// its proposal list and signature: a missing or invalid path, an
	// unknown proposal reference, a wrong confirmation tag.
	ErrInvalidCommit = errors.New("mlsgroup: invalid commit")
	// ErrInvalidWelcome: a Welcome, GroupInfo or ratchet tree that fails
	// §12.4.3's checks.
	ErrInvalidWelcome = errors.New("mlsgroup: invalid Welcome or GroupInfo")
	// ErrUnknownPSK: a pre-shared key (§8.4) that neither the Config's
	// ExternalPSK nor the group's retained epochs can supply.
	ErrUnknownPSK = errors.New("mlsgroup: unknown pre-shared key")
	// ErrPendingProposals: application data may not be sent while
	// proposals of the epoch are uncommitted (§12.4).
	ErrPendingProposals = errors.New("mlsgroup: proposals pending; commit first")
	// ErrReInitPending: the group committed a ReInit (§11.2) and may not
	// be used to send anything more.
	ErrReInitPending = errors.New("mlsgroup: group is being reinitialized")
	// ErrNoPendingCommit: MergeCommit or DiscardCommit without a staged
	// commit.
	ErrNoPendingCommit = errors.New("mlsgroup: no staged commit")
	// ErrCommitPending: a second commit while one is staged.
	ErrCommitPending = errors.New("mlsgroup: a commit is already staged")
	// ErrUnexpectedMessage: a message that Process does not take: a
	// Welcome, GroupInfo or KeyPackage, or a commit from this member that
	// is not the staged one.
	ErrUnexpectedMessage = errors.New("mlsgroup: unexpected message")
	// ErrInvalidState: persisted group state that does not decode.
	ErrInvalidState = errors.New("mlsgroup: invalid persisted group state")
	// ErrInvalidConfig: a Config that lacks a required field.
	ErrInvalidConfig = errors.New("mlsgroup: invalid Config")
)

// errorf wraps sentinel with a formatted description of what failed.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// NoMatchingKeyPackageError is returned when a Welcome names no KeyPackage
// whose private keys the Storage holds. It lists every KeyPackageRef the
// Welcome carries and what the Storage knows of each, so that a failed join
// says whether the key was never here, expired, or used already.
type NoMatchingKeyPackageError struct {
	Refs   [][]byte
	Status []KeyPackageStatus // Status[i] is what the Storage knows of Refs[i]
}

func (e *NoMatchingKeyPackageError) Error() string {
	var b strings.Builder
	b.WriteString("mlsgroup: no matching KeyPackage: the Welcome names ")
	for i, ref := range e.Refs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", hex.EncodeToString(ref), statusString(e.Status[i]))
	}
	if len(e.Refs) == 0 {
		b.WriteString("no KeyPackages")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNoMatchingKeyPackage) hold.
func (e *NoMatchingKeyPackageError) Unwrap() error { return ErrNoMatchingKeyPackage }
