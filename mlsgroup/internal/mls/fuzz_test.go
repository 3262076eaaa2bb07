package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// The fuzz targets check the two codec invariants on arbitrary input:
// decoding never panics (nor fails with anything but a wire error), and
// whatever decodes re-encodes to the very same bytes, so that every byte
// string has at most one decoding and signatures over re-encoded
// structures match the ones over received bytes.

// fuzzRoundTrip is the body of every fuzz target over a plain structure.
func fuzzRoundTrip[T any, P codec[T]](t *testing.T, data []byte) {
	x := new(T)
	if err := wire.Unmarshal(data, P(x)); err != nil {
		if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTrailingData) {
			t.Fatalf("decode error of an unexpected kind: %v", err)
		}
		return
	}
	got, err := wire.Marshal(P(x))
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("re-encoding differs\n got %x\nwant %x", got, data)
	}
}

// seeds collects the fuzzing seeds that the vector files hold, by type.
type seeds struct {
	messages, keyPackages, welcomes, groupInfos, trees,
	proposals, commits, groupSecrets, leafNodes [][]byte
	contents []contentSeed
}

type contentSeed struct {
	data []byte
	ct   ContentType
}

// loadSeeds reads messages.json and the key packages and welcomes of
// welcome.json and passive-client-welcome.json. The bodies of MLSMessages
// seed the targets of the structures they carry, and the contents of the
// public messages, with padding, seed PrivateMessageContent.
func loadSeeds(f *testing.F) *seeds {
	var s seeds
	addMessage := func(data []byte) {
		s.messages = append(s.messages, data)
		var m MLSMessage
		if err := wire.Unmarshal(data, &m); err != nil {
			f.Fatal(err)
		}
		body := data[4:] // after version and wire_format
		switch m.WireFormat {
		case WireFormatKeyPackage:
			s.keyPackages = append(s.keyPackages, body)
			leaf, _ := wire.Marshal(&m.KeyPackage.LeafNode)
			s.leafNodes = append(s.leafNodes, leaf)
		case WireFormatWelcome:
			s.welcomes = append(s.welcomes, body)
		case WireFormatGroupInfo:
			s.groupInfos = append(s.groupInfos, body)
		case WireFormatPublicMessage:
			c := &m.PublicMessage.Content
			pmc := &PrivateMessageContent{ApplicationData: c.ApplicationData, Proposal: c.Proposal, Commit: c.Commit,
				Auth: m.PublicMessage.Auth, PaddingLen: len(s.contents) % 3}
			data, err := MarshalPrivateMessageContent(c.ContentType, pmc)
			if err != nil {
				f.Fatal(err)
			}
			s.contents = append(s.contents, contentSeed{data, c.ContentType})
		}
	}
	for _, v := range vectortest.Load[messagesVector](f, "messages.json") {
		for _, m := range [][]byte{v.MLSWelcome, v.MLSGroupInfo, v.MLSKeyPackage, v.PublicMessageApplication,
			v.PublicMessageProposal, v.PublicMessageCommit, v.PrivateMessage} {
			addMessage(m)
		}
		s.trees = append(s.trees, v.RatchetTree)
		s.groupSecrets = append(s.groupSecrets, v.GroupSecrets)
		s.commits = append(s.commits, v.Commit)
		s.leafNodes = append(s.leafNodes, v.UpdateProposal)
		for typ, body := range map[ProposalType][]byte{
			ProposalAdd: v.AddProposal, ProposalUpdate: v.UpdateProposal, ProposalRemove: v.RemoveProposal,
			ProposalPSK: v.PreSharedKeyProposal, ProposalReInit: v.ReInitProposal,
			ProposalExternalInit: v.ExternalInitProposal, ProposalGroupContextExtensions: v.GroupContextExtensionsProposal,
		} {
			s.proposals = append(s.proposals, append([]byte{byte(typ >> 8), byte(typ)}, body...))
		}
	}
	for _, file := range []string{"welcome.json", "passive-client-welcome.json"} {
		for _, v := range vectortest.Load[passiveClientVector](f, file) {
			addMessage(v.KeyPackage)
			addMessage(v.Welcome)
			if v.RatchetTree != nil {
				s.trees = append(s.trees, *v.RatchetTree)
			}
		}
	}
	return &s
}

func addSeeds(f *testing.F, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
}

func FuzzMLSMessage(f *testing.F) {
	addSeeds(f, loadSeeds(f).messages)
	f.Fuzz(fuzzRoundTrip[MLSMessage])
}

func FuzzKeyPackage(f *testing.F) {
	addSeeds(f, loadSeeds(f).keyPackages)
	f.Fuzz(fuzzRoundTrip[KeyPackage])
}

func FuzzWelcome(f *testing.F) {
	addSeeds(f, loadSeeds(f).welcomes)
	f.Fuzz(fuzzRoundTrip[Welcome])
}

func FuzzGroupInfo(f *testing.F) {
	addSeeds(f, loadSeeds(f).groupInfos)
	f.Fuzz(fuzzRoundTrip[GroupInfo])
}

func FuzzRatchetTree(f *testing.F) {
	addSeeds(f, loadSeeds(f).trees)
	f.Fuzz(fuzzRoundTrip[RatchetTree])
}

func FuzzProposal(f *testing.F) {
	addSeeds(f, loadSeeds(f).proposals)
	f.Fuzz(fuzzRoundTrip[Proposal])
}

func FuzzCommit(f *testing.F) {
	addSeeds(f, loadSeeds(f).commits)
	f.Fuzz(fuzzRoundTrip[Commit])
}

func FuzzGroupSecrets(f *testing.F) {
	addSeeds(f, loadSeeds(f).groupSecrets)
	f.Fuzz(fuzzRoundTrip[GroupSecrets])
}

func FuzzLeafNode(f *testing.F) {
	addSeeds(f, loadSeeds(f).leafNodes)
	f.Fuzz(fuzzRoundTrip[LeafNode])
}

func FuzzPrivateMessageContent(f *testing.F) {
	for _, c := range loadSeeds(f).contents {
		f.Add(c.data, uint8(c.ct))
	}
	f.Fuzz(func(t *testing.T, data []byte, ct uint8) {
		c, err := UnmarshalPrivateMessageContent(data, ContentType(ct))
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("decode error of an unexpected kind: %v", err)
			}
			return
		}
		got, err := MarshalPrivateMessageContent(ContentType(ct), c)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs\n got %x\nwant %x", got, data)
		}
	})
}
