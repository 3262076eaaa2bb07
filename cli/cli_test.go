package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

const (
	pidA = "12D3KooWAlice"
	pidB = "12D3KooWBob"
	chID = "0a0b0c"
)

var t0 = time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)

// fake is a daemon with canned answers. err, when set, is what every
// method after Identity returns; calls records what was asked.
type fake struct {
	mu     sync.Mutex
	calls  []string
	err    error
	apiVer int
	events []api.Event
	subErr error
	ctxOf  map[string]context.Context
}

func (f *fake) rec(format string, a ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	return f.err
}

func (f *fake) Identity(context.Context) (api.IdentityResult, error) {
	v := api.Version
	if f.apiVer != 0 {
		v = f.apiVer
	}
	return api.IdentityResult{PeerID: pidA, Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + pidA}, Version: "v9.9.9",
		APIVersion: v, DataDir: "/d", Socket: "/d/spacepanda.sock"}, nil
}
func (f *fake) Peers(context.Context) ([]api.Peer, error) {
	return []api.Peer{{PeerID: pidB, Addrs: []string{"/ip4/127.0.0.1/tcp/4002"}}}, f.rec("peers")
}
func (f *fake) Connect(_ context.Context, addr string) (api.ConnectResult, error) {
	return api.ConnectResult{PeerID: pidB}, f.rec("connect %s", addr)
}
func (f *fake) Ping(context.Context) (api.PingResult, error) {
	return api.PingResult{Time: t0}, f.rec("ping")
}
func (f *fake) Create(_ context.Context, p api.CreateParams) (api.Channel, error) {
	return api.Channel{Channel: chID, Name: p.Name, Epoch: 0, Members: 1, CipherSuite: 1, State: "active"}, f.rec("create %s", p.Name)
}
func (f *fake) Channels(context.Context) ([]api.Channel, error) {
	return []api.Channel{{Channel: chID, Name: "general", Epoch: 3, Members: 2, EpochAuthenticator: "ff", CipherSuite: 1}}, f.rec("channels")
}
func (f *fake) Info(_ context.Context, ch string) (api.Channel, error) {
	return api.Channel{Channel: chID, Name: "general", Epoch: 3, Members: 2, EpochAuthenticator: "beef", CipherSuite: 1, State: "active"}, f.rec("info %s", ch)
}
func (f *fake) Invite(ctx context.Context, ch, p string) (api.ChangeResult, error) {
	f.setCtx("invite", ctx)
	return api.ChangeResult{Channel: chID, PeerID: p, Epoch: 4}, f.rec("invite %s %s", ch, p)
}
func (f *fake) Members(_ context.Context, ch string) ([]api.Member, error) {
	return []api.Member{{PeerID: pidA, Self: true}, {PeerID: pidB}}, f.rec("members %s", ch)
}
func (f *fake) Remove(_ context.Context, ch, p string) (api.ChangeResult, error) {
	return api.ChangeResult{Channel: chID, PeerID: p, Epoch: 5}, f.rec("remove %s %s", ch, p)
}
func (f *fake) Leave(_ context.Context, ch string) (api.ChangeResult, error) {
	return api.ChangeResult{Channel: chID, Epoch: 6}, f.rec("leave %s", ch)
}
func (f *fake) Update(_ context.Context, ch string) (api.ChangeResult, error) {
	return api.ChangeResult{Channel: chID, Epoch: 7}, f.rec("update %s", ch)
}
func (f *fake) Invitations(context.Context) ([]api.Invitation, error) {
	return []api.Invitation{{Invite: "inv1", Channel: chID, Name: "general", From: pidB, Members: []string{pidB}, ReceivedAt: t0}}, f.rec("invitations")
}
func (f *fake) Accept(_ context.Context, inv string) (api.Channel, error) {
	return api.Channel{Channel: chID, Name: "general", Epoch: 4, Members: 2}, f.rec("accept %s", inv)
}
func (f *fake) Decline(_ context.Context, inv string) error { return f.rec("decline %s", inv) }
func (f *fake) Send(ctx context.Context, ch, text string) (api.SendResult, error) {
	f.setCtx("send", ctx)
	return api.SendResult{Channel: chID, ID: "m1", Seq: 9}, f.rec("send %s %q", ch, text)
}
func (f *fake) History(_ context.Context, p api.HistoryParams) ([]api.Message, error) {
	// Newest first on purpose: the CLI must print oldest first anyway.
	return []api.Message{
		{Channel: chID, Seq: 2, ID: "m2", From: pidB, Text: "second", Time: t0.Add(time.Minute)},
		{Channel: chID, Seq: 1, ID: "m1", From: pidA, Text: "first\x1b[2J", Time: t0},
	}, f.rec("history %s %d", p.Channel, p.Limit)
}
func (f *fake) Subscribe(ctx context.Context, p api.SubscribeParams, fn func(api.Event)) error {
	return f.SubscribeWith(ctx, p, client.SubscribeOptions{}, fn)
}
func (f *fake) SubscribeWith(ctx context.Context, p api.SubscribeParams, o client.SubscribeOptions, fn func(api.Event)) error {
	if err := f.rec("subscribe %s %s", p.Channel, p.Cursor); err != nil {
		return err
	}
	if o.Ready != nil {
		o.Ready("c0")
	}
	for _, ev := range f.events {
		fn(ev)
	}
	if f.subErr != nil {
		return f.subErr
	}
	<-ctx.Done()
	return ctx.Err()
}
func (f *fake) Close() error { return nil }

func (f *fake) setCtx(name string, ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctxOf == nil {
		f.ctxOf = map[string]context.Context{}
	}
	f.ctxOf[name] = ctx
}

var _ daemon = (*fake)(nil)

// run runs the CLI against f (nil: no daemon) with a fixed socket.
func run(t *testing.T, ctx context.Context, f *fake, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	old := dial
	t.Cleanup(func() { dial = old })
	dial = func(_ context.Context, socket string) (daemon, error) {
		if f == nil {
			return nil, fmt.Errorf("%w at %s: connection refused", client.ErrNoDaemon, socket)
		}
		return f, nil
	}
	var o, e bytes.Buffer
	code = Run(ctx, append([]string{"--socket", "/s/spacepanda.sock"}, args...), strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

// sameJSON compares documents, not bytes: field order is not part of the
// contract, field names and values are.
func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON\n got %s\nwant %s", strings.TrimSpace(got), want)
	}
}

var addrA = `"/ip4/127.0.0.1/tcp/4001/p2p/` + pidA + `"`

// TestCommands checks every command's --json document against the
// issue's table, its human output, and what it asked the daemon.
func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		json  string   // the --json document
		human []string // substrings of the human output
		call  string   // what the daemon was asked
	}{
		{"id", []string{"id"}, "", `{"peer_id":"` + pidA + `","addrs":[` + addrA + `],"version":"v9.9.9"}`,
			[]string{"peer ID: " + pidA, "addr:    /ip4/127.0.0.1/tcp/4001/p2p/" + pidA}, ""},
		{"peers", []string{"peers"}, "", `[{"peer_id":"` + pidB + `","addrs":["/ip4/127.0.0.1/tcp/4002"]}]`,
			[]string{"PEER ID", pidB + "  /ip4/127.0.0.1/tcp/4002"}, "peers"},
		{"connect", []string{"connect", "/ip4/1.2.3.4/tcp/1/p2p/" + pidB}, "", `{"peer_id":"` + pidB + `"}`,
			[]string{"connected to " + pidB}, "connect /ip4/1.2.3.4/tcp/1/p2p/" + pidB},
		{"channel create", []string{"channel", "create", "general"}, "", `{"channel":"` + chID + `","name":"general"}`,
			[]string{"created general (" + chID + ")"}, "create general"},
		{"channel list", []string{"channel", "list"}, "", `[{"channel":"` + chID + `","name":"general","members":2,"epoch":3}]`,
			[]string{"CHANNEL  NAME     MEMBERS  EPOCH", chID + "   general  2        3"}, "channels"},
		{"channel info", []string{"channel", "info", "general"}, "",
			`{"channel":"` + chID + `","name":"general","epoch":3,"epoch_authenticator":"beef","members":2,"cipher_suite":1}`,
			[]string{"epoch authenticator: beef", "cipher suite:        0x0001"}, "info general"},
		{"channel invite", []string{"channel", "invite", "general", pidB}, "", `{"channel":"` + chID + `","peer_id":"` + pidB + `","epoch":4}`,
			[]string{"invited " + pidB + " to " + chID + " (epoch 4)"}, "invite general " + pidB},
		{"channel members", []string{"channel", "members", chID}, "", `[{"peer_id":"` + pidA + `","self":true},{"peer_id":"` + pidB + `","self":false}]`,
			[]string{pidA + " (you)", pidB}, "members " + chID},
		{"channel remove", []string{"channel", "remove", "general", pidB}, "", `{"channel":"` + chID + `","epoch":5}`,
			[]string{"removed a member from " + chID + " (epoch 5)"}, "remove general " + pidB},
		{"channel leave", []string{"channel", "leave", "general"}, "", `{"channel":"` + chID + `","epoch":6}`,
			[]string{"left " + chID + " (epoch 6)"}, "leave general"},
		{"channel update", []string{"channel", "update", "general"}, "", `{"channel":"` + chID + `","epoch":7}`,
			[]string{"updated " + chID + " (epoch 7)"}, "update general"},
		{"invites", []string{"invites"}, "", `[{"invite":"inv1","channel":"` + chID + `","name":"general","from":"` + pidB + `"}]`,
			[]string{"INVITE  CHANNEL", "inv1    " + chID}, "invitations"},
		{"accept", []string{"accept", "inv1"}, "", `{"channel":"` + chID + `"}`, []string{"joined general (" + chID + ")"}, "accept inv1"},
		{"decline", []string{"decline", "inv1"}, "", `{}`, []string{"declined inv1"}, "decline inv1"},
		{"send arg", []string{"send", "general", "hello", "world"}, "", `{"channel":"` + chID + `","id":"m1"}`,
			[]string{"sent m1"}, `send general "hello world"`},
		{"send stdin", []string{"send", "general"}, "from stdin\n", `{"channel":"` + chID + `","id":"m1"}`,
			[]string{"sent m1"}, `send general "from stdin"`},
		{"history", []string{"history", "general", "--limit", "2"}, "",
			`[{"id":"m1","from":"` + pidA + `","text":"first\u001b[2J","time":"2026-12-07T01:02:03Z"},` +
				`{"id":"m2","from":"` + pidB + `","text":"second","time":"2026-12-07T01:03:03Z"}]`,
			[]string{pidA + "  first\\x1b[2J", pidB + "    second"}, "history general 2"},
		{"history default limit", []string{"history", "general"}, "",
			`[{"id":"m1","from":"` + pidA + `","text":"first\u001b[2J","time":"2026-12-07T01:02:03Z"},` +
				`{"id":"m2","from":"` + pidB + `","text":"second","time":"2026-12-07T01:03:03Z"}]`,
			nil, fmt.Sprintf("history general %d", api.DefaultHistoryLimit)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{}
			out, errOut, code := run(t, context.Background(), f, tc.stdin, append([]string{"--json"}, tc.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("--json: exit %d, stderr %q", code, errOut)
			}
			if strings.Count(out, "\n") != 1 {
				t.Errorf("--json printed %d lines, want one document:\n%s", strings.Count(out, "\n"), out)
			}
			sameJSON(t, out, tc.json)
			if tc.call != "" && (len(f.calls) != 1 || f.calls[0] != tc.call) {
				t.Errorf("daemon calls = %q, want [%q]", f.calls, tc.call)
			}

			out, errOut, code = run(t, context.Background(), &fake{}, tc.stdin, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("human: exit %d, stderr %q", code, errOut)
			}
			if json.Valid([]byte(out)) && strings.HasPrefix(out, "{") {
				t.Errorf("human output is JSON: %s", out)
			}
			for _, h := range tc.human {
				if !strings.Contains(out, h) {
					t.Errorf("human output lacks %q:\n%s", h, out)
				}
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("human output carries a raw escape:\n%q", out)
			}
		})
	}
}

// TestHistoryOldestFirst: the contract is oldest first even when the
// daemon answers newest first.
func TestHistoryOldestFirst(t *testing.T) {
	out, _, code := run(t, context.Background(), &fake{}, "", "history", "general")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if i, j := strings.Index(out, "first"), strings.Index(out, "second"); i < 0 || j < 0 || i > j {
		t.Errorf("not oldest first:\n%s", out)
	}
}

// TestErrors checks the error paths: the daemon's code and name come
// through as {"error":{...}} on stdout with --json, the message goes to
// stderr either way, and the exit status says what kind of failure.
func TestErrors(t *testing.T) {
	daemonErr := &client.Error{Code: api.CodeUnknownChannel, Name: "unknown_channel", Message: "no channel named \"nope\""}
	for _, tc := range []struct {
		name     string
		f        *fake // nil: no daemon
		args     []string
		stdin    string
		exit     int
		code     api.Code
		errName  string
		msg      string // substring of the message on stderr and in JSON
		noDaemon bool   // the daemon must not have been asked anything
	}{
		{"daemon error", &fake{err: daemonErr}, []string{"channel", "info", "nope"}, "", 1, api.CodeUnknownChannel, "unknown_channel", `no channel named "nope"`, false},
		{"wrapped daemon error", &fake{err: fmt.Errorf("ctx: %w", &client.Error{Code: api.CodeNoKeyPackages, Name: "no_key_packages", Message: "no fresh KeyPackage"})},
			[]string{"channel", "invite", "general", pidB}, "", 1, api.CodeNoKeyPackages, "no_key_packages", "no fresh KeyPackage", false},
		{"name from code", &fake{err: &client.Error{Code: api.CodeNotMember, Message: "not a member"}}, []string{"send", "x", "hi"}, "", 1, api.CodeNotMember, "not_member", "not a member", false},
		{"no daemon", nil, []string{"id"}, "", 1, codeNoDaemon, "no_daemon", "no daemon at /s/spacepanda.sock; start one with `spacepandad`", true},
		{"no daemon send", nil, []string{"send", "general", "hi"}, "", 1, codeNoDaemon, "no_daemon", "no daemon at /s/spacepanda.sock", true},
		{"timeout", &fake{err: context.DeadlineExceeded}, []string{"channel", "list"}, "", 1, api.CodeTimeout, "timeout", "timed out", false},
		{"other error", &fake{err: errors.New("boom")}, []string{"peers"}, "", 1, api.CodeInternal, "internal", "boom", false},
		{"unknown command", &fake{}, []string{"frobnicate"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "unknown command", true},
		{"unknown channel subcommand", &fake{}, []string{"channel", "frob"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "unknown command \"frob\"", true},
		{"unknown flag", &fake{}, []string{"id", "--nope"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "unknown flag", true},
		{"missing arg", &fake{}, []string{"channel", "invite", "general"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "CHANNEL PEER_ID", true},
		{"extra arg", &fake{}, []string{"id", "x"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "no arguments", true},
		{"bad limit", &fake{}, []string{"history", "general", "--limit", "0"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "--limit", true},
		{"empty send", &fake{}, []string{"send", "general"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "nothing to send", true},
		{"oversized stdin", &fake{}, []string{"send", "general"}, strings.Repeat("x", api.MaxTextBytes+1), 1, api.CodeTooLarge, "too_large", "larger than", true},
		{"watch two channels", &fake{}, []string{"watch", "a", "b"}, "", 2, api.CodeInvalidArgument, "invalid_argument", "at most one CHANNEL", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, asJSON := range []bool{true, false} {
				args := tc.args
				if asJSON {
					args = append([]string{"--json"}, args...)
				}
				out, errOut, code := run(t, context.Background(), tc.f, tc.stdin, args...)
				if code != tc.exit {
					t.Errorf("json=%v: exit %d, want %d", asJSON, code, tc.exit)
				}
				if !strings.HasPrefix(errOut, "spacepanda: ") || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("json=%v: stderr %q, want one line with %q", asJSON, errOut, tc.msg)
				}
				if !asJSON {
					if out != "" {
						t.Errorf("stdout %q, want nothing", out)
					}
					continue
				}
				var doc struct {
					Error struct {
						Code    *api.Code `json:"code"`
						Name    string    `json:"name"`
						Message string    `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Error.Code == nil {
					t.Fatalf("stdout %q is not an error document (%v)", out, err)
				}
				var top map[string]map[string]any
				json.Unmarshal([]byte(out), &top)
				if len(top) != 1 || len(top["error"]) != 3 {
					t.Errorf("error document has extra fields: %s", out)
				}
				if *doc.Error.Code != tc.code || doc.Error.Name != tc.errName || !strings.Contains(doc.Error.Message, tc.msg) {
					t.Errorf("error = %+v, want code %d name %s message ~%q", doc.Error, tc.code, tc.errName, tc.msg)
				}
			}
			if tc.noDaemon && tc.f != nil && len(tc.f.calls) != 0 {
				t.Errorf("the daemon was asked %q", tc.f.calls)
			}
		})
	}
}

func TestVersionMismatchWarns(t *testing.T) {
	out, errOut, code := run(t, context.Background(), &fake{apiVer: api.Version + 1}, "", "--json", "channel", "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, fmt.Sprint(api.Version+1)) {
		t.Errorf("stderr %q, want a version warning", errOut)
	}
	sameJSON(t, out, `[{"channel":"`+chID+`","name":"general","members":2,"epoch":3}]`)
	_, errOut, _ = run(t, context.Background(), &fake{}, "", "channel", "list")
	if errOut != "" {
		t.Errorf("same version: stderr %q", errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, context.Background(), nil, "", "--json", "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	sameJSON(t, out, fmt.Sprintf(`{"version":%q,"api_version":%d}`, buildVersion(), api.Version))
	out, _, code = run(t, context.Background(), nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "spacepanda "+buildVersion()) {
		t.Errorf("version: exit %d, %q", code, out)
	}
	out, _, code = run(t, context.Background(), nil, "", "--version")
	if code != 0 || out != "spacepanda "+buildVersion()+"\n" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

func TestHelpListsCommands(t *testing.T) {
	out, _, code := run(t, context.Background(), nil, "", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"id", "peers", "connect", "channel", "invites", "accept", "decline", "send", "history", "watch", "version", "--json", "--socket", "--data-dir", "--timeout"} {
		if !strings.Contains(out, c) {
			t.Errorf("help lacks %q", c)
		}
	}
}

// TestTimeouts: group changes wait for commit acceptance, so they get a
// longer default than other commands; --timeout overrides both.
func TestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		key  string
		want time.Duration
	}{
		{"send default", []string{"send", "g", "hi"}, "send", defaultTimeout},
		{"invite default", []string{"channel", "invite", "g", pidB}, "invite", changeTimeout},
		{"invite flag", []string{"--timeout", "5s", "channel", "invite", "g", pidB}, "invite", 5 * time.Second},
		{"send flag", []string{"send", "--timeout", "2m", "g", "hi"}, "send", 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{}
			before := time.Now()
			if _, errOut, code := run(t, context.Background(), f, "", tc.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			dl, ok := f.ctxOf[tc.key].Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if got := dl.Sub(before); got < tc.want || got > tc.want+10*time.Second {
				t.Errorf("deadline in %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSocketResolution follows the order: --socket, then
// $SPACEPANDA_SOCKET, then the data directory's spacepanda.sock.
func TestSocketResolution(t *testing.T) {
	for _, tc := range []struct {
		name           string
		socket, data   string
		env            map[string]string
		want           string
		wantUsageError bool
	}{
		{"flag", "/f.sock", "/dd", map[string]string{envSocket: "/e.sock"}, "/f.sock", false},
		{"env socket", "", "/dd", map[string]string{envSocket: "/e.sock"}, "/e.sock", false},
		{"data dir flag", "", "/dd", map[string]string{envDataDir: "/ed"}, "/dd/spacepanda.sock", false},
		{"data dir env", "", "", map[string]string{envDataDir: "/ed", "XDG_DATA_HOME": "/x"}, "/ed/spacepanda.sock", false},
		{"xdg", "", "", map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/spacepanda/spacepanda.sock", false},
		{"relative xdg ignored", "", "", map[string]string{"XDG_DATA_HOME": "x", "HOME": "/h"}, "/h/.local/share/spacepanda/spacepanda.sock", false},
		{"home", "", "", map[string]string{"HOME": "/h"}, filepath.Join("/h", ".local/share/spacepanda/spacepanda.sock"), false},
		{"nothing", "", "", nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{socket: tc.socket, dataDir: tc.data, getenv: func(k string) string { return tc.env[k] }}
			got, err := e.socketPath()
			if tc.wantUsageError {
				if err == nil {
					t.Fatalf("socketPath = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("socketPath = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestNoDaemonNamesSocketFromDataDir: the message names the socket the
// CLI actually tried.
func TestNoDaemonNamesSocketFromDataDir(t *testing.T) {
	old := dial
	t.Cleanup(func() { dial = old })
	dial = func(_ context.Context, socket string) (daemon, error) {
		return nil, fmt.Errorf("%w at %s", client.ErrNoDaemon, socket)
	}
	dir := t.TempDir()
	t.Setenv(envSocket, "")
	var o, e bytes.Buffer
	code := Run(context.Background(), []string{"--data-dir", dir, "id"}, strings.NewReader(""), &o, &e)
	want := "spacepanda: no daemon at " + filepath.Join(dir, "spacepanda.sock") + "; start one with `spacepandad`\n"
	if code != 1 || e.String() != want || o.Len() != 0 {
		t.Errorf("exit %d, stderr %q, stdout %q; want stderr %q", code, e.String(), o.String(), want)
	}
}

func watchEvents() []api.Event {
	return []api.Event{
		{Cursor: "c1", Type: "message", Time: t0, Channel: chID, Message: &api.Message{Channel: chID, Seq: 1, ID: "m1", From: pidB, Text: "hi", Time: t0}},
		{Cursor: "c2", Type: "member_joined", Time: t0, Channel: chID, Epoch: 4, PeerID: pidB},
		{Cursor: "c3", Type: "member_left", Time: t0, Channel: chID, Epoch: 5, PeerID: pidB},
		{Cursor: "c4", Type: "invite", Time: t0, Invitation: &api.Invitation{Invite: "inv1", Channel: chID, Name: "general", From: pidB, ReceivedAt: t0}},
	}
}

// lineWriter hands each written line to a channel, so that a test can
// wait for watch's output without sleeping.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf.Next(i + 1))
	}
}

// TestWatchJSON: one event object per line, api.Event's fields, and
// interrupting (ctx cancel) is a clean exit.
func TestWatchJSON(t *testing.T) {
	old := dial
	t.Cleanup(func() { dial = old })
	f := &fake{events: watchEvents()}
	dial = func(context.Context, string) (daemon, error) { return f, nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 16)}
	var errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"--socket", "/s", "--json", "watch", "general", "--since", "c0"}, strings.NewReader(""), out, &errOut)
	}()
	for i, want := range watchEvents() {
		line := <-out.lines
		var got api.Event
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("line %d = %+v, want %+v", i, got, want)
		}
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		if m["type"] != want.Type || m["cursor"] != want.Cursor {
			t.Errorf("line %d: type/cursor fields %v", i, m)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("interrupted watch: exit %d, stderr %q", code, errOut.String())
	}
	if len(out.lines) != 0 {
		t.Errorf("extra output after the events")
	}
	if f.calls[0] != "subscribe general c0" {
		t.Errorf("subscribe call %q", f.calls[0])
	}
}

func TestWatchHuman(t *testing.T) {
	f := &fake{events: watchEvents(), subErr: client.ErrDisconnected}
	out, errOut, code := run(t, context.Background(), f, "", "watch")
	if code != 1 || !strings.Contains(errOut, "the daemon closed the connection") {
		t.Errorf("disconnected watch: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), out)
	}
	for i, want := range []string{pidB + ": hi", "member_joined " + chID + " " + pidB + " epoch 4", "member_left " + chID, "spacepanda accept inv1"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
	if f.calls[0] != "subscribe  " {
		t.Errorf("subscribe call %q, want no channel filter", f.calls[0])
	}
}

func TestWatchDaemonError(t *testing.T) {
	f := &fake{err: &client.Error{Code: api.CodeCursorExpired, Name: "cursor_expired", Message: "cursor expired"}}
	out, errOut, code := run(t, context.Background(), f, "", "--json", "watch", "--since", "old")
	if code != 1 || !strings.Contains(errOut, "cursor expired") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	sameJSON(t, out, fmt.Sprintf(`{"error":{"code":%d,"name":"cursor_expired","message":"cursor expired"}}`, api.CodeCursorExpired))
}

func TestCleanQuotesControls(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "a\x1b[31mb": `a\x1b[31mb`, "tab\t": `tab\t`, "é ok": "é ok", "\u009b": `\u009b`} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
