// Package client is a typed Go client of spacepandad's JSON-RPC socket
// (see package api for the wire). It imports only rpc/api, jrpc2 and the
// standard library, so that the CLI depends on the contract and nothing of
// the node.
//
// A Client is one connection; its methods are safe for concurrent use.
// Subscribe opens a connection of its own, so that a client can keep
// calling methods while it watches events.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/channel"

	"github.com/spacepanda/spacepanda/rpc/api"
)

// ErrNoDaemon is wrapped by Dial's error when nothing listens on the
// socket (no file, or a stale one), so that a caller can tell the user to
// start spacepandad.
var ErrNoDaemon = errors.New("client: no daemon listening")

// ErrDisconnected is wrapped by the error of a call or Subscribe when the
// daemon closed the connection: it shut down, it refused a connection
// from another user (SO_PEERCRED), or it dropped a subscriber for falling
// api.MaxPendingNotifies behind.
//
// ErrPermission is wrapped by Dial's error when the socket is not this
// user's to open (its mode is 0600, for the daemon's user).
//
// ErrSocketOwner is wrapped by Dial's (and Subscribe's) error when what is
// at the socket path is not a socket owned by this process's uid: another
// user's daemon (or a process squatting on the path, e.g. in a shared
// directory) would otherwise receive everything this client sends, its
// messages included. Root is no exception: the daemon refuses other uids
// anyway (SO_PEERCRED), so it could never be served.
var (
	ErrDisconnected = errors.New("client: disconnected by the daemon")
	ErrPermission   = errors.New("client: permission denied")
	ErrSocketOwner  = errors.New("client: the socket is not this user's")
)

// Error is an error response of the daemon: Code is stable, Name is its
// stable name (api.Code.Name), Message is for people.
type Error struct {
	Code    api.Code
	Name    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Name, int(e.Code), e.Message)
}

// Client is a connection to the daemon.
type Client struct {
	path string
	conn net.Conn
	rpc  *jrpc2.Client
}

// Dial connects to the daemon's socket.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	conn, err := dial(ctx, socketPath)
	if err != nil {
		return nil, err
	}
	c := &Client{path: socketPath, conn: conn}
	c.rpc = jrpc2.NewClient(channel.Line(conn, conn), nil)
	return c, nil
}

func dial(ctx context.Context, socketPath string) (net.Conn, error) {
	if err := checkSocket(socketPath); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w at %s: %w", ErrNoDaemon, socketPath, err)
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("%w: %s: %w", ErrPermission, socketPath, err)
		}
		return nil, fmt.Errorf("client: dial %s: %w", socketPath, err)
	}
	return conn, nil
}

// checkSocket refuses a path that is not a socket of this uid. Lstat, so
// that a symlink planted at the path is refused rather than followed to
// someone's socket. What changes between this check and the connect is
// the daemon's side of the contract: it checks the peer's uid too.
func checkSocket(socketPath string) error {
	fi, err := os.Lstat(socketPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s: %w", ErrNoDaemon, socketPath, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s: %w", ErrPermission, socketPath, err)
	case err != nil:
		return fmt.Errorf("client: %s: %w", socketPath, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is not a socket (%s)", ErrSocketOwner, socketPath, fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("client: %s: no owner in the file's status", socketPath)
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to %s, not to %s", ErrSocketOwner, socketPath, userName(st.Uid), userName(uint32(uid)))
	}
	return nil
}

// userName is "uid N (name)", or "uid N" when the name is unknown.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return "uid " + id + " (" + u.Username + ")"
	}
	return "uid " + id
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.rpc.Close()
	if errors.Is(err, jrpc2.ErrConnClosed) {
		return nil
	}
	return err
}

// call makes one request and converts the daemon's errors to *Error.
func (c *Client) call(ctx context.Context, method string, params, result any) error {
	rsp, err := c.rpc.Call(ctx, method, params)
	if err != nil {
		// A connection that ended fails pending calls with an internal
		// error carrying only the read's text, so ask the client too.
		if (closed(err) || c.rpc.IsStopped()) && ctx.Err() == nil {
			return fmt.Errorf("%w: %s: %w", ErrDisconnected, method, err)
		}
		return convert(err)
	}
	if result == nil {
		return nil
	}
	if err := rsp.UnmarshalResult(result); err != nil {
		return fmt.Errorf("client: %s: decoding the result: %w", method, err)
	}
	return nil
}

// closed says whether a call failed because the connection ended.
func closed(err error) bool {
	return errors.Is(err, jrpc2.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

func convert(err error) error {
	var je *jrpc2.Error
	if !errors.As(err, &je) {
		return err
	}
	e := &Error{Code: api.Code(je.Code), Message: je.Message}
	var data api.ErrorData
	if len(je.Data) > 0 && json.Unmarshal(je.Data, &data) == nil && data.Name != "" {
		e.Name = data.Name
	} else {
		e.Name = e.Code.Name()
	}
	return e
}

// Identity describes the daemon.
func (c *Client) Identity(ctx context.Context) (api.IdentityResult, error) {
	var r api.IdentityResult
	err := c.call(ctx, api.MethodIdentity, api.IdentityParams{}, &r)
	return r, err
}

// Peers lists the connected peers.
func (c *Client) Peers(ctx context.Context) ([]api.Peer, error) {
	var r []api.Peer
	err := c.call(ctx, api.MethodPeers, nil, &r)
	return r, err
}

// Connect dials a peer's multiaddr (with /p2p/).
func (c *Client) Connect(ctx context.Context, addr string) (api.ConnectResult, error) {
	var r api.ConnectResult
	err := c.call(ctx, api.MethodConnect, api.ConnectParams{Addr: addr}, &r)
	return r, err
}

// Ping is a no-op round trip.
func (c *Client) Ping(ctx context.Context) (api.PingResult, error) {
	var r api.PingResult
	err := c.call(ctx, api.MethodPing, nil, &r)
	return r, err
}

// Create makes a channel.
func (c *Client) Create(ctx context.Context, p api.CreateParams) (api.Channel, error) {
	var r api.Channel
	err := c.call(ctx, api.MethodCreate, p, &r)
	return r, err
}

// Channels lists the channels.
func (c *Client) Channels(ctx context.Context) ([]api.Channel, error) {
	var r []api.Channel
	err := c.call(ctx, api.MethodChannels, nil, &r)
	return r, err
}

// Info describes a channel (its hex ID or unique name).
func (c *Client) Info(ctx context.Context, ch string) (api.Channel, error) {
	var r api.Channel
	err := c.call(ctx, api.MethodInfo, api.ChannelParams{Channel: ch}, &r)
	return r, err
}

// Invite adds a peer to a channel; it returns once the commit was merged.
func (c *Client) Invite(ctx context.Context, ch, peerID string) (api.ChangeResult, error) {
	var r api.ChangeResult
	err := c.call(ctx, api.MethodInvite, api.PeerParams{Channel: ch, PeerID: peerID}, &r)
	return r, err
}

// Members lists a channel's members.
func (c *Client) Members(ctx context.Context, ch string) ([]api.Member, error) {
	var r []api.Member
	err := c.call(ctx, api.MethodMembers, api.ChannelParams{Channel: ch}, &r)
	return r, err
}

// Remove removes a member; it returns once the commit was merged.
func (c *Client) Remove(ctx context.Context, ch, peerID string) (api.ChangeResult, error) {
	var r api.ChangeResult
	err := c.call(ctx, api.MethodRemove, api.PeerParams{Channel: ch, PeerID: peerID}, &r)
	return r, err
}

// Leave proposes this node's removal from a channel.
func (c *Client) Leave(ctx context.Context, ch string) (api.ChangeResult, error) {
	var r api.ChangeResult
	err := c.call(ctx, api.MethodLeave, api.ChannelParams{Channel: ch}, &r)
	return r, err
}

// Update rotates this node's keys in a channel.
func (c *Client) Update(ctx context.Context, ch string) (api.ChangeResult, error) {
	var r api.ChangeResult
	err := c.call(ctx, api.MethodUpdate, api.ChannelParams{Channel: ch}, &r)
	return r, err
}

// Invitations lists the pending invitations.
func (c *Client) Invitations(ctx context.Context) ([]api.Invitation, error) {
	var r []api.Invitation
	err := c.call(ctx, api.MethodInvitations, nil, &r)
	return r, err
}

// Accept joins the channel of a pending invitation.
func (c *Client) Accept(ctx context.Context, invite string) (api.Channel, error) {
	var r api.Channel
	err := c.call(ctx, api.MethodAccept, api.InviteParams{Invite: invite}, &r)
	return r, err
}

// Decline drops a pending invitation.
func (c *Client) Decline(ctx context.Context, invite string) error {
	return c.call(ctx, api.MethodDecline, api.InviteParams{Invite: invite}, nil)
}

// Send sends text to a channel; it returns once the message is durable
// and published.
func (c *Client) Send(ctx context.Context, ch, text string) (api.SendResult, error) {
	var r api.SendResult
	err := c.call(ctx, api.MethodSend, api.SendParams{Channel: ch, Text: text}, &r)
	return r, err
}

// History returns a page of a channel's messages, oldest first.
func (c *Client) History(ctx context.Context, p api.HistoryParams) ([]api.Message, error) {
	var r []api.Message
	err := c.call(ctx, api.MethodHistory, p, &r)
	return r, err
}

// SubscribeOptions are SubscribeWith's optional hooks.
type SubscribeOptions struct {
	// Ready, if set, is called once, with the subscription's cursor
	// (api.SubscribeResult.Cursor), after the daemon confirmed the
	// subscription and before any event callback. From then on every
	// event is delivered, so a caller that reads state (history) only
	// after Ready misses nothing between the two: whatever happened after
	// the read it gets as an event, and whatever happened before is in
	// the read (or in both, which the caller deduplicates). Ready runs on
	// Subscribe's goroutine: events wait for it to return.
	Ready func(cursor string)
}

// Subscribe watches the daemon's events on a connection of its own,
// calling fn for each, in order, from one goroutine. It blocks until ctx
// ends (then it returns ctx.Err()) or the daemon closes the connection
// (ErrDisconnected). fn must keep up: a subscriber that leaves
// api.MaxPendingNotifies events unread is disconnected.
func (c *Client) Subscribe(ctx context.Context, p api.SubscribeParams, fn func(api.Event)) error {
	return c.SubscribeWith(ctx, p, SubscribeOptions{}, fn)
}

// SubscribeWith is Subscribe with options; see SubscribeOptions.Ready for
// knowing when the subscription is live.
//
// The connection is read line by line here rather than through jrpc2's
// client, whose OnNotify may run notifications out of order (it hands each
// line it reads to a goroutine of its own); the daemon writes them in
// order, and a replay from a cursor is only gap-free if they are read so.
// On this connection only the subscribe request is ever sent, so its
// first line is that request's response and every later one a
// notification.
func (c *Client) SubscribeWith(ctx context.Context, p api.SubscribeParams, o SubscribeOptions, fn func(api.Event)) error {
	conn, err := dial(ctx, c.path)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	req, err := json.Marshal(struct {
		JSONRPC string              `json:"jsonrpc"`
		ID      int                 `json:"id"`
		Method  string              `json:"method"`
		Params  api.SubscribeParams `json:"params"`
	}{"2.0", 1, api.MethodSubscribe, p})
	if err != nil {
		return err
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return ctxOr(ctx, fmt.Errorf("%w: subscribe: %w", ErrDisconnected, err))
	}
	sc := bufio.NewScanner(conn)
	// A notification holds at most one message of api.MaxTextBytes, which
	// JSON escaping can make six times longer; the rest is small.
	sc.Buffer(make([]byte, 0, 64<<10), 8*api.MaxTextBytes+64<<10)
	first := true
	for sc.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int             `json:"code"`
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			} `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("client: subscribe: a line that is not JSON-RPC: %w", err)
		}
		if first {
			first = false
			if m.Error != nil {
				return convert(&jrpc2.Error{Code: jrpc2.Code(m.Error.Code), Message: m.Error.Message, Data: m.Error.Data})
			}
			var r api.SubscribeResult
			if err := json.Unmarshal(m.Result, &r); err != nil {
				return fmt.Errorf("client: subscribe: decoding the result: %w", err)
			}
			if o.Ready != nil {
				o.Ready(r.Cursor)
			}
			continue
		}
		if m.Method != api.NotifyEvent {
			continue
		}
		var e api.Event
		if json.Unmarshal(m.Params, &e) == nil {
			fn(e)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("client: subscription: %w", err)
	}
	return ErrDisconnected
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
