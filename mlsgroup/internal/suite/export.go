package suite

import (
	"crypto/hpke"
	"crypto/rand"
	"fmt"
)

// kemExporter is HPKE's secret export (RFC 9180 §5.3) on a base-mode
// context with empty info, which external commits use (RFC 9420 §8.3).
type kemExporter interface {
	exportSender(pub, exporterContext []byte, length int) (enc, exported []byte, err error)
	exportReceiver(priv, enc, exporterContext []byte, length int) ([]byte, error)
}

// ExportSender sets up an HPKE base-mode sender context to pub with empty
// info and exports length bytes under exporterContext: §8.3's
// "kem_output, context = SetupBaseS(external_pub, ""); context.export(...)".
func (s *Suite) ExportSender(pub, exporterContext []byte, length int) (kemOutput, exported []byte, err error) {
	return s.kem.(kemExporter).exportSender(pub, exporterContext, length)
}

// ExportReceiver is the receiving side of ExportSender: it decapsulates
// kemOutput with priv and exports the same secret. A kemOutput that does not
// decapsulate wraps ErrDecrypt.
func (s *Suite) ExportReceiver(priv, kemOutput, exporterContext []byte, length int) ([]byte, error) {
	return s.kem.(kemExporter).exportReceiver(priv, kemOutput, exporterContext, length)
}

func (k stdHPKE) exportSender(pub, exporterContext []byte, length int) ([]byte, []byte, error) {
	pk, err := k.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	enc, sender, err := hpke.NewSender(pk, k.kdf, k.aead, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE encapsulation: %v", ErrInvalidKey, err)
	}
	out, err := sender.Export(string(exporterContext), length)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE export: %w", err)
	}
	return enc, out, nil
}

func (k stdHPKE) exportReceiver(priv, enc, exporterContext []byte, length int) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, k.kdf, k.aead, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation of kem_output", ErrDecrypt)
	}
	out, err := r.Export(string(exporterContext), length)
	if err != nil {
		return nil, fmt.Errorf("suite: HPKE export: %w", err)
	}
	return out, nil
}

func (k circlHPKE) exportSender(pub, exporterContext []byte, length int) ([]byte, []byte, error) {
	pk, err := k.scheme.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	sender, err := k.suite.NewSender(pk, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE sender: %w", err)
	}
	enc, ctx, err := sender.Setup(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE encapsulation: %v", ErrInvalidKey, err)
	}
	return enc, ctx.Export(exporterContext, uint(length)), nil
}

func (k circlHPKE) exportReceiver(priv, enc, exporterContext []byte, length int) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	receiver, err := k.suite.NewReceiver(sk, nil)
	if err != nil {
		return nil, fmt.Errorf("suite: HPKE receiver: %w", err)
	}
	ctx, err := receiver.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation of kem_output", ErrDecrypt)
	}
	return ctx.Export(exporterContext, uint(length)), nil
}
