// Package rpc serves spacepandad's local JSON-RPC 2.0 socket (the
// contract is package api) over a node.Node, and only through package
// node.
//
// # Socket
//
// Listen binds a unix socket that is mode 0600 before any client can reach
// it: the socket is bound inside a fresh directory of mode 0700 next to the
// target path, chmod-ed to 0600 there, and only then renamed onto the
// target path, so there is no moment at which the path exists with a wider
// mode (and no process-wide umask change, which would race with other
// goroutines creating files). A file already at the path is taken for a
// running daemon if connecting to it succeeds ("a daemon is already
// serving on <path>"); otherwise it is a stale socket and is removed.
//
// Every accepted connection is checked with SO_PEERCRED: a process of
// another uid is logged and its connection closed with nothing written.
//
// # Framing and bad input
//
// One JSON-RPC message per line, served by creachadair/jrpc2 (one jrpc2
// server per connection, with server push for events). A line longer than
// api.MaxRequestBytes gets a too_large error and the connection is closed,
// since the rest of the line cannot be told apart from the next request.
// Blank lines are ignored. Malformed JSON gets -32700, an unknown method
// -32601, parameters of the wrong type -32602; node errors get the stable
// codes of package api, with data {"name": ...}.
//
// A request line that looks browser-originated is refused with
// api.CodeForbidden before it reaches a handler: a top-level object with
// a "headers", "origin" or "referer" member, or whose params object has an
// "origin" or "referer" member, compared case-insensitively (HTTP bridges
// that carry headers into JSON do one of these). A batch with any such
// element is refused whole, with one error whose id is null.
//
// # Channels
//
// A CHANNEL parameter is a channel ID in hex or a channel name; an ID
// that exists wins, else the name must match exactly one channel
// (ambiguous_channel if several do, unknown_channel if none).
//
// # Events
//
// events.subscribe subscribes the connection to the node's events from a
// cursor ("<boot>-<seq>": the node's BootID and an event's Seq, so that a
// cursor from before a restart is refused as cursor_expired rather than
// replaying other events; "0" for every event held; "" for live events
// only) and pushes each as an
// "event" notification, after the subscribe response. Events are queued
// per connection up to api.MaxPendingNotifies; a client that lets more
// pile up is disconnected, so that it never holds up the node or other
// clients.
package rpc
