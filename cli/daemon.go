package cli

import (
	"context"
	"errors"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// daemon is what the CLI needs of spacepandad: rpc/client's *Client
// satisfies it, and tests use a fake. Each method is one RPC; Subscribe
// calls fn for every event, in order, and blocks until ctx ends or the
// connection does.
type daemon interface {
	Identity(ctx context.Context) (api.IdentityResult, error)
	Peers(ctx context.Context) ([]api.Peer, error)
	Connect(ctx context.Context, addr string) (api.ConnectResult, error)
	Ping(ctx context.Context) (api.PingResult, error)
	Create(ctx context.Context, p api.CreateParams) (api.Channel, error)
	Channels(ctx context.Context) ([]api.Channel, error)
	Info(ctx context.Context, channel string) (api.Channel, error)
	Invite(ctx context.Context, channel, peerID string) (api.ChangeResult, error)
	Members(ctx context.Context, channel string) ([]api.Member, error)
	Remove(ctx context.Context, channel, peerID string) (api.ChangeResult, error)
	Leave(ctx context.Context, channel string) (api.ChangeResult, error)
	Update(ctx context.Context, channel string) (api.ChangeResult, error)
	Invitations(ctx context.Context) ([]api.Invitation, error)
	Accept(ctx context.Context, invite string) (api.Channel, error)
	Decline(ctx context.Context, invite string) error
	Send(ctx context.Context, channel, text string) (api.SendResult, error)
	History(ctx context.Context, p api.HistoryParams) ([]api.Message, error)
	Subscribe(ctx context.Context, p api.SubscribeParams, fn func(api.Event)) error
	// SubscribeWith is Subscribe that says, through o.Ready, when the
	// daemon confirmed the subscription (chat reads history only then).
	SubscribeWith(ctx context.Context, p api.SubscribeParams, o client.SubscribeOptions, fn func(api.Event)) error
	Close() error
}

// rpcError is an error response from the daemon, as the CLI prints it.
type rpcError struct {
	Code    api.Code
	Name    string
	Message string
}

func (e *rpcError) Error() string { return e.Message }

// asRPCError finds the daemon's error response in err's chain, whatever
// type the client gave it (see clientError in dial.go).
func asRPCError(err error) (*rpcError, bool) {
	var re *rpcError
	if errors.As(err, &re) {
		return re, true
	}
	return clientError(err)
}
