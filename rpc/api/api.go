// Package api is the contract of spacepandad's local JSON-RPC 2.0 socket:
// method names, request and response types, and error codes. It imports
// nothing but the standard library, so that any client (the spacepanda
// CLI, scripts, other languages reading this file) depends on the contract
// and nothing else.
//
// # Wire
//
// The socket speaks JSON-RPC 2.0, one message per line (newline-delimited
// JSON, as geth's IPC does): `socat - UNIX-CONNECT:spacepanda.sock` is a
// client. Requests carry params as a JSON object. The server pushes events
// to a connection that called MethodSubscribe as notifications named
// NotifyEvent whose params are an Event.
//
// Byte strings (channel IDs) are lower-case hex; times are RFC 3339 with
// nanoseconds; peer IDs are base58 (12D3Koo...).
package api

import (
	"fmt"
	"time"
)

// Version is the version of this contract; the daemon reports it in
// IdentityResult.APIVersion, and a client warns when it differs.
const Version = 1

// Method names.
const (
	MethodIdentity      = "node.identity"      // IdentityParams -> IdentityResult
	MethodPeers         = "node.peers"         // nil -> []Peer
	MethodConnect       = "node.connect"       // ConnectParams -> ConnectResult
	MethodPing          = "node.ping"          // nil -> PingResult: a no-op round trip
	MethodCreate        = "channel.create"     // CreateParams -> Channel
	MethodChannels      = "channel.list"       // nil -> []Channel
	MethodInfo          = "channel.info"       // ChannelParams -> Channel
	MethodInvite        = "channel.invite"     // PeerParams -> ChangeResult
	MethodMembers       = "channel.members"    // ChannelParams -> []Member
	MethodRemove        = "channel.remove"     // PeerParams -> ChangeResult
	MethodLeave         = "channel.leave"      // ChannelParams -> ChangeResult
	MethodUpdate        = "channel.update"     // ChannelParams -> ChangeResult
	MethodInvitations   = "invite.list"        // nil -> []Invitation
	MethodAccept        = "invite.accept"      // InviteParams -> Channel
	MethodDecline       = "invite.decline"     // InviteParams -> struct{}
	MethodSend          = "message.send"       // SendParams -> SendResult
	MethodHistory       = "message.history"    // HistoryParams -> []Message
	MethodSubscribe     = "events.subscribe"   // SubscribeParams -> SubscribeResult, then NotifyEvent
	MethodUnsubscribe   = "events.unsubscribe" // nil -> struct{}
	NotifyEvent         = "event"              // server -> client: Event
	MaxRequestBytes     = 1 << 20              // a request line longer than this closes the connection
	MaxPendingNotifies  = 4096                 // notifications a client may leave unread before it is disconnected
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// IdentityParams is empty; a struct so that it can grow.
type IdentityParams struct{}

// IdentityResult describes the daemon.
type IdentityResult struct {
	PeerID     string   `json:"peer_id"`
	Addrs      []string `json:"addrs"` // the multiaddrs actually bound, each ending in /p2p/<peer_id>
	Version    string   `json:"version"`
	APIVersion int      `json:"api_version"`
	DataDir    string   `json:"data_dir"`
	Socket     string   `json:"socket"`
}

// Peer is a connected peer.
type Peer struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// ConnectParams names a multiaddr with /p2p/.
type ConnectParams struct {
	Addr string `json:"addr"`
}

// ConnectResult is the peer connected to.
type ConnectResult struct {
	PeerID string `json:"peer_id"`
}

// PingResult is the daemon's time, for a no-op round trip.
type PingResult struct {
	Time time.Time `json:"time"`
}

// CreateParams creates a channel.
type CreateParams struct {
	Name  string `json:"name"`
	Topic string `json:"topic,omitempty"`
}

// ChannelParams names a channel by ID (hex) or by a unique name.
type ChannelParams struct {
	Channel string `json:"channel"`
}

// PeerParams names a channel and a peer.
type PeerParams struct {
	Channel string `json:"channel"`
	PeerID  string `json:"peer_id"`
}

// Channel describes a channel.
type Channel struct {
	Channel            string `json:"channel"` // ID, hex
	Name               string `json:"name"`
	Topic              string `json:"topic,omitempty"`
	Epoch              uint64 `json:"epoch"`
	EpochAuthenticator string `json:"epoch_authenticator"` // hex
	Members            int    `json:"members"`
	CipherSuite        uint16 `json:"cipher_suite"`
	State              string `json:"state"` // active, leaving, left
	CommitPending      bool   `json:"commit_pending"`
	// Convergence is settled, resolving, recovering or unrecoverable
	// (ConvergenceNote says why).
	Convergence     string `json:"convergence,omitempty"`
	ConvergenceNote string `json:"convergence_note,omitempty"`
}

// ChangeResult is the outcome of a change to a group, returned once the
// commit won its epoch and was merged.
type ChangeResult struct {
	Channel string `json:"channel"`
	PeerID  string `json:"peer_id,omitempty"`
	Epoch   uint64 `json:"epoch"`
}

// Member is a member of a channel.
type Member struct {
	PeerID string `json:"peer_id"`
	Self   bool   `json:"self"`
}

// Invitation is a pending invitation.
type Invitation struct {
	Invite     string    `json:"invite"` // its ID, for accept and decline
	Channel    string    `json:"channel"`
	Name       string    `json:"name"`
	Topic      string    `json:"topic,omitempty"`
	From       string    `json:"from"` // the inviter's peer ID
	Members    []string  `json:"members"`
	ReceivedAt time.Time `json:"received_at"`
}

// InviteParams names a pending invitation.
type InviteParams struct {
	Invite string `json:"invite"`
}

// SendParams sends text (UTF-8, at most MaxTextBytes) to a channel.
type SendParams struct {
	Channel string `json:"channel"`
	Text    string `json:"text"`
}

// MaxTextBytes is the largest message text.
const MaxTextBytes = 16 << 10

// SendResult is returned once the message is durable and published.
type SendResult struct {
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Seq     uint64 `json:"seq"`
}

// HistoryParams pages a channel's history: with neither Before nor After,
// the newest Limit messages.
type HistoryParams struct {
	Channel string `json:"channel"`
	Before  uint64 `json:"before,omitempty"`
	After   uint64 `json:"after,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// Message is a message of a channel's history. History returns them
// oldest first.
type Message struct {
	Channel string    `json:"channel"`
	Seq     uint64    `json:"seq"`
	ID      string    `json:"id"`
	From    string    `json:"from"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"` // the author's clock, as claimed
}

// SubscribeParams starts a subscription to the daemon's events. With a
// cursor (an Event's or a SubscribeResult's Cursor, an opaque string), the
// events after it are replayed first, then live ones follow, with no gap
// and no duplicate. A cursor the daemon no longer holds is
// CodeCursorExpired: one older than the events it keeps, or one from
// before the daemon last restarted (cursors are only valid within one run
// of the daemon; after a restart, catch up from message history). A string
// that is no cursor at all is CodeInvalidArgument. CursorOldest replays
// every event the daemon holds. Channel, if set, filters.
type SubscribeParams struct {
	Cursor  string `json:"cursor,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// CursorOldest is the cursor before the oldest event the daemon holds, in
// whatever run: subscribing from it replays everything held.
const CursorOldest = "0"

// SubscribeResult is the cursor of the last event before the
// subscription went live.
type SubscribeResult struct {
	Cursor string `json:"cursor"`
}

// Event is a notification.
type Event struct {
	Cursor     string      `json:"cursor"`
	Type       string      `json:"type"` // message, member_joined, member_left, member_removed, invite, channel_joined, channel_left, epoch, commit_lost, rewound, rejoined, error
	Time       time.Time   `json:"time"`
	Channel    string      `json:"channel,omitempty"`
	Epoch      uint64      `json:"epoch,omitempty"`
	PeerID     string      `json:"peer_id,omitempty"`
	Message    *Message    `json:"message,omitempty"`
	Invitation *Invitation `json:"invitation,omitempty"`
	Error      string      `json:"error,omitempty"`
}

// Code is a JSON-RPC error code. The codes below are in JSON-RPC's
// server-error range (-32000 to -32099) and stable: clients match them.
type Code int

// Error codes.
const (
	CodeInternal          Code = -32000
	CodeInvalidArgument   Code = -32001
	CodeUnknownChannel    Code = -32002
	CodeNotMember         Code = -32003
	CodeAlreadyMember     Code = -32004
	CodeNoKeyPackages     Code = -32005
	CodeKeyPackageExpired Code = -32006
	CodePeerUnreachable   Code = -32007
	CodeTooLarge          Code = -32008
	CodeUnknownInvitation Code = -32009
	CodeAmbiguousChannel  Code = -32010
	CodeCommitLost        Code = -32011
	CodeCursorExpired     Code = -32012
	CodeForbidden         Code = -32013 // browser headers, another uid
	CodeTimeout           Code = -32014
	CodeShuttingDown      Code = -32015
)

var codeNames = map[Code]string{
	CodeInternal: "internal", CodeInvalidArgument: "invalid_argument", CodeUnknownChannel: "unknown_channel",
	CodeNotMember: "not_member", CodeAlreadyMember: "already_member", CodeNoKeyPackages: "no_key_packages",
	CodeKeyPackageExpired: "key_package_expired", CodePeerUnreachable: "peer_unreachable", CodeTooLarge: "too_large",
	CodeUnknownInvitation: "unknown_invitation", CodeAmbiguousChannel: "ambiguous_channel", CodeCommitLost: "commit_lost",
	CodeCursorExpired: "cursor_expired", CodeForbidden: "forbidden", CodeTimeout: "timeout", CodeShuttingDown: "shutting_down",
	// JSON-RPC 2.0's own.
	-32700: "parse_error", -32600: "invalid_request", -32601: "method_not_found", -32602: "invalid_params", -32603: "internal_error",
}

// Name is the code's stable name, as the CLI prints it.
func (c Code) Name() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", int(c))
}

// ErrorData is the data member of an error response: the code's name.
type ErrorData struct {
	Name string `json:"name"`
}
