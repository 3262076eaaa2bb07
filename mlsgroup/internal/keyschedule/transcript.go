package keyschedule

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
)

// ConfirmedTranscriptHash is §8.2's
// Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
// for the AuthenticatedContent of the Commit that starts epoch n. The
// interim hash of epoch 0 is empty.
func ConfirmedTranscriptHash(s *suite.Suite, interimBefore []byte, ac *mls.AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != mls.ContentCommit {
		return nil, fmt.Errorf("%w: content type %d", ErrNotCommit, ac.Content.ContentType)
	}
	in, err := ac.ConfirmedTranscriptHashInput()
	if err != nil {
		return nil, fmt.Errorf("%w: ConfirmedTranscriptHashInput: %v", ErrEncoding, err)
	}
	return s.Hash(append(append([]byte(nil), interimBefore...), in...)), nil
}

// InterimTranscriptHash is §8.2's
// Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n]).
// A new member takes the confirmation tag from the GroupInfo (§12.4.3.1).
func InterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	in, err := mls.InterimTranscriptHashInput(confirmationTag)
	if err != nil {
		return nil, fmt.Errorf("%w: InterimTranscriptHashInput: %v", ErrEncoding, err)
	}
	return s.Hash(append(append([]byte(nil), confirmed...), in...)), nil
}

// ConfirmationTag is MAC(confirmation_key, confirmed_transcript_hash)
// (§6.1), for callers that hold the confirmation key outside an Epoch.
func ConfirmationTag(s *suite.Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}
