// Package cli is the spacepanda command, a client of spacepandad's local
// JSON-RPC socket. It reaches the daemon only through rpc/client and
// rpc/api (internal/archtest enforces it), so anything it does a script
// can do over the socket too.
//
// Every command takes --json and then writes exactly one JSON document to
// stdout (watch: one object per line), whose field names are fixed by the
// daemon issue because scripts depend on them. Errors go to stderr with a
// non-zero exit status and, with --json, also to stdout as
// {"error":{"code":..,"name":..,"message":..}}: the daemon's code and name
// when the daemon refused, else one of the CLI's own (see the code*
// constants), which are positive so that they never collide with JSON-RPC
// codes.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// annChange marks a command that changes a group: see changeTimeout.
const annChange = "spacepanda/change"

// The CLI's own error codes, for failures that never reached the daemon.
const (
	codeNoDaemon     api.Code = 1 // nothing listens on the socket
	codePermission   api.Code = 5 // the socket cannot be opened (its mode or a parent's)
	codeRefused      api.Code = 6 // the daemon hung up before answering
	codeInterrupted  api.Code = 3 // a signal cancelled the command
	codeDisconnected api.Code = 4 // the daemon closed the connection
	codeSocketOwner  api.Code = 7 // the socket path is not a socket of this user
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2 // bad flags or arguments, as most Unix tools do
)

const (
	envSocket  = "SPACEPANDA_SOCKET"
	envDataDir = "SPACEPANDA_DATA_DIR"
	socketName = "spacepanda.sock"
	// defaultTimeout bounds one command.
	defaultTimeout = 30 * time.Second
	// changeTimeout bounds a change to a group (invite, remove, leave,
	// update) when --timeout is not given: it waits for the commit to be
	// accepted and merged, which may mean fetching a KeyPackage from the
	// DHT and a settle window, so it gets longer.
	changeTimeout = time.Minute
)

// Run runs the spacepanda command line args (without the program name)
// and returns its exit status: 0, 1 for an error, 2 for a usage error.
// ctx cancelled (a signal) stops the command; watch and chat then exit 0.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := e.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		// Only errors from cobra itself (unknown command or flag, wrong
		// argument count) arrive unwrapped: RunE wraps everything else.
		ce = &cliError{code: api.CodeInvalidArgument, name: api.CodeInvalidArgument.Name(),
			msg: err.Error() + " (see spacepanda --help)", exit: exitUsage}
	}
	// A flag error may come before --json was parsed.
	if e.json || slices.Contains(args, "--json") || slices.Contains(args, "--json=true") {
		writeJSON(stdout, errorJSON{errorBody{ce.code, ce.name, ce.msg}})
	}
	fmt.Fprintf(stderr, "spacepanda: %s\n", ce.msg)
	return ce.exit
}

// env is one invocation: its streams and global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	json            bool
	socket, dataDir string
	timeout         time.Duration
}

// cliError is a failed command as printed: the code and name --json
// shows, the message, and the exit status.
type cliError struct {
	code api.Code
	name string
	msg  string
	exit int
}

func (e *cliError) Error() string { return e.msg }

// errorJSON is what --json prints for a failed command.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    api.Code `json:"code"`
	Name    string   `json:"name"`
	Message string   `json:"message"`
}

func usageError(format string, a ...any) *cliError {
	return &cliError{code: api.CodeInvalidArgument, name: api.CodeInvalidArgument.Name(),
		msg: fmt.Sprintf(format, a...), exit: exitUsage}
}

// classify turns any error of a command into a cliError.
func classify(err error) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	if re, ok := asRPCError(err); ok {
		name := re.Name
		if name == "" {
			name = re.Code.Name()
		}
		return &cliError{code: re.Code, name: name, msg: re.Message, exit: exitError}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &cliError{code: api.CodeTimeout, name: api.CodeTimeout.Name(),
			msg: "timed out waiting for the daemon (see --timeout)", exit: exitError}
	case errors.Is(err, context.Canceled):
		return &cliError{code: codeInterrupted, name: "interrupted", msg: "interrupted", exit: exitError}
	}
	return &cliError{code: api.CodeInternal, name: api.CodeInternal.Name(), msg: err.Error(), exit: exitError}
}

func (e *env) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "spacepanda",
		Short: "Talk to spacepandad, the end-to-end encrypted group messaging daemon",
		Long: "spacepanda talks to a running spacepandad over its local socket.\n" +
			"Every command takes --json for scripts: one JSON document on stdout.",
		Version:       buildVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("spacepanda {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.BoolVar(&e.json, "json", false, "print one JSON document on stdout (watch: one per line)")
	pf.StringVar(&e.socket, "socket", "", "the daemon's socket (default $"+envSocket+", else spacepanda.sock in the data directory)")
	pf.StringVar(&e.dataDir, "data-dir", "", "the daemon's data directory (default $"+envDataDir+", else $XDG_DATA_HOME/spacepanda, else ~/.local/share/spacepanda)")
	pf.DurationVar(&e.timeout, "timeout", defaultTimeout, "how long to wait for the daemon (0: forever; default 1m for channel invite|remove|leave|update; watch and chat: only to connect)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	e.addCommands(root)
	return root
}

// socketPath resolves the socket as the daemon does: --socket, else
// $SPACEPANDA_SOCKET, else spacepanda.sock in the data directory, which is
// --data-dir, else $SPACEPANDA_DATA_DIR, else $XDG_DATA_HOME/spacepanda,
// else ~/.local/share/spacepanda.
func (e *env) socketPath() (string, error) {
	if e.socket != "" {
		return e.socket, nil
	}
	if s := e.getenv(envSocket); s != "" {
		return s, nil
	}
	dir := e.dataDir
	if dir == "" {
		dir = e.getenv(envDataDir)
	}
	// The XDG base directory spec says a relative $XDG_DATA_HOME is
	// invalid and must be ignored; config does the same for the daemon.
	if x := e.getenv("XDG_DATA_HOME"); dir == "" && filepath.IsAbs(x) {
		dir = filepath.Join(x, "spacepanda")
	}
	if h := e.getenv("HOME"); dir == "" && h != "" {
		dir = filepath.Join(h, ".local", "share", "spacepanda")
	}
	if dir == "" {
		return "", usageError("cannot find the socket: no --socket, $%s, --data-dir, $%s, $XDG_DATA_HOME or $HOME", envSocket, envDataDir)
	}
	return filepath.Join(dir, socketName), nil
}

// connect dials the daemon and asks who it is, warning on stderr when it
// speaks another API version: most things still work, so it is not fatal.
func (e *env) connect(ctx context.Context) (daemon, api.IdentityResult, error) {
	socket, err := e.socketPath()
	if err != nil {
		return nil, api.IdentityResult{}, err
	}
	d, err := dial(ctx, socket)
	switch {
	case errors.Is(err, client.ErrNoDaemon):
		return nil, api.IdentityResult{}, &cliError{code: codeNoDaemon, name: "no_daemon",
			msg: fmt.Sprintf("no daemon at %s; start one with `spacepandad`", socket), exit: exitError}
	case errors.Is(err, client.ErrSocketOwner):
		// err says whose it is (or that it is no socket at all).
		return nil, api.IdentityResult{}, &cliError{code: codeSocketOwner, name: "socket_owner",
			msg: fmt.Sprintf("%s; refusing to use it, since it is not a daemon of yours (nothing was sent): "+
				"run spacepanda as the user who owns it, or point --socket at your own daemon's socket", ownerText(err)), exit: exitError}
	case errors.Is(err, client.ErrPermission):
		return nil, api.IdentityResult{}, &cliError{code: codePermission, name: "permission_denied",
			msg: fmt.Sprintf("cannot open %s: permission denied; the daemon serves only the user it runs as, so run spacepanda as that user", socket), exit: exitError}
	case err != nil:
		return nil, api.IdentityResult{}, err
	}
	id, err := d.Identity(ctx)
	if err != nil {
		d.Close()
		if errors.Is(err, client.ErrDisconnected) {
			// Before any answer: the uid check, or a daemon going down.
			return nil, api.IdentityResult{}, &cliError{code: codeRefused, name: "refused",
				msg: fmt.Sprintf("the daemon at %s closed the connection before answering: it serves only the user it runs as, or it is shutting down", socket), exit: exitError}
		}
		return nil, api.IdentityResult{}, err
	}
	if id.APIVersion != api.Version {
		fmt.Fprintf(e.stderr, "spacepanda: warning: the daemon (%s) speaks API version %d, this CLI (%s) version %d; upgrade the older one\n",
			id.Version, id.APIVersion, buildVersion(), api.Version)
	}
	return d, id, nil
}

// ownerText is what the client found at the socket path ("... belongs to
// uid 0 (root), not to uid 1000 (alice)"), without the client's prefix.
func ownerText(err error) string {
	s := err.Error()
	if _, rest, ok := strings.Cut(s, client.ErrSocketOwner.Error()+": "); ok {
		return rest
	}
	return s
}

// result is what a command prints: v as JSON, or human to w.
type result struct {
	v     any
	human func(w io.Writer)
}

// do runs one request-response command within --timeout and prints what f
// returns.
func (e *env) do(cmd *cobra.Command, f func(ctx context.Context, d daemon, id api.IdentityResult) (result, error)) error {
	ctx := cmd.Context()
	timeout := e.timeout
	if cmd.Annotations[annChange] != "" {
		if f := cmd.Flag("timeout"); f == nil || !f.Changed {
			timeout = changeTimeout
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	d, id, err := e.connect(ctx)
	if err != nil {
		return classify(err)
	}
	defer d.Close()
	r, err := f(ctx, d, id)
	if err != nil {
		return classify(err)
	}
	e.print(r)
	return nil
}

func (e *env) print(r result) {
	if e.json {
		writeJSON(e.stdout, r.v)
		return
	}
	r.human(e.stdout)
}

// writeJSON writes v as one line; it flushes when w can, so that a
// pipe reading watch sees each event as it happens.
func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The values are the CLI's own structs and api's: a failure is a
		// bug, and a document must still come out.
		b, _ = json.Marshal(errorJSON{errorBody{api.CodeInternal, api.CodeInternal.Name(), err.Error()}})
	}
	w.Write(append(b, '\n'))
	if f, ok := w.(interface{ Flush() error }); ok {
		f.Flush()
	}
}

// clean makes text from peers safe for a terminal: a control character
// (an escape sequence could rewrite the screen or the title) is shown
// quoted instead of sent.
func clean(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
