package suite

import "fmt"

// EncryptContext is §5.1.3's EncryptContext for one label and context,
// encoded once for a sender that encrypts to many keys under the same
// context: every GroupSecrets of a Welcome takes the encrypted GroupInfo,
// which may carry the whole ratchet tree, as its context (§12.4.3.1).
// Encoding it anew for each recipient would copy that tree once per new
// member. It is immutable and safe for concurrent use.
type EncryptContext struct {
	s    *Suite
	info []byte
}

// NewEncryptContext encodes EncryptContext{label, context} for Encrypt.
func (s *Suite) NewEncryptContext(label string, context []byte) (*EncryptContext, error) {
	info, err := labelled([]byte(labelPrefix+label), context).Bytes()
	if err != nil {
		return nil, fmt.Errorf("suite: encoding EncryptContext: %w", err)
	}
	return &EncryptContext{s: s, info: info}, nil
}

// Encrypt is EncryptWithLabel(pub, label, context, plaintext) with the
// label and context c was made for.
func (c *EncryptContext) Encrypt(pub, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	return c.s.kem.seal(pub, c.info, plaintext)
}
