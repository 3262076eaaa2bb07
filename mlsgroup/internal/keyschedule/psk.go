package keyschedule

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
	"golang.org/x/crypto/cryptobyte"
)

// PSK is one pre-shared key injected into an epoch (§8.4): the encoded
// PreSharedKeyID that names it, and its value (an external PSK, or the
// resumption_psk of the epoch it names).
type PSK struct {
	ID     []byte
	Secret secret.Secret
}

// NewPSK pairs a PreSharedKeyID with its value, encoding the ID.
func NewPSK(id *mls.PreSharedKeyID, psk secret.Secret) (PSK, error) {
	enc, err := wire.Marshal(id)
	if err != nil {
		return PSK{}, fmt.Errorf("%w: PreSharedKeyID: %v", ErrEncoding, err)
	}
	return PSK{ID: enc, Secret: psk}, nil
}

// PSKSecret chains psks, in the order the Commit or GroupSecrets lists them,
// into the psk_secret of §8.4. With no PSKs it is the all-zero KDF.Nh
// string, as §8 asks.
func PSKSecret(s *suite.Suite, psks []PSK) (secret.Secret, error) {
	if len(psks) > 0xffff {
		return secret.Secret{}, fmt.Errorf("%w: %d, PSKLabel.count is a uint16", ErrTooManyPSKs, len(psks))
	}
	zero := make([]byte, s.Nh())
	acc := zero
	for i, p := range psks {
		var b cryptobyte.Builder
		b.AddBytes(p.ID)
		b.AddUint16(uint16(i))
		b.AddUint16(uint16(len(psks)))
		label, err := b.Bytes()
		if err != nil {
			return secret.Secret{}, fmt.Errorf("%w: PSKLabel %d: %v", ErrEncoding, i, err)
		}
		extracted := s.Extract(zero, p.Secret.Bytes())
		input := s.ExpandWithLabel(extracted, "derived psk", label, s.Nh())
		// §8.4 writes KDF.Extract(psk_input_[i-1], psk_secret_[i-1]), in
		// Extract(salt, ikm) order: the chained secret is the IKM.
		next := s.Extract(input, acc)
		clear(extracted)
		clear(input)
		clear(acc)
		acc = next
	}
	return secret.New(acc), nil
}
