package p2p

import (
	"bufio"
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// groupInfoProtocol tells a member of a channel where the provider stands
// in it, and on request hands over a GroupInfo to rejoin by (RFC 9420
// §12.4.3.2):
//
//	client: frame(channel) byte(1: with GroupInfo, 0: without), then
//	        closes its side
//	server: status; for a refusal frame(reason); otherwise uvarint(epoch)
//	        frame(authenticator) frame(GroupInfo, empty when not asked)
//
// The view (epoch and authenticator) is what members compare to find out
// that they forked beyond what a rewind mends (RFC 9750 §5.2 suggests the
// epoch authenticator for that); it costs one small stream per member.
const groupInfoProtocol = protocol.ID("/spacepanda/groupinfo/1.0.0")

// maxAuthenticator caps the authenticator of a view: a hash or an epoch
// authenticator of any suite fits.
const maxAuthenticator = 64

// GroupView is where a member stands in a channel.
type GroupView struct {
	Epoch uint64
	// Authenticator names the epoch's state (the provider's choice, for
	// instance a hash of the epoch authenticator); members on one branch
	// have the same one.
	Authenticator []byte
	// GroupInfo is a signed GroupInfo of the epoch with the ratchet tree
	// and external_pub, when it was asked for.
	GroupInfo []byte
}

// GroupInfoProvider serves a channel's view to from; withGroupInfo asks
// for a GroupInfo too. A non-nil error refuses the request, for instance
// to a peer that is not a member of the channel; its text is the reason
// the requester sees.
type GroupInfoProvider func(ctx context.Context, from peer.ID, channel []byte, withGroupInfo bool) (GroupView, error)

// GroupView asks peer p where it stands in a channel and, with
// withGroupInfo, for a GroupInfo of its epoch. A refusal matches
// ErrGroupInfoRefused; a GroupInfo over MaxMessageSize is ErrTooLarge;
// when ctx ends first, the error wraps ctx.Err().
func (h *Host) GroupView(ctx context.Context, p peer.ID, channel []byte, withGroupInfo bool) (GroupView, error) {
	if len(channel) > maxChannelID {
		return GroupView{}, fmt.Errorf("%w: channel ID", ErrTooLarge)
	}
	what := "p2p: group view from " + p.String()
	if err := h.ConnectPeer(ctx, p); err != nil {
		return GroupView{}, h.blame(ctx, what, err)
	}
	v, err := h.groupView(ctx, p, channel, withGroupInfo)
	return v, h.blame(ctx, what, err)
}

func (h *Host) groupView(ctx context.Context, p peer.ID, channel []byte, withGroupInfo bool) (v GroupView, err error) {
	ctx, cancel := h.streamContext(ctx)
	defer cancel()
	s, err := h.host.NewStream(ctx, p, groupInfoProtocol)
	if err != nil {
		return GroupView{}, fmt.Errorf("opening stream: %w", err)
	}
	defer func() {
		if err != nil {
			s.Reset()
		} else {
			s.Close()
		}
	}()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	w := bufio.NewWriter(s)
	writeGroupInfoRequest(w, channel, withGroupInfo)
	if err := w.Flush(); err != nil {
		return GroupView{}, fmt.Errorf("sending request: %w", err)
	}
	_ = s.CloseWrite()
	r := bufio.NewReader(s)
	if err := readStatus(r, ErrGroupInfoRefused); err != nil {
		return GroupView{}, err
	}
	v, err = readGroupView(r, h.cfg.MaxMessageSize)
	if err != nil {
		return GroupView{}, err
	}
	if !withGroupInfo && len(v.GroupInfo) > 0 {
		return GroupView{}, fmt.Errorf("%w: a GroupInfo nobody asked for", ErrProtocol)
	}
	return v, nil
}

func writeGroupInfoRequest(w *bufio.Writer, channel []byte, withGroupInfo bool) {
	writeFrame(w, channel)
	if withGroupInfo {
		w.WriteByte(1)
	} else {
		w.WriteByte(0)
	}
}

// readGroupInfoRequest reads what writeGroupInfoRequest writes.
func readGroupInfoRequest(r *bufio.Reader) (channel []byte, withGroupInfo bool, err error) {
	if channel, err = readFrame(r, maxChannelID); err != nil {
		return nil, false, err
	}
	b, err := readByte(r)
	if err != nil {
		return nil, false, err
	}
	if b > 1 {
		return nil, false, fmt.Errorf("%w: GroupInfo flag %d", ErrProtocol, b)
	}
	return channel, b == 1, nil
}

// writeGroupView writes a view after the OK status.
func writeGroupView(w *bufio.Writer, v GroupView) {
	writeUvarint(w, v.Epoch)
	writeFrame(w, v.Authenticator)
	writeFrame(w, v.GroupInfo)
}

// readGroupView reads what writeGroupView writes, refusing a GroupInfo of
// more than maxGroupInfo bytes, so that a peer cannot make it allocate
// more.
func readGroupView(r *bufio.Reader, maxGroupInfo int) (v GroupView, err error) {
	if v.Epoch, err = readUvarint(r); err != nil {
		return GroupView{}, err
	}
	if v.Authenticator, err = readFrame(r, maxAuthenticator); err != nil {
		return GroupView{}, err
	}
	if len(v.Authenticator) == 0 {
		return GroupView{}, fmt.Errorf("%w: view without authenticator", ErrProtocol)
	}
	if v.GroupInfo, err = readFrame(r, maxGroupInfo); err != nil {
		return GroupView{}, err
	}
	if len(v.GroupInfo) == 0 {
		v.GroupInfo = nil
	}
	return v, nil
}

func (h *Host) handleGroupInfo(s network.Stream) {
	from := s.Conn().RemotePeer()
	if !h.viewStreams.acquire(from) {
		h.log.Warn("too many group view streams", "remote", from.String(), "max", h.cfg.MaxPeerStreams)
		s.Reset()
		return
	}
	defer h.viewStreams.release(from)
	ctx, cancel := h.streamContext(h.ctx)
	defer cancel()
	defer guard(ctx, s, h.cfg.StreamTimeout)()
	r := bufio.NewReader(s)
	channel, withGroupInfo, err := readGroupInfoRequest(r)
	if err != nil {
		h.log.Warn("bad group view request", "remote", from.String(), "err", err)
		s.Reset()
		return
	}
	v, refusal := h.cfg.GroupInfoProvider(ctx, from, channel, withGroupInfo)
	if refusal == nil {
		switch {
		case len(v.Authenticator) == 0 || len(v.Authenticator) > maxAuthenticator:
			refusal = fmt.Errorf("group view provider returned an unservable view")
		case len(v.GroupInfo) > h.cfg.MaxMessageSize:
			refusal = fmt.Errorf("GroupInfo over %d bytes", h.cfg.MaxMessageSize)
		case !withGroupInfo:
			v.GroupInfo = nil
		}
	}
	w := bufio.NewWriter(s)
	writeStatus(w, refusal)
	if refusal == nil {
		writeGroupView(w, v)
	} else {
		h.log.Info("group view refused", "remote", from.String(), "err", refusal)
	}
	if err := w.Flush(); err != nil {
		s.Reset()
		return
	}
	s.Close()
}
