package keypkgdir

import "errors"

// Errors returned by keypkgdir, matched with errors.Is; the errors returned
// wrap them with the peer, entry or field concerned.
var (
	// ErrNoKeyPackages: Fetch found no usable record for the peer: it never
	// published one, its record expired and the DHT dropped it, or the
	// lookup failed or ran out of time (the cause is wrapped too).
	ErrNoKeyPackages = errors.New("keypkgdir: no KeyPackages published")
	// ErrKeyPackageExpired: the record, or a KeyPackage in it, is past its
	// lifetime.
	ErrKeyPackageExpired = errors.New("keypkgdir: KeyPackages expired")

	// ErrMalformed: a record or DHT key that does not decode.
	ErrMalformed = errors.New("keypkgdir: malformed record")
	// ErrTooLarge: a record over MaxRecordSize, or holding more than
	// MaxEntries KeyPackages.
	ErrTooLarge = errors.New("keypkgdir: record too large")
	// ErrBadSignature: a record whose signature does not verify, or whose
	// public key is not the one its peer ID is derived from.
	ErrBadSignature = errors.New("keypkgdir: bad record signature")
	// ErrWrongPeer: a record of one peer stored under another's key.
	ErrWrongPeer = errors.New("keypkgdir: record of another peer")
	// ErrWrongIdentity: a KeyPackage whose credential does not name the
	// peer whose record holds it: it names another peer, or its identity
	// does not bind its signature key (it wraps ErrBadBinding too then).
	ErrWrongIdentity = errors.New("keypkgdir: KeyPackage of another identity")
	// ErrBadBinding: a credential identity that does not decode as an
	// Identity of a version this package knows, or whose signature by the
	// peer's libp2p key does not cover the leaf's MLS signature key.
	ErrBadBinding = errors.New("keypkgdir: identity does not bind the MLS signature key")
	// ErrInvalidKeyPackage: a KeyPackage in the record fails MLS validation
	// (RFC 9420 §10.1), is listed twice, ends before the record does, or is
	// in a cipher suite the Validator does not accept or another than the
	// rest's; or the batch is empty or has more than one last-resort
	// KeyPackage.
	ErrInvalidKeyPackage = errors.New("keypkgdir: invalid KeyPackage in record")
)
