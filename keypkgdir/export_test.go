package keypkgdir

import "github.com/libp2p/go-libp2p/core/crypto"

// SealAs signs r with key even when key is not r.Peer's: the forgery that
// Seal refuses to make, for tests of the validator on the network.
func SealAs(r *Record, key crypto.PrivKey) ([]byte, error) {
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, err
	}
	tbs, err := r.marshalTBS(pub)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(append([]byte(signatureContext), tbs...))
	if err != nil {
		return nil, err
	}
	return append(tbs, append([]byte{byte(len(sig) >> 8), byte(len(sig))}, sig...)...), nil
}
