package cli

import (
	"context"
	"net"
)

// dial connects to the daemon's socket. This build links no RPC client
// (rpc/client is not in the module yet): it only tells a missing daemon
// from a present one, so that the no-daemon message stays right.
var dial = func(ctx context.Context, socket string) (daemon, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	c.Close()
	return nil, &rpcError{Code: codeNoClient, Name: "no_client", Message: "this spacepanda was built without rpc/client"}
}

// clientError converts rpc/client's error type to an rpcError.
func clientError(error) (*rpcError, bool) { return nil, false }
