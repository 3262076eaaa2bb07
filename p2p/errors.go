package p2p

import "errors"

// Errors returned by p2p, matched with errors.Is; the errors returned wrap
// them with the peer, channel or field concerned.
var (
	// ErrConfig: a Config that New cannot use.
	ErrConfig = errors.New("p2p: invalid config")
	// ErrClosed: the Host or Channel was closed.
	ErrClosed = errors.New("p2p: closed")
	// ErrNotFound: the DHT holds no valid value for a key, or no peer
	// could be found.
	ErrNotFound = errors.New("p2p: not found")
	// ErrChannelJoined: JoinChannel for a channel the host already joined.
	ErrChannelJoined = errors.New("p2p: channel already joined")
	// ErrMessageRejected: Publish of a message the channel's validator
	// rejects or that is too large.
	ErrMessageRejected = errors.New("p2p: message rejected")
	// ErrTooLarge: a Welcome, sync entry or page over its size limit, or
	// a Sync longer than MaxSyncPages pages.
	ErrTooLarge = errors.New("p2p: too large")
	// ErrWelcomeRejected: the invitee refused the Welcome; the error is a
	// *RefusedError carrying its reason.
	ErrWelcomeRejected = errors.New("p2p: welcome rejected")
	// ErrWelcomeExpired: a queued Welcome expired before its invitee
	// acknowledged it.
	ErrWelcomeExpired = errors.New("p2p: welcome expired undelivered")
	// ErrSyncRefused: the peer refused a sync request; the error is a
	// *RefusedError carrying its reason.
	ErrSyncRefused = errors.New("p2p: sync refused")
	// ErrGroupInfoRefused: the peer refused a group view request; the
	// error is a *RefusedError carrying its reason.
	ErrGroupInfoRefused = errors.New("p2p: group view refused")
	// ErrBusy: the host had no room left for an inbound Welcome
	// (Config.MaxWelcomeBuffers); the sender sees its stream reset.
	ErrBusy = errors.New("p2p: busy")
	// ErrProtocol: a peer broke a stream protocol (bad framing, a cursor
	// that comes round again, ...).
	ErrProtocol = errors.New("p2p: protocol violation")
)

// RefusedError is a refusal from the remote peer, with the reason it gave.
type RefusedError struct {
	Kind   error // ErrWelcomeRejected, ErrSyncRefused or ErrGroupInfoRefused
	Reason string
}

func (e *RefusedError) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap makes errors.Is(err, e.Kind) hold.
func (e *RefusedError) Unwrap() error { return e.Kind }
