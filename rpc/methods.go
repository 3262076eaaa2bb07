package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/handler"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/rpc/api"
)

// none is the params of methods that take nothing. A struct rather than
// no argument so that both an absent params and {} are accepted, as
// scripts send either.
type none struct{}

// methods maps every api method to its handler. The handler package
// decodes params into the typed argument and answers -32602 when they do
// not fit.
func (s *Server) methods() handler.Map {
	return handler.Map{
		api.MethodIdentity:    typed(s.identity),
		api.MethodPeers:       typed(s.peers),
		api.MethodConnect:     typed(s.connect),
		api.MethodPing:        typed(s.ping),
		api.MethodCreate:      typed(s.create),
		api.MethodChannels:    typed(s.channels),
		api.MethodInfo:        typed(s.info),
		api.MethodInvite:      typed(s.invite),
		api.MethodMembers:     typed(s.members),
		api.MethodRemove:      typed(s.remove),
		api.MethodLeave:       typed(s.leave),
		api.MethodUpdate:      typed(s.update),
		api.MethodInvitations: typed(s.invitations),
		api.MethodAccept:      typed(s.accept),
		api.MethodDecline:     typed(s.decline),
		api.MethodSend:        typed(s.send),
		api.MethodHistory:     typed(s.history),
		api.MethodSubscribe:   typed(s.subscribe),
		api.MethodUnsubscribe: typed(s.unsubscribe),
	}
}

// typed wraps a method: params must be a JSON object (the api's types
// are objects; jrpc2 would otherwise map an array onto the fields by
// position, so ["x"] would be read as a channel name).
func typed(fn any) jrpc2.Handler {
	fi, err := handler.Check(fn)
	if err != nil {
		panic(err) // a method's signature is a programming error
	}
	return fi.AllowArray(false).Wrap()
}

// rpcError is an api error response: code, message, data {"name": ...}.
func rpcError(code api.Code, format string, args ...any) *jrpc2.Error {
	return (&jrpc2.Error{Code: jrpc2.Code(code), Message: fmt.Sprintf(format, args...)}).WithData(api.ErrorData{Name: code.Name()})
}

// mapError gives a node error its stable api code. The message keeps the
// node's text, which names what is concerned.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var je *jrpc2.Error
	if errors.As(err, &je) {
		return je
	}
	code := api.CodeInternal
	switch {
	case errors.Is(err, node.ErrUnknownChannel):
		code = api.CodeUnknownChannel
	case errors.Is(err, node.ErrNotMember):
		code = api.CodeNotMember
	case errors.Is(err, node.ErrAlreadyMember):
		code = api.CodeAlreadyMember
	case errors.Is(err, node.ErrTooLarge):
		code = api.CodeTooLarge
	case errors.Is(err, node.ErrUnknownInvitation):
		code = api.CodeUnknownInvitation
	case errors.Is(err, node.ErrCommitLost):
		code = api.CodeCommitLost
	case errors.Is(err, node.ErrCursorExpired):
		code = api.CodeCursorExpired
	case errors.Is(err, node.ErrClosed):
		code = api.CodeShuttingDown
	// Expired first: a peer whose KeyPackages all expired also has none
	// usable, and the more precise name helps the user more.
	case node.IsKeyPackageExpired(err):
		code = api.CodeKeyPackageExpired
	case node.IsNoKeyPackages(err):
		code = api.CodeNoKeyPackages
	case node.IsPeerUnreachable(err):
		code = api.CodePeerUnreachable
	case errors.Is(err, node.ErrInvalidArgument), errors.Is(err, node.ErrBadIdentity):
		code = api.CodeInvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		code = api.CodeTimeout
	case errors.Is(err, context.Canceled):
		code = api.CodeShuttingDown
	}
	return rpcError(code, "%s", err.Error())
}

// resolve finds a channel by hex ID or unique name (see the package
// documentation).
func (s *Server) resolve(ref string) ([]byte, error) {
	if ref == "" {
		return nil, rpcError(api.CodeInvalidArgument, "a channel (ID or name) is required")
	}
	chans := s.n.Channels()
	if id, err := node.ParseChannelID(ref); err == nil {
		for _, c := range chans {
			if string(c.ID) == string(id) {
				return id, nil
			}
		}
	}
	var found [][]byte
	for _, c := range chans {
		if c.Name == ref {
			found = append(found, c.ID)
		}
	}
	switch len(found) {
	case 0:
		return nil, rpcError(api.CodeUnknownChannel, "no channel with ID or name %q", ref)
	case 1:
		return found[0], nil
	default:
		return nil, rpcError(api.CodeAmbiguousChannel, "%d channels are named %q; name one by its ID", len(found), ref)
	}
}

func parsePeer(s string) (peer.ID, error) {
	if s == "" {
		return "", rpcError(api.CodeInvalidArgument, "a peer ID is required")
	}
	p, err := peer.Decode(s)
	if err != nil {
		return "", rpcError(api.CodeInvalidArgument, "peer ID %q: %v", s, err)
	}
	return p, nil
}

func channelOf(c node.ChannelInfo) api.Channel {
	return api.Channel{
		Channel: node.ChannelID(c.ID), Name: c.Name, Topic: c.Topic, Epoch: c.Epoch,
		EpochAuthenticator: c.EpochAuthenticator, Members: c.Members, CipherSuite: c.CipherSuite,
		State: c.State, CommitPending: c.CommitPending, Convergence: c.Convergence, ConvergenceNote: c.ConvergenceNote,
	}
}

func messageOf(m node.Message) api.Message {
	return api.Message{
		Channel: node.ChannelID(m.Channel), Seq: m.Seq, ID: m.ID, From: m.Sender.String(),
		Text: m.Body, Time: m.SentAt,
	}
}

func invitationOf(i node.Invitation) api.Invitation {
	members := make([]string, len(i.Members))
	for k, m := range i.Members {
		members[k] = m.String()
	}
	return api.Invitation{
		Invite: i.ID, Channel: node.ChannelID(i.Channel), Name: i.Name, Topic: i.Topic,
		From: i.Inviter.String(), Members: members, ReceivedAt: i.ReceivedAt,
	}
}

func (s *Server) identity(ctx context.Context, _ api.IdentityParams) (api.IdentityResult, error) {
	s.mu.Lock()
	sock := s.opts.SocketPath
	s.mu.Unlock()
	addrs := s.n.Addrs()
	if addrs == nil {
		addrs = []string{}
	}
	return api.IdentityResult{
		PeerID: s.n.ID().String(), Addrs: addrs, Version: s.opts.Version,
		APIVersion: api.Version, DataDir: s.n.DataDir(), Socket: sock,
	}, nil
}

func (s *Server) peers(ctx context.Context, _ none) ([]api.Peer, error) {
	ps := s.n.Peers()
	out := make([]api.Peer, 0, len(ps))
	for _, p := range ps {
		// node does not expose a peer's addresses yet; an empty list
		// keeps the field's type stable for scripts.
		out = append(out, api.Peer{PeerID: p.String(), Addrs: []string{}})
	}
	return out, nil
}

func (s *Server) connect(ctx context.Context, p api.ConnectParams) (api.ConnectResult, error) {
	if p.Addr == "" {
		return api.ConnectResult{}, rpcError(api.CodeInvalidArgument, "a multiaddr with /p2p/ is required")
	}
	info, err := peer.AddrInfoFromString(p.Addr)
	if err != nil {
		return api.ConnectResult{}, rpcError(api.CodeInvalidArgument, "multiaddr %q: %v", p.Addr, err)
	}
	if err := s.n.Connect(ctx, p.Addr); err != nil {
		if !errors.Is(err, node.ErrInvalidArgument) && !errors.Is(err, node.ErrClosed) && ctx.Err() == nil {
			// Any failure to dial a well-formed address is the peer
			// being unreachable, whatever layer said so.
			return api.ConnectResult{}, rpcError(api.CodePeerUnreachable, "%s", err.Error())
		}
		return api.ConnectResult{}, mapError(err)
	}
	return api.ConnectResult{PeerID: info.ID.String()}, nil
}

func (s *Server) ping(ctx context.Context, _ none) (api.PingResult, error) {
	return api.PingResult{Time: time.Now()}, nil
}

func (s *Server) create(ctx context.Context, p api.CreateParams) (api.Channel, error) {
	c, err := s.n.CreateChannel(ctx, p.Name, p.Topic)
	if err != nil {
		return api.Channel{}, mapError(err)
	}
	return channelOf(c), nil
}

func (s *Server) channels(ctx context.Context, _ none) ([]api.Channel, error) {
	cs := s.n.Channels()
	out := make([]api.Channel, 0, len(cs))
	for _, c := range cs {
		out = append(out, channelOf(c))
	}
	return out, nil
}

func (s *Server) info(ctx context.Context, p api.ChannelParams) (api.Channel, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.Channel{}, err
	}
	c, err := s.n.Info(id)
	if err != nil {
		return api.Channel{}, mapError(err)
	}
	return channelOf(c), nil
}

// changed is the ChangeResult of a change that returned: the epoch is
// read after it, since the node's change methods return only once the
// commit won and merged.
func (s *Server) changed(id []byte, p string) (api.ChangeResult, error) {
	c, err := s.n.Info(id)
	if err != nil {
		return api.ChangeResult{}, mapError(err)
	}
	return api.ChangeResult{Channel: node.ChannelID(id), PeerID: p, Epoch: c.Epoch}, nil
}

func (s *Server) invite(ctx context.Context, p api.PeerParams) (api.ChangeResult, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.ChangeResult{}, err
	}
	pid, err := parsePeer(p.PeerID)
	if err != nil {
		return api.ChangeResult{}, err
	}
	if err := s.n.Invite(ctx, id, pid); err != nil {
		return api.ChangeResult{}, mapError(err)
	}
	return s.changed(id, pid.String())
}

func (s *Server) members(ctx context.Context, p api.ChannelParams) ([]api.Member, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return nil, err
	}
	ms, err := s.n.Members(id)
	if err != nil {
		return nil, mapError(err)
	}
	out := make([]api.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.Member{PeerID: m.Peer.String(), Self: m.Self})
	}
	return out, nil
}

func (s *Server) remove(ctx context.Context, p api.PeerParams) (api.ChangeResult, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.ChangeResult{}, err
	}
	pid, err := parsePeer(p.PeerID)
	if err != nil {
		return api.ChangeResult{}, err
	}
	if err := s.n.Remove(ctx, id, pid); err != nil {
		return api.ChangeResult{}, mapError(err)
	}
	return s.changed(id, pid.String())
}

func (s *Server) leave(ctx context.Context, p api.ChannelParams) (api.ChangeResult, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.ChangeResult{}, err
	}
	if err := s.n.Leave(ctx, id); err != nil {
		return api.ChangeResult{}, mapError(err)
	}
	return s.changed(id, "")
}

func (s *Server) update(ctx context.Context, p api.ChannelParams) (api.ChangeResult, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.ChangeResult{}, err
	}
	if err := s.n.Update(ctx, id); err != nil {
		return api.ChangeResult{}, mapError(err)
	}
	return s.changed(id, "")
}

func (s *Server) invitations(ctx context.Context, _ none) ([]api.Invitation, error) {
	is := s.n.Invitations()
	out := make([]api.Invitation, 0, len(is))
	for _, i := range is {
		out = append(out, invitationOf(i))
	}
	return out, nil
}

func (s *Server) accept(ctx context.Context, p api.InviteParams) (api.Channel, error) {
	if p.Invite == "" {
		return api.Channel{}, rpcError(api.CodeInvalidArgument, "an invitation ID is required")
	}
	c, err := s.n.Accept(ctx, p.Invite)
	if err != nil {
		return api.Channel{}, mapError(err)
	}
	return channelOf(c), nil
}

func (s *Server) decline(ctx context.Context, p api.InviteParams) (struct{}, error) {
	if p.Invite == "" {
		return struct{}{}, rpcError(api.CodeInvalidArgument, "an invitation ID is required")
	}
	return struct{}{}, mapError(s.n.Decline(p.Invite))
}

func (s *Server) send(ctx context.Context, p api.SendParams) (api.SendResult, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return api.SendResult{}, err
	}
	if len(p.Text) > api.MaxTextBytes {
		return api.SendResult{}, rpcError(api.CodeTooLarge, "text is %d bytes, over the %d-byte limit", len(p.Text), api.MaxTextBytes)
	}
	m, err := s.n.Send(ctx, id, p.Text)
	if err != nil {
		return api.SendResult{}, mapError(err)
	}
	return api.SendResult{Channel: node.ChannelID(id), ID: m.ID, Seq: m.Seq}, nil
}

func (s *Server) history(ctx context.Context, p api.HistoryParams) ([]api.Message, error) {
	id, err := s.resolve(p.Channel)
	if err != nil {
		return nil, err
	}
	if p.Limit < 0 || p.Limit > api.MaxHistoryLimit {
		return nil, rpcError(api.CodeInvalidArgument, "limit %d is outside 0..%d", p.Limit, api.MaxHistoryLimit)
	}
	if p.Before != 0 && p.After != 0 {
		return nil, rpcError(api.CodeInvalidArgument, "before and after cannot both be set")
	}
	limit := p.Limit
	if limit == 0 {
		limit = api.DefaultHistoryLimit
	}
	opts := node.HistoryOptions{Before: p.Before, After: p.After, Limit: limit}
	if p.After != 0 {
		opts.Ascending = true
	}
	ms, err := s.n.History(id, opts)
	if err != nil {
		return nil, mapError(err)
	}
	out := make([]api.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageOf(m))
	}
	// The node pages newest first unless asked to ascend; the api
	// promises oldest first.
	if !opts.Ascending {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}
