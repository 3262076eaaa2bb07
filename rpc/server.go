package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/creachadair/jrpc2"
	"golang.org/x/sys/unix"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/rpc/api"
)

// Options configure a Server.
type Options struct {
	// Version is the daemon's version, reported by node.identity.
	Version string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// SocketPath is reported by node.identity; Serve sets it when empty.
	SocketPath string
}

// Server serves the JSON-RPC API of one node. Its methods are safe for
// concurrent use.
type Server struct {
	n      *node.Node
	opts   Options
	log    *slog.Logger
	assign jrpc2.Assigner

	// Test hooks: the peer's uid, the uid allowed, and the bounds of a
	// subscriber's queue and of the line length.
	peerUID    func(*net.UnixConn) (int, error)
	allowedUID int
	maxPending int
	maxLine    int
	tuneConn   func(*net.UnixConn)

	mu     sync.Mutex
	closed bool
	lns    map[net.Listener]struct{}
	conns  map[*conn]struct{}
	wg     sync.WaitGroup
}

// New makes a server for n; Serve or ServeListener runs it.
func New(n *node.Node, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		n: n, opts: opts, log: log,
		peerUID:    peerCredUID,
		allowedUID: os.Getuid(),
		maxPending: api.MaxPendingNotifies,
		maxLine:    api.MaxRequestBytes,
		lns:        make(map[net.Listener]struct{}),
		conns:      make(map[*conn]struct{}),
	}
	s.assign = s.methods()
	return s
}

// Serve listens on the unix socket at path (see Listen) and serves until
// ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.opts.SocketPath == "" {
		s.opts.SocketPath = path
	}
	s.mu.Unlock()
	return s.ServeListener(ctx, ln)
}

// ServeListener serves the connections ln accepts until ctx ends or Close
// is called; it closes ln and returns once every connection is closed.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("rpc: server closed")
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()

	var err error
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !s.isClosed() && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("rpc: accept: %w", aerr)
			}
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
	cancel()
	// Closed here too, not only by the goroutine above: Accept returns as
	// soon as the descriptor is closed, and the socket file must be gone
	// before Serve returns (a client then finds no daemon, not a file).
	ln.Close()
	s.mu.Lock()
	delete(s.lns, ln)
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every listener and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// peerCredUID reads the connecting process's uid with SO_PEERCRED: the
// kernel's record of who connected, which the peer cannot forge.
func peerCredUID(uc *net.UnixConn) (int, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return int(cred.Uid), nil
}

// conn is one client connection.
type conn struct {
	s    *Server
	nc   net.Conn
	ch   *lineChannel
	srv  *jrpc2.Server
	ctx  context.Context // the connection's lifetime, for pushes
	once sync.Once

	mu  sync.Mutex
	sub *subscription
}

type connKey struct{}

func (c *conn) close() {
	c.once.Do(func() { c.nc.Close() })
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		s.log.Warn("rpc: refusing a connection that is not a unix socket", "remote", nc.RemoteAddr())
		return
	}
	// Another user's process learns nothing, not even an error naming the
	// daemon's uid: the connection is closed unanswered.
	uid, err := s.peerUID(uc)
	if err != nil || uid != s.allowedUID {
		s.log.Warn("rpc: refused a connection of another user", "uid", uid, "want", s.allowedUID, "err", err)
		return
	}
	ch := newLineChannel(nc, s.maxLine)
	if s.tuneConn != nil {
		s.tuneConn(uc)
	}
	c := &conn{s: s, nc: nc, ch: ch}
	s.mu.Lock()
	if s.closed || ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()

	cctx, cancel := context.WithCancel(context.WithValue(ctx, connKey{}, c))
	defer cancel()
	c.ctx = cctx
	c.srv = jrpc2.NewServer(s.assign, &jrpc2.ServerOptions{
		AllowPush:  true,
		NewContext: func() context.Context { return cctx },
	})
	c.srv.Start(ch)
	if err := c.srv.Wait(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("rpc: connection ended", "err", err)
	}
	cancel()
	c.mu.Lock()
	if c.sub != nil {
		c.sub.stop()
	}
	c.mu.Unlock()
	c.close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
