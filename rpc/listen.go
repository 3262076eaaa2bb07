package rpc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Listen binds the unix socket at path with mode 0600 (see the package
// documentation for how no client can reach it before that), after
// checking that no daemon already serves there and removing a stale
// socket. Closing the listener removes the socket file.
func Listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("rpc: a daemon is already serving on %s", path)
		}
		if fi.Mode().Type() != fs.ModeSocket {
			// Never delete a user's file that merely sits where the
			// socket should go.
			return nil, fmt.Errorf("rpc: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("rpc: removing stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("rpc: socket path: %w", err)
	}

	// MkdirTemp makes the directory 0700: nobody else can connect to the
	// socket while it is still at its temporary name.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".sp")
	if err != nil {
		return nil, fmt.Errorf("rpc: socket directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("rpc: listen: %w", err)
	}
	// The file is moved away from the name the listener would unlink.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("rpc: chmod socket: %w", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("rpc: placing socket: %w", err)
	}
	return &listener{UnixListener: ln, path: path}, nil
}

// listener removes its socket file on Close.
type listener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

func (l *listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }
