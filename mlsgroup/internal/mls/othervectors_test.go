package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
)

// The tests below round-trip the wire structures that the other vector
// files carry, which exercise combinations messages.json does not (real
// trees, update paths, proposals by reference).

type passiveClientVector struct {
	CipherSuite suite.ID  `json:"cipher_suite"`
	KeyPackage  hexBytes  `json:"key_package"`
	Welcome     hexBytes  `json:"welcome"`
	RatchetTree *hexBytes `json:"ratchet_tree"`
	Epochs      []struct {
		Proposals []hexBytes `json:"proposals"`
		Commit    hexBytes   `json:"commit"`
	} `json:"epochs"`
}

func TestPassiveClientVectorsRoundTrip(t *testing.T) {
	for _, file := range []string{"passive-client-welcome.json", "passive-client-handling-commit.json", "passive-client-random.json"} {
		for i, v := range vectortest.Load[passiveClientVector](t, file) {
			t.Run(fmt.Sprintf("%s/suite%d/%d", file, v.CipherSuite, i), func(t *testing.T) {
				checkMessage(t, "key_package", v.KeyPackage, WireFormatKeyPackage)
				checkMessage(t, "welcome", v.Welcome, WireFormatWelcome)
				if v.RatchetTree != nil {
					roundTrip[RatchetTree](t, "ratchet_tree", *v.RatchetTree)
				}
				for j, e := range v.Epochs {
					for k, p := range e.Proposals {
						checkMessage(t, fmt.Sprintf("epochs[%d].proposals[%d]", j, k), p, WireFormatPublicMessage)
					}
					checkMessage(t, fmt.Sprintf("epochs[%d].commit", j), e.Commit, WireFormatPublicMessage)
				}
			})
		}
	}
}

func TestWelcomeVectorsRoundTrip(t *testing.T) {
	type vector struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		KeyPackage  hexBytes `json:"key_package"`
		Welcome     hexBytes `json:"welcome"`
	}
	for i, v := range vectortest.Load[vector](t, "welcome.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			checkMessage(t, "key_package", v.KeyPackage, WireFormatKeyPackage)
			checkMessage(t, "welcome", v.Welcome, WireFormatWelcome)
		})
	}
}

func TestMessageProtectionVectorsRoundTrip(t *testing.T) {
	type vector struct {
		CipherSuite     suite.ID `json:"cipher_suite"`
		Proposal        hexBytes `json:"proposal"`
		ProposalPub     hexBytes `json:"proposal_pub"`
		ProposalPriv    hexBytes `json:"proposal_priv"`
		Commit          hexBytes `json:"commit"`
		CommitPub       hexBytes `json:"commit_pub"`
		CommitPriv      hexBytes `json:"commit_priv"`
		ApplicationPriv hexBytes `json:"application_priv"`
	}
	for i, v := range vectortest.Load[vector](t, "message-protection.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			roundTrip[Proposal](t, "proposal", v.Proposal)
			roundTrip[Commit](t, "commit", v.Commit)
			checkPublic(t, "proposal_pub", v.ProposalPub, ContentProposal)
			checkPublic(t, "commit_pub", v.CommitPub, ContentCommit)
			for name, data := range map[string][]byte{"proposal_priv": v.ProposalPriv, "commit_priv": v.CommitPriv, "application_priv": v.ApplicationPriv} {
				checkMessage(t, name, data, WireFormatPrivateMessage)
			}
		})
	}
}

func TestTranscriptHashVectorsRoundTrip(t *testing.T) {
	type vector struct {
		CipherSuite          suite.ID `json:"cipher_suite"`
		AuthenticatedContent hexBytes `json:"authenticated_content"`
	}
	for i, v := range vectortest.Load[vector](t, "transcript-hashes.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			ac := roundTrip[AuthenticatedContent](t, "authenticated_content", v.AuthenticatedContent)
			if ac != nil && ac.Content.ContentType != ContentCommit {
				t.Errorf("content type %d, want commit", ac.Content.ContentType)
			}
		})
	}
}

func TestTreeVectorsRoundTrip(t *testing.T) {
	type validation struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		Tree        hexBytes `json:"tree"`
	}
	for i, v := range vectortest.Load[validation](t, "tree-validation.json") {
		t.Run(fmt.Sprintf("tree-validation/suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			roundTrip[RatchetTree](t, "tree", v.Tree)
		})
	}
	type operations struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		Proposal    hexBytes `json:"proposal"`
		TreeBefore  hexBytes `json:"tree_before"`
		TreeAfter   hexBytes `json:"tree_after"`
	}
	for i, v := range vectortest.Load[operations](t, "tree-operations.json") {
		t.Run(fmt.Sprintf("tree-operations/suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			roundTrip[Proposal](t, "proposal", v.Proposal)
			roundTrip[RatchetTree](t, "tree_before", v.TreeBefore)
			roundTrip[RatchetTree](t, "tree_after", v.TreeAfter)
		})
	}
	type treekem struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		RatchetTree hexBytes `json:"ratchet_tree"`
		UpdatePaths []struct {
			UpdatePath hexBytes `json:"update_path"`
		} `json:"update_paths"`
	}
	for i, v := range vectortest.Load[treekem](t, "treekem.json") {
		t.Run(fmt.Sprintf("treekem/suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			roundTrip[RatchetTree](t, "ratchet_tree", v.RatchetTree)
			for j, p := range v.UpdatePaths {
				roundTrip[UpdatePath](t, fmt.Sprintf("update_paths[%d]", j), p.UpdatePath)
			}
		})
	}
}

func TestKeyScheduleVectorsRoundTrip(t *testing.T) {
	type vector struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		GroupID     hexBytes `json:"group_id"`
		Epochs      []struct {
			GroupContext hexBytes `json:"group_context"`
			TreeHash     hexBytes `json:"tree_hash"`
			CTH          hexBytes `json:"confirmed_transcript_hash"`
		} `json:"epochs"`
	}
	for i, v := range vectortest.Load[vector](t, "key-schedule.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			for j, e := range v.Epochs {
				gc := roundTrip[GroupContext](t, fmt.Sprintf("epochs[%d].group_context", j), e.GroupContext)
				if gc == nil {
					continue
				}
				if gc.CipherSuite != v.CipherSuite || gc.Epoch != uint64(j) || !bytes.Equal(gc.GroupID, v.GroupID) ||
					!bytes.Equal(gc.TreeHash, e.TreeHash) || !bytes.Equal(gc.ConfirmedTranscriptHash, e.CTH) {
					t.Errorf("epochs[%d].group_context fields do not match the vector", j)
				}
			}
		})
	}
}
