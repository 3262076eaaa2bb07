package node

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/p2p"
)

// The layers above node (rpc) may not import keypkgdir or p2p, yet they
// must tell these failures apart to give them stable error codes; these
// predicates let them match the wrapped errors through node.

// IsNoKeyPackages reports whether err says the peer has no usable
// KeyPackage published (none, or the lookup failed).
func IsNoKeyPackages(err error) bool { return errors.Is(err, keypkgdir.ErrNoKeyPackages) }

// IsKeyPackageExpired reports whether err says every KeyPackage the peer
// published has expired.
func IsKeyPackageExpired(err error) bool { return errors.Is(err, keypkgdir.ErrKeyPackageExpired) }

// IsPeerUnreachable reports whether err says a peer could not be found or
// dialled.
func IsPeerUnreachable(err error) bool {
	var de *swarm.DialError
	return errors.As(err, &de) ||
		errors.Is(err, p2p.ErrNotFound) ||
		errors.Is(err, routing.ErrNotFound) ||
		errors.Is(err, swarm.ErrDialBackoff) ||
		errors.Is(err, swarm.ErrNoAddresses) ||
		errors.Is(err, swarm.ErrNoGoodAddresses)
}
