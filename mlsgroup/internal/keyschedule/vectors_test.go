package keyschedule

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

func lookup(t *testing.T, id uint16) *suite.Suite {
	t.Helper()
	s, err := suite.Lookup(suite.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkBytes(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", name, got, want)
	}
}

func checkSecret(t *testing.T, name string, got secret.Secret, want []byte) {
	t.Helper()
	checkBytes(t, name, got.Bytes(), want)
}

// TestPSKSecretVectors checks §8.4's psk_secret against psk_secret.json.
func TestPSKSecretVectors(t *testing.T) {
	var vs []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		PSKs        []struct {
			ID    hexBytes `json:"psk_id"`
			PSK   hexBytes `json:"psk"`
			Nonce hexBytes `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret hexBytes `json:"psk_secret"`
	}
	vectortest.LoadInto(t, "psk_secret.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			var psks []PSK
			for _, p := range v.PSKs {
				psk, err := NewPSK(&mls.PreSharedKeyID{Type: mls.PSKExternal, ID: p.ID, Nonce: p.Nonce}, secret.New(p.PSK))
				if err != nil {
					t.Fatal(err)
				}
				psks = append(psks, psk)
			}
			got, err := PSKSecret(s, psks)
			if err != nil {
				t.Fatal(err)
			}
			checkSecret(t, "psk_secret", got, v.PSKSecret)
		})
	}
}

type keyScheduleEpoch struct {
	TreeHash                hexBytes `json:"tree_hash"`
	CommitSecret            hexBytes `json:"commit_secret"`
	PSKSecret               hexBytes `json:"psk_secret"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`

	GroupContext hexBytes `json:"group_context"`

	JoinerSecret  hexBytes `json:"joiner_secret"`
	WelcomeSecret hexBytes `json:"welcome_secret"`
	InitSecret    hexBytes `json:"init_secret"`

	SenderDataSecret   hexBytes `json:"sender_data_secret"`
	EncryptionSecret   hexBytes `json:"encryption_secret"`
	ExporterSecret     hexBytes `json:"exporter_secret"`
	EpochAuthenticator hexBytes `json:"epoch_authenticator"`
	ExternalSecret     hexBytes `json:"external_secret"`
	ConfirmationKey    hexBytes `json:"confirmation_key"`
	MembershipKey      hexBytes `json:"membership_key"`
	ResumptionPSK      hexBytes `json:"resumption_psk"`

	ExternalPub hexBytes `json:"external_pub"`
	Exporter    struct {
		// Label looks like hex, but the generator used the hex text itself
		// as the label string, so it is not decoded.
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Secret  hexBytes `json:"secret"`
	} `json:"exporter"`
}

// checkEpoch compares every derived value of one key-schedule.json epoch.
func checkEpoch(t *testing.T, s *suite.Suite, e *Epoch, want *keyScheduleEpoch) {
	t.Helper()
	checkSecret(t, "joiner_secret", e.JoinerSecret, want.JoinerSecret)
	checkSecret(t, "welcome_secret", e.WelcomeSecret, want.WelcomeSecret)
	checkSecret(t, "init_secret", e.InitSecret, want.InitSecret)
	checkSecret(t, "sender_data_secret", e.SenderDataSecret, want.SenderDataSecret)
	checkSecret(t, "encryption_secret", e.EncryptionSecret, want.EncryptionSecret)
	checkSecret(t, "exporter_secret", e.ExporterSecret, want.ExporterSecret)
	checkSecret(t, "epoch_authenticator", e.EpochAuthenticator, want.EpochAuthenticator)
	checkSecret(t, "external_secret", e.ExternalSecret, want.ExternalSecret)
	checkSecret(t, "confirmation_key", e.ConfirmationKey, want.ConfirmationKey)
	checkSecret(t, "membership_key", e.MembershipKey, want.MembershipKey)
	checkSecret(t, "resumption_psk", e.ResumptionPSK, want.ResumptionPSK)

	priv, pub, err := e.ExternalKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "external_pub", pub, want.ExternalPub)
	if pub2, err := s.HPKEPublicKey(priv.Bytes()); err != nil || !bytes.Equal(pub2, pub) {
		t.Errorf("external_priv does not match external_pub (%v)", err)
	}

	x := want.Exporter
	exported, err := e.Export(x.Label, x.Context, x.Length)
	if err != nil {
		t.Fatal(err)
	}
	checkSecret(t, "exporter.secret", exported, x.Secret)
}

// TestKeyScheduleVectors runs the §8 key schedule through each epoch chain
// of key-schedule.json, from init_secret (the member path) and from
// joiner_secret (the Welcome path).
func TestKeyScheduleVectors(t *testing.T) {
	var vs []struct {
		CipherSuite       uint16             `json:"cipher_suite"`
		GroupID           hexBytes           `json:"group_id"`
		InitialInitSecret hexBytes           `json:"initial_init_secret"`
		Epochs            []keyScheduleEpoch `json:"epochs"`
	}
	vectortest.LoadInto(t, "key-schedule.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			initSecret := []byte(v.InitialInitSecret)
			for n := range v.Epochs {
				want := &v.Epochs[n]
				t.Run(fmt.Sprintf("epoch%d", n), func(t *testing.T) {
					gc, err := wire.Marshal(&mls.GroupContext{
						Version:                 mls.MLS10,
						CipherSuite:             suite.ID(v.CipherSuite),
						GroupID:                 v.GroupID,
						Epoch:                   uint64(n),
						TreeHash:                want.TreeHash,
						ConfirmedTranscriptHash: want.ConfirmedTranscriptHash,
					})
					if err != nil {
						t.Fatal(err)
					}
					checkBytes(t, "group_context", gc, want.GroupContext)

					e, err := NewEpoch(s, initSecret, want.CommitSecret, want.PSKSecret, gc)
					if err != nil {
						t.Fatal(err)
					}
					checkEpoch(t, s, e, want)

					ws, err := WelcomeSecret(s, want.JoinerSecret, want.PSKSecret)
					if err != nil {
						t.Fatal(err)
					}
					checkSecret(t, "welcome_secret from joiner_secret", ws, want.WelcomeSecret)
					joined, err := NewEpochFromJoiner(s, want.JoinerSecret, want.PSKSecret, gc)
					if err != nil {
						t.Fatal(err)
					}
					checkEpoch(t, s, joined, want)

					initSecret = bytes.Clone(e.InitSecret.Bytes())
				})
			}
		})
	}
}

// TestSecretTreeVectors checks §6.3.2's sender data key and nonce and §9's
// ratchets against secret-tree.json, reading each generation both as a
// receiver (Get, skipping ahead) and as the sender (Next, in order).
func TestSecretTreeVectors(t *testing.T) {
	type generation struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	}
	var vs []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		SenderData  struct {
			SenderDataSecret hexBytes `json:"sender_data_secret"`
			Ciphertext       hexBytes `json:"ciphertext"`
			Key              hexBytes `json:"key"`
			Nonce            hexBytes `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret hexBytes       `json:"encryption_secret"`
		Leaves           [][]generation `json:"leaves"`
	}
	vectortest.LoadInto(t, "secret-tree.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			sd := v.SenderData
			key, nonce := SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
			checkSecret(t, "sender_data.key", key, sd.Key)
			checkSecret(t, "sender_data.nonce", nonce, sd.Nonce)

			n := uint32(len(v.Leaves))
			receiver := NewSecretTree(s, v.EncryptionSecret, n)
			sender := NewSecretTree(s, v.EncryptionSecret, n)
			kinds := []struct {
				kind       RatchetKind
				key, nonce func(g *generation) []byte
			}{
				{Handshake, func(g *generation) []byte { return g.HandshakeKey }, func(g *generation) []byte { return g.HandshakeNonce }},
				{Application, func(g *generation) []byte { return g.ApplicationKey }, func(g *generation) []byte { return g.ApplicationNonce }},
			}
			for l, gens := range v.Leaves {
				leaf := treemath.LeafIndex(l)
				for gi := range gens {
					g := &gens[gi]
					for _, k := range kinds {
						name := fmt.Sprintf("leaf %d %v generation %d", l, k.kind, g.Generation)
						key, nonce, err := receiver.Get(leaf, k.kind, g.Generation)
						if err != nil {
							t.Fatalf("%s: Get: %v", name, err)
						}
						checkSecret(t, name+" key (Get)", key, k.key(g))
						checkSecret(t, name+" nonce (Get)", nonce, k.nonce(g))
						for {
							gen, key, nonce, err := sender.Next(leaf, k.kind)
							if err != nil {
								t.Fatalf("%s: Next: %v", name, err)
							}
							if gen == g.Generation {
								checkSecret(t, name+" key (Next)", key, k.key(g))
								checkSecret(t, name+" nonce (Next)", nonce, k.nonce(g))
								break
							}
							if gen > g.Generation {
								t.Fatalf("%s: Next skipped to generation %d", name, gen)
							}
						}
					}
				}
			}
		})
	}
}

// TestTranscriptHashVectors checks §8.2's transcript hashes and the
// confirmation tag against transcript-hashes.json.
func TestTranscriptHashVectors(t *testing.T) {
	var vs []struct {
		CipherSuite                  uint16   `json:"cipher_suite"`
		ConfirmationKey              hexBytes `json:"confirmation_key"`
		AuthenticatedContent         hexBytes `json:"authenticated_content"`
		InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
	}
	vectortest.LoadInto(t, "transcript-hashes.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			var ac mls.AuthenticatedContent
			if err := wire.Unmarshal(v.AuthenticatedContent, &ac); err != nil {
				t.Fatal(err)
			}
			if ac.Content.ContentType != mls.ContentCommit {
				t.Fatalf("content type %d, want commit", ac.Content.ContentType)
			}
			confirmed, err := ConfirmedTranscriptHash(s, v.InterimTranscriptHashBefore, &ac)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
			checkBytes(t, "authenticated_content.auth.confirmation_tag",
				ConfirmationTag(s, v.ConfirmationKey, v.ConfirmedTranscriptHashAfter), ac.Auth.ConfirmationTag)
			interim, err := InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
		})
	}
}

// TestWelcomeVectors joins from each Welcome of welcome.json as §12.4.3.1
// describes, as far as the key schedule reaches: decrypt the GroupSecrets
// and the GroupInfo, check the GroupInfo's signature, derive the epoch and
// check the GroupInfo's confirmation tag.
func TestWelcomeVectors(t *testing.T) {
	var vs []struct {
		CipherSuite uint16   `json:"cipher_suite"`
		InitPriv    hexBytes `json:"init_priv"`
		SignerPub   hexBytes `json:"signer_pub"`
		KeyPackage  hexBytes `json:"key_package"`
		Welcome     hexBytes `json:"welcome"`
	}
	vectortest.LoadInto(t, "welcome.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			var kpMsg, wMsg mls.MLSMessage
			if err := wire.Unmarshal(v.KeyPackage, &kpMsg); err != nil || kpMsg.KeyPackage == nil {
				t.Fatalf("key_package: %v", err)
			}
			if err := wire.Unmarshal(v.Welcome, &wMsg); err != nil || wMsg.Welcome == nil {
				t.Fatalf("welcome: %v", err)
			}
			kp, w := kpMsg.KeyPackage, wMsg.Welcome
			if kp.CipherSuite != s.ID() || w.CipherSuite != s.ID() {
				t.Fatalf("cipher suites: key package %d, welcome %d", kp.CipherSuite, w.CipherSuite)
			}
			ref, err := mls.KeyPackageRef(s, kp)
			if err != nil {
				t.Fatal(err)
			}
			var mine *mls.EncryptedGroupSecrets
			for j := range w.Secrets {
				if bytes.Equal(w.Secrets[j].NewMember, ref) {
					mine = &w.Secrets[j]
				}
			}
			if mine == nil {
				t.Fatal("no EncryptedGroupSecrets for our KeyPackageRef")
			}

			initPriv := v.InitPriv
			if s.ID() == suite.MLS256DHKEMP521AES256GCMSHA512P521 && len(initPriv) == 65 {
				initPriv = append([]byte{0}, initPriv...) // see the vectors' README
			}
			plain, err := s.DecryptWithLabel(initPriv, "Welcome", w.EncryptedGroupInfo,
				mine.EncryptedGroupSecrets.KEMOutput, mine.EncryptedGroupSecrets.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			var gs mls.GroupSecrets
			if err := wire.Unmarshal(plain, &gs); err != nil {
				t.Fatal(err)
			}
			if len(gs.PSKs) != 0 {
				t.Fatalf("GroupSecrets lists %d PSKs, the vectors use none", len(gs.PSKs))
			}
			pskSecret, err := PSKSecret(s, nil)
			if err != nil {
				t.Fatal(err)
			}

			welcomeSecret, err := WelcomeSecret(s, gs.JoinerSecret.Bytes(), pskSecret.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			key, nonce := WelcomeKeyNonce(s, welcomeSecret.Bytes())
			giBytes, err := s.Open(key.Bytes(), nonce.Bytes(), nil, w.EncryptedGroupInfo)
			if err != nil {
				t.Fatal(err)
			}
			var gi mls.GroupInfo
			if err := wire.Unmarshal(giBytes, &gi); err != nil {
				t.Fatal(err)
			}
			tbs, err := gi.MarshalTBS()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(v.SignerPub, "GroupInfoTBS", tbs, gi.Signature); err != nil {
				t.Fatalf("GroupInfo signature: %v", err)
			}

			gc, err := wire.Marshal(&gi.GroupContext)
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEpochFromJoiner(s, gs.JoinerSecret.Bytes(), pskSecret.Bytes(), gc)
			if err != nil {
				t.Fatal(err)
			}
			checkSecret(t, "welcome_secret of the epoch", e.WelcomeSecret, welcomeSecret.Bytes())
			if !e.VerifyConfirmationTag(gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
				t.Errorf("confirmation_tag:\n got %x\nwant %x",
					e.ConfirmationTag(gi.GroupContext.ConfirmedTranscriptHash), gi.ConfirmationTag)
			}
		})
	}
}
