package keyschedule

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
	"golang.org/x/crypto/cryptobyte"
)

// Errors.
var (
	// ErrSecretLength means an input secret is not KDF.Nh bytes long.
	ErrSecretLength = errors.New("keyschedule: secret has the wrong length")
	// ErrTooManyPSKs means a PSK list does not fit PSKLabel's uint16 count.
	ErrTooManyPSKs = errors.New("keyschedule: too many PSKs")
	// ErrExportLength means an MLS-Exporter length exceeds what
	// ExpandWithLabel can produce.
	ErrExportLength = errors.New("keyschedule: exporter length out of range")
	// ErrNotCommit means a transcript hash was asked of content that is not
	// a Commit (§8.2).
	ErrNotCommit = errors.New("keyschedule: transcript hash input is not a commit")
	// ErrEncoding means a structure could not be encoded.
	ErrEncoding = errors.New("keyschedule: encoding failed")
	// ErrLeafOutOfRange means a secret tree was asked about a leaf it does
	// not have.
	ErrLeafOutOfRange = errors.New("keyschedule: leaf index out of range")
	// ErrRatchetKind means a RatchetKind is neither Handshake nor
	// Application.
	ErrRatchetKind = errors.New("keyschedule: unknown ratchet kind")
	// ErrReplay means the key of a generation was already consumed, or was
	// deleted because it fell out of the out-of-order window (§9.2).
	ErrReplay = errors.New("keyschedule: key already consumed or deleted")
	// ErrGenerationTooFar means a generation lies beyond the window a
	// receiver is willing to ratchet forward.
	ErrGenerationTooFar = errors.New("keyschedule: generation too far ahead")
	// ErrRatchetExhausted means a hash ratchet has no generations left.
	ErrRatchetExhausted = errors.New("keyschedule: ratchet exhausted")
	// ErrMalformedState means persisted state does not decode, or decodes to
	// a state this package could not have produced.
	ErrMalformedState = errors.New("keyschedule: malformed persisted state")
)

// ExternalInitExportContext is the HPKE exporter context of §8.3: a joiner
// by external Commit, and the members receiving its ExternalInit proposal,
// both take init_secret = context.export(ExternalInitExportContext, KDF.Nh)
// from the HPKE context set up with the group's external key pair, and pass
// it to NewEpoch as the init secret.
const ExternalInitExportContext = "MLS 1.0 external init secret"

// Epoch holds the secrets of one epoch (§8, Table 4). All are KDF.Nh bytes.
//
// JoinerSecret and WelcomeSecret matter only to a committer building a
// Welcome, and EpochAuthenticator only to the application; §9.2 asks that
// each secret be deleted once consumed, so callers Wipe what they no longer
// need, and the whole Epoch when the group moves on.
type Epoch struct {
	suite *suite.Suite

	JoinerSecret       secret.Secret
	WelcomeSecret      secret.Secret
	SenderDataSecret   secret.Secret
	EncryptionSecret   secret.Secret
	ExporterSecret     secret.Secret
	ExternalSecret     secret.Secret
	ConfirmationKey    secret.Secret
	MembershipKey      secret.Secret
	ResumptionPSK      secret.Secret
	EpochAuthenticator secret.Secret
	// InitSecret is init_secret_[n], the input of the next epoch's schedule.
	InitSecret secret.Secret
}

// NewEpoch runs the key schedule of §8 for a member moving into a new epoch:
// init_secret is the previous epoch's (or, for an external Commit, the HPKE
// export of §8.3), groupContext the encoded GroupContext of the new epoch.
// A nil commitSecret (no UpdatePath, §12.4) or pskSecret (no PSKs, §8.4)
// stands for the all-zero string of KDF.Nh bytes.
func NewEpoch(s *suite.Suite, initSecret, commitSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	if err := checkLen(s, "init_secret", initSecret, false); err != nil {
		return nil, err
	}
	if err := checkLen(s, "commit_secret", commitSecret, true); err != nil {
		return nil, err
	}
	commitSecret = orZero(s, commitSecret)
	prk := s.Extract(initSecret, commitSecret)
	joiner := s.ExpandWithLabel(prk, "joiner", groupContext, s.Nh())
	clear(prk)
	return fromJoiner(s, joiner, pskSecret, groupContext)
}

// NewEpochFromJoiner runs the key schedule of §8 from the joiner_secret on,
// as a new member does with the GroupSecrets of a Welcome (§12.4.3.1).
func NewEpochFromJoiner(s *suite.Suite, joinerSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	if err := checkLen(s, "joiner_secret", joinerSecret, false); err != nil {
		return nil, err
	}
	return fromJoiner(s, bytes.Clone(joinerSecret), pskSecret, groupContext)
}

// fromJoiner is NewEpochFromJoiner taking ownership of joinerSecret.
func fromJoiner(s *suite.Suite, joinerSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	if err := checkLen(s, "psk_secret", pskSecret, true); err != nil {
		clear(joinerSecret)
		return nil, err
	}
	// member is the unnamed Extract output between joiner_secret and
	// epoch_secret in Figure 22.
	member := s.Extract(joinerSecret, orZero(s, pskSecret))
	epochSecret := s.ExpandWithLabel(member, "epoch", groupContext, s.Nh())
	e := &Epoch{
		suite:         s,
		JoinerSecret:  secret.New(joinerSecret),
		WelcomeSecret: secret.New(s.DeriveSecret(member, "welcome")),
	}
	clear(member)
	derive := func(label string) secret.Secret { return secret.New(s.DeriveSecret(epochSecret, label)) }
	e.SenderDataSecret = derive("sender data")
	e.EncryptionSecret = derive("encryption")
	e.ExporterSecret = derive("exporter")
	e.ExternalSecret = derive("external")
	e.ConfirmationKey = derive("confirm")
	e.MembershipKey = derive("membership")
	e.ResumptionPSK = derive("resumption")
	e.EpochAuthenticator = derive("authentication")
	e.InitSecret = derive("init")
	// Every secret of Table 4 is now derived from epoch_secret, so it is
	// consumed (§9.2).
	clear(epochSecret)
	return e, nil
}

// WelcomeSecret is the welcome_secret of §8, computed from the joiner_secret
// alone: a new member needs it to decrypt the GroupInfo (§12.4.3.1) before
// it knows the GroupContext that the rest of the schedule takes.
func WelcomeSecret(s *suite.Suite, joinerSecret, pskSecret []byte) (secret.Secret, error) {
	if err := checkLen(s, "joiner_secret", joinerSecret, false); err != nil {
		return secret.Secret{}, err
	}
	if err := checkLen(s, "psk_secret", pskSecret, true); err != nil {
		return secret.Secret{}, err
	}
	member := s.Extract(joinerSecret, orZero(s, pskSecret))
	defer clear(member)
	return secret.New(s.DeriveSecret(member, "welcome")), nil
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo (§12.4.3.1).
func WelcomeKeyNonce(s *suite.Suite, welcomeSecret []byte) (key, nonce secret.Secret) {
	key = secret.New(s.ExpandWithLabel(welcomeSecret, "key", nil, s.AEADKeySize()))
	nonce = secret.New(s.ExpandWithLabel(welcomeSecret, "nonce", nil, s.AEADNonceSize()))
	return key, nonce
}

// Suite is the cipher suite the epoch's secrets were derived with.
func (e *Epoch) Suite() *suite.Suite { return e.suite }

// ExternalKeyPair derives the group's external HPKE key pair from
// external_secret (§8): the public half goes into the external_pub
// extension of a GroupInfo (§12.4.3.2), the private half decapsulates the
// kem_output of an ExternalInit proposal (§8.3).
func (e *Epoch) ExternalKeyPair() (priv secret.Secret, pub []byte, err error) {
	sk, pk, err := e.suite.DeriveKeyPair(e.ExternalSecret.Bytes())
	if err != nil {
		return secret.Secret{}, nil, fmt.Errorf("keyschedule: deriving the external key pair: %w", err)
	}
	return secret.New(sk), pk, nil
}

// Export is §8.5's MLS-Exporter(label, context, length).
func (e *Epoch) Export(label string, context []byte, length int) (secret.Secret, error) {
	s := e.suite
	// ExpandWithLabel carries the length in a uint16, and HKDF stops at
	// 255 blocks; the suite panics beyond either, so refuse here.
	if length < 0 || length > 0xffff || length > 255*s.Nh() {
		return secret.Secret{}, fmt.Errorf("%w: %d bytes", ErrExportLength, length)
	}
	derived := s.DeriveSecret(e.ExporterSecret.Bytes(), label)
	defer clear(derived)
	return secret.New(s.ExpandWithLabel(derived, "exported", s.Hash(context), length)), nil
}

// ConfirmationTag is the confirmation_tag of a Commit that leads into this
// epoch: MAC(confirmation_key, confirmed_transcript_hash) (§6.1, §8.2).
func (e *Epoch) ConfirmationTag(confirmedTranscriptHash []byte) []byte {
	return ConfirmationTag(e.suite, e.ConfirmationKey.Bytes(), confirmedTranscriptHash)
}

// VerifyConfirmationTag reports, in constant time, whether tag is the
// confirmation tag of confirmedTranscriptHash in this epoch.
func (e *Epoch) VerifyConfirmationTag(confirmedTranscriptHash, tag []byte) bool {
	return hmac.Equal(e.ConfirmationTag(confirmedTranscriptHash), tag)
}

// Wipe deletes every secret of the epoch (§9.2).
func (e *Epoch) Wipe() {
	for _, s := range e.secrets() {
		s.Wipe()
	}
}

// secrets lists the epoch's secrets in their persisted order.
func (e *Epoch) secrets() []*secret.Secret {
	return []*secret.Secret{
		&e.JoinerSecret, &e.WelcomeSecret, &e.SenderDataSecret, &e.EncryptionSecret,
		&e.ExporterSecret, &e.ExternalSecret, &e.ConfirmationKey, &e.MembershipKey,
		&e.ResumptionPSK, &e.EpochAuthenticator, &e.InitSecret,
	}
}

// epochStateVersion leads an Epoch's persisted form.
const epochStateVersion = 1

// MarshalBinary persists the epoch: a version byte, the suite, then each
// secret as opaque<V> (empty once wiped).
func (e *Epoch) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(epochStateVersion)
	b.AddUint16(uint16(e.suite.ID()))
	for _, s := range e.secrets() {
		wire.AddOpaque(&b, s.Bytes())
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: epoch state: %v", ErrEncoding, err)
	}
	return out, nil
}

// UnmarshalBinary restores an epoch persisted by MarshalBinary.
func (e *Epoch) UnmarshalBinary(data []byte) error {
	in := cryptobyte.String(data)
	var version uint8
	var id uint16
	if !in.ReadUint8(&version) || version != epochStateVersion || !in.ReadUint16(&id) {
		return fmt.Errorf("%w: epoch state header", ErrMalformedState)
	}
	s, err := suite.Lookup(suite.ID(id))
	if err != nil {
		return fmt.Errorf("%w: epoch state: %w", ErrMalformedState, err)
	}
	var out Epoch
	out.suite = s
	for i, p := range out.secrets() {
		var v []byte
		if !wire.ReadOpaqueCopy(&in, &v) || (len(v) != 0 && len(v) != s.Nh()) {
			return fmt.Errorf("%w: epoch state secret %d", ErrMalformedState, i)
		}
		*p = secret.New(v)
	}
	if !in.Empty() {
		return fmt.Errorf("%w: epoch state has trailing bytes", ErrMalformedState)
	}
	*e = out
	return nil
}

// checkLen insists on a KDF.Nh-byte secret; optional ones may also be empty,
// meaning the all-zero string.
func checkLen(s *suite.Suite, name string, v []byte, optional bool) error {
	if len(v) == s.Nh() || (optional && len(v) == 0) {
		return nil
	}
	return fmt.Errorf("%w: %s is %d bytes, want %d", ErrSecretLength, name, len(v), s.Nh())
}

// orZero stands the all-zero KDF.Nh string of §8 in for an absent secret.
func orZero(s *suite.Suite, v []byte) []byte {
	if len(v) == 0 {
		return make([]byte, s.Nh())
	}
	return v
}
