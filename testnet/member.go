package testnet

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/node"
)

// member is one running node as the runner drives it: a node.Node in
// this process, or a spacepandad process through its socket. Channels and
// peers are named as the RPC names them (hex channel IDs, peer ID
// strings), so that both kinds read alike.
type member interface {
	ID() string
	Addrs() []string
	CreateChannel(ctx context.Context, name string) (string, error)
	Invite(ctx context.Context, ch, peer string) error
	Accept(ctx context.Context, invite string) error
	Send(ctx context.Context, ch, body string) error
	Update(ctx context.Context, ch string) error
	// Members are the channel's other members.
	Members(ch string) ([]string, error)
	Info(ch string) (chanInfo, error)
	PublishKeyPackages(ctx context.Context) error
	// Close ends the node: gracefully in this process, by SIGKILL for a
	// daemon (the crash the process mode is for).
	Close() error
}

// chanInfo is what the runner reads of a member's view of a channel.
type chanInfo struct {
	Epoch         uint64
	Auth          string
	Members       int
	CommitPending bool
	// Convergence is the member's own word on its view (node's
	// Convergence* states): a member still "resolving" or "recovering"
	// has not converged even if its epoch matches.
	Convergence string
}

// event is a node event as either kind of member reports it.
type event struct {
	Type   node.EventType
	Time   time.Time
	Chan   string
	Epoch  uint64
	Sender string // a message's author
	Body   string
	Invite string
}

// inproc is a node.Node of this process.
type inproc struct{ n *node.Node }

func (m inproc) ID() string      { return m.n.ID().String() }
func (m inproc) Addrs() []string { return m.n.Addrs() }

func (m inproc) CreateChannel(ctx context.Context, name string) (string, error) {
	info, err := m.n.CreateChannel(ctx, name, "")
	return node.ChannelID(info.ID), err
}

func (m inproc) Invite(ctx context.Context, ch, p string) error {
	id, err := node.ParseChannelID(ch)
	if err != nil {
		return err
	}
	pid, err := peerID(p)
	if err != nil {
		return err
	}
	return m.n.Invite(ctx, id, pid)
}

func (m inproc) Accept(ctx context.Context, invite string) error {
	_, err := m.n.Accept(ctx, invite)
	return err
}

func (m inproc) Send(ctx context.Context, ch, body string) error {
	id, err := node.ParseChannelID(ch)
	if err != nil {
		return err
	}
	_, err = m.n.Send(ctx, id, body)
	return err
}

func (m inproc) Update(ctx context.Context, ch string) error {
	id, err := node.ParseChannelID(ch)
	if err != nil {
		return err
	}
	return m.n.Update(ctx, id)
}

func (m inproc) Members(ch string) ([]string, error) {
	id, err := node.ParseChannelID(ch)
	if err != nil {
		return nil, err
	}
	ms, err := m.n.Members(id)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mb := range ms {
		if !mb.Self {
			out = append(out, mb.Peer.String())
		}
	}
	return out, nil
}

func (m inproc) Info(ch string) (chanInfo, error) {
	id, err := node.ParseChannelID(ch)
	if err != nil {
		return chanInfo{}, err
	}
	info, err := m.n.Info(id)
	if err != nil {
		return chanInfo{}, err
	}
	return chanInfo{Epoch: info.Epoch, Auth: info.EpochAuthenticator, Members: info.Members, CommitPending: info.CommitPending, Convergence: info.Convergence}, nil
}

func (m inproc) PublishKeyPackages(ctx context.Context) error { return m.n.PublishKeyPackages(ctx) }
func (m inproc) Close() error                                 { return m.n.Close() }

// eventOf is a node event in the runner's form.
func eventOf(e node.Event) event {
	ev := event{Type: e.Type, Time: e.Time, Epoch: e.Epoch}
	if e.Channel != nil {
		ev.Chan = node.ChannelID(e.Channel)
	}
	if m := e.Message; m != nil {
		ev.Chan, ev.Sender, ev.Body = node.ChannelID(m.Channel), m.Sender.String(), m.Body
	}
	if e.Invitation != nil {
		ev.Invite = e.Invitation.ID
	}
	return ev
}

func peerID(s string) (peer.ID, error) { return peer.Decode(s) }

// pid is the node's peer ID as libp2p types it.
func (n *tnode) pid() peer.ID {
	id, _ := peer.Decode(n.id)
	return id
}
