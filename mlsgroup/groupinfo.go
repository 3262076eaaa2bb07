package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// GroupInfoSummary is what a GroupInfo says of its group, read before
// joining by it: a member that rejoins by external commit finds its old
// leaf here, to name in ExternalJoinOptions.Resync (§12.4.3.2).
type GroupInfoSummary struct {
	GroupID []byte
	Epoch   uint64
	Members []Member
}

// InspectGroupInfo checks a GroupInfo's signature and its ratchet tree
// (the extension, or ratchetTree when it carries none) as a joiner would
// (§12.4.3.1), and summarises them.
func InspectGroupInfo(cfg Config, groupInfo, ratchetTree []byte) (*GroupInfoSummary, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	gi, s, err := decodeGroupInfo(groupInfo)
	if err != nil {
		return nil, err
	}
	tree, err := groupInfoTree(c, s, gi, ratchetTree)
	if err != nil {
		return nil, err
	}
	out := &GroupInfoSummary{GroupID: bytes.Clone(gi.GroupContext.GroupID), Epoch: gi.GroupContext.Epoch}
	for l, leaf := range tree.Leaves() {
		out.Members = append(out.Members, memberOf(l, leaf))
	}
	return out, nil
}

// decodeGroupInfo reads an MLSMessage that must carry a GroupInfo, and
// the cipher suite it names.
func decodeGroupInfo(groupInfo []byte) (*mls.GroupInfo, *suite.Suite, error) {
	var m mls.MLSMessage
	if err := wire.Unmarshal(groupInfo, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.WireFormat != mls.WireFormatGroupInfo {
		return nil, nil, errorf(ErrUnexpectedMessage, "wire format %d is not a GroupInfo", m.WireFormat)
	}
	s, err := lookupSuite(m.GroupInfo.GroupContext.CipherSuite)
	if err != nil {
		return nil, nil, err
	}
	return m.GroupInfo, s, nil
}
