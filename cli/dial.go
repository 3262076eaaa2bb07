package cli

import (
	"context"
	"errors"

	"github.com/spacepanda/spacepanda/rpc/client"
)

// dial connects to the daemon's socket; tests replace it with a fake.
var dial = func(ctx context.Context, socket string) (daemon, error) {
	c, err := client.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	return c, nil
}

var _ daemon = (*client.Client)(nil)

// clientError converts rpc/client's error type to an rpcError.
func clientError(err error) (*rpcError, bool) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return nil, false
	}
	return &rpcError{Code: ce.Code, Name: ce.Name, Message: ce.Message}, true
}
