package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type fixture struct {
	t    testing.TB
	peer *nodetest.Peer
	srv  *Server
	path string
	logs *syncBuffer
}

func cluster(t testing.TB) *nodetest.Cluster {
	c := nodetest.NewLoopback(t)
	c.Configure = func(_ string, cfg *node.Config) {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.FetchTimeout = 3 * time.Second
	}
	return c
}

// serve runs a real server for p on a socket in a fresh directory. tune,
// if set, adjusts the server's test hooks before it serves.
func serve(t testing.TB, p *nodetest.Peer, tune func(*Server)) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	path := filepath.Join(t.TempDir(), "sp.sock")
	s := New(p.Node, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(logs, nil)), SocketPath: path})
	if tune != nil {
		tune(s)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return &fixture{t: t, peer: p, srv: s, path: path, logs: logs}
}

func (f *fixture) dial() *client.Client {
	f.t.Helper()
	c, err := client.Dial(context.Background(), f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// raw is a connection that speaks lines by hand.
type raw struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (f *fixture) raw() *raw {
	f.t.Helper()
	nc, err := net.Dial("unix", f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { nc.Close() })
	// A deadline only turns a hang into a failure; no test waits on it.
	nc.SetReadDeadline(time.Now().Add(time.Minute))
	return &raw{t: f.t, nc: nc, r: bufio.NewReaderSize(nc, 1<<16)}
}

func (r *raw) send(line string) {
	r.t.Helper()
	if _, err := io.WriteString(r.nc, line+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

type reply struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Params json.RawMessage `json:"params"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (r *raw) recv() reply {
	r.t.Helper()
	line, err := r.r.ReadBytes('\n')
	if err != nil {
		r.t.Fatalf("reading a reply: %v", err)
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		r.t.Fatalf("reply %q: %v", line, err)
	}
	return rep
}

func (r *raw) wantError(code api.Code) reply {
	r.t.Helper()
	rep := r.recv()
	if rep.Error == nil || rep.Error.Code != int(code) {
		r.t.Fatalf("got %+v, want error %d (%s)", rep, code, code.Name())
	}
	return rep
}

func (r *raw) wantEOF() {
	r.t.Helper()
	for {
		line, err := r.r.ReadBytes('\n')
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return
		}
		if err != nil {
			r.t.Fatalf("want the connection closed, got %v", err)
		}
		_ = line
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func wantCode(t testing.TB, err error, code api.Code) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want a *client.Error %s", err, err, code.Name())
	}
	if e.Code != code || e.Name != code.Name() {
		t.Fatalf("got %d %s (%s), want %d %s", e.Code, e.Name, e.Message, code, code.Name())
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// events collects a client subscription's events.
type events struct {
	mu      sync.Mutex
	got     []api.Event
	changed chan struct{}
	done    chan error
}

func subscribe(t testing.TB, c *client.Client, p api.SubscribeParams) *events {
	ev := &events{changed: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-ev.done })
	go func() {
		ev.done <- c.Subscribe(ctx, p, func(e api.Event) {
			ev.mu.Lock()
			ev.got = append(ev.got, e)
			close(ev.changed)
			ev.changed = make(chan struct{})
			ev.mu.Unlock()
		})
	}()
	return ev
}

// await waits until cond holds of the events received.
func (ev *events) await(t testing.TB, what string, cond func([]api.Event) bool) []api.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		ev.mu.Lock()
		got := append([]api.Event(nil), ev.got...)
		ch := ev.changed
		ev.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-ch:
		case err := <-ev.done:
			t.Fatalf("%s: the subscription ended: %v", what, err)
		case <-timeout:
			t.Fatalf("timed out waiting for %s; have %d events", what, len(got))
		}
	}
}

func hasText(text string) func([]api.Event) bool {
	return func(es []api.Event) bool { return countText(es, text) > 0 }
}

func countText(es []api.Event, text string) int {
	n := 0
	for _, e := range es {
		if e.Type == "message" && e.Message != nil && e.Message.Text == text {
			n++
		}
	}
	return n
}

func TestSingleNodeMethods(t *testing.T) {
	ctx := ctxT(t)
	p := cluster(t).Add("alice")
	f := serve(t, p, nil)
	c := f.dial()

	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.PeerID != p.ID().String() || id.APIVersion != api.Version || id.Version != "test" || id.Socket != f.path || id.DataDir != p.Dir {
		t.Fatalf("identity %+v", id)
	}
	if len(id.Addrs) == 0 {
		t.Fatal("identity has no addrs")
	}
	for _, a := range id.Addrs {
		if !strings.HasSuffix(a, "/p2p/"+id.PeerID) || strings.Contains(a, "/tcp/0/") {
			t.Fatalf("addr %q is not a bound address of the peer", a)
		}
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Peers(ctx); err != nil {
		t.Fatal(err)
	}

	ch, err := c.Create(ctx, api.CreateParams{Name: "general", Topic: "talk"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name != "general" || ch.Topic != "talk" || ch.Members != 1 || len(ch.Channel) == 0 || ch.EpochAuthenticator == "" {
		t.Fatalf("created %+v", ch)
	}
	list, err := c.Channels(ctx)
	if err != nil || len(list) != 1 || list[0].Channel != ch.Channel {
		t.Fatalf("channels %+v, %v", list, err)
	}
	for _, ref := range []string{ch.Channel, "general"} {
		info, err := c.Info(ctx, ref)
		if err != nil || info.Channel != ch.Channel {
			t.Fatalf("info %q: %+v, %v", ref, info, err)
		}
	}
	ms, err := c.Members(ctx, "general")
	if err != nil || len(ms) != 1 || !ms[0].Self || ms[0].PeerID != id.PeerID {
		t.Fatalf("members %+v, %v", ms, err)
	}
	up, err := c.Update(ctx, "general")
	if err != nil || up.Channel != ch.Channel || up.Epoch != ch.Epoch+1 {
		t.Fatalf("update %+v, %v (created at epoch %d)", up, err, ch.Epoch)
	}

	var sent []api.SendResult
	for i := range 3 {
		r, err := c.Send(ctx, "general", "m"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Channel != ch.Channel || r.ID == "" {
			t.Fatalf("send %+v", r)
		}
		sent = append(sent, r)
	}
	hist, err := c.History(ctx, api.HistoryParams{Channel: "general"})
	if err != nil || len(hist) != 3 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	for i, m := range hist {
		if m.Text != "m"+strconv.Itoa(i) || m.ID != sent[i].ID || m.From != id.PeerID {
			t.Fatalf("history[%d] = %+v: not oldest first", i, m)
		}
	}
	page, err := c.History(ctx, api.HistoryParams{Channel: "general", Limit: 2})
	if err != nil || len(page) != 2 || page[0].Text != "m1" || page[1].Text != "m2" {
		t.Fatalf("newest two: %+v, %v", page, err)
	}
	after, err := c.History(ctx, api.HistoryParams{Channel: "general", After: hist[0].Seq})
	if err != nil || len(after) != 2 || after[0].Text != "m1" {
		t.Fatalf("after: %+v, %v", after, err)
	}

	inv, err := c.Invitations(ctx)
	if err != nil || len(inv) != 0 {
		t.Fatalf("invitations %+v, %v", inv, err)
	}

	// Errors carry the api's codes and names.
	_, err = c.Info(ctx, "nope")
	wantCode(t, err, api.CodeUnknownChannel)
	_, err = c.Info(ctx, "abcdef")
	wantCode(t, err, api.CodeUnknownChannel)
	_, err = c.Accept(ctx, "00ff")
	wantCode(t, err, api.CodeUnknownInvitation)
	wantCode(t, c.Decline(ctx, "00ff"), api.CodeUnknownInvitation)
	_, err = c.Leave(ctx, "general")
	wantCode(t, err, api.CodeInvalidArgument) // the last member cannot leave
	_, err = c.Invite(ctx, "general", "not-a-peer")
	wantCode(t, err, api.CodeInvalidArgument)
	_, err = c.Remove(ctx, "general", nodetest.RawHost(ctx, t).ID().String())
	wantCode(t, err, api.CodeNotMember)
	_, err = c.Send(ctx, "general", strings.Repeat("x", api.MaxTextBytes+1))
	wantCode(t, err, api.CodeTooLarge)
	_, err = c.Connect(ctx, "not a multiaddr")
	wantCode(t, err, api.CodeInvalidArgument)
	_, err = c.History(ctx, api.HistoryParams{Channel: "general", Limit: api.MaxHistoryLimit + 1})
	wantCode(t, err, api.CodeInvalidArgument)

	// A second channel of the same name makes the name ambiguous; the ID
	// still works.
	ch2, err := c.Create(ctx, api.CreateParams{Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(ctx, "general")
	wantCode(t, err, api.CodeAmbiguousChannel)
	if info, err := c.Info(ctx, ch2.Channel); err != nil || info.Channel != ch2.Channel {
		t.Fatalf("info by ID: %+v, %v", info, err)
	}
}

// TestNoKeyPackages: inviting a peer that never published gets the
// stable no_key_packages code, matched through node (rpc may not import
// keypkgdir).
func TestNoKeyPackages(t *testing.T) {
	ctx := ctxT(t)
	cl := cluster(t)
	alice := cl.Add("alice")
	f := serve(t, alice, nil)
	c := f.dial()
	if _, err := c.Create(ctx, api.CreateParams{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	stranger := nodetest.RawHost(ctx, t, alice)
	_, err := c.Invite(ctx, "x", stranger.ID().String())
	wantCode(t, err, api.CodeNoKeyPackages)
}

func TestTwoNodes(t *testing.T) {
	ctx := ctxT(t)
	cl := cluster(t)
	alice, bob, carol := cl.Add("alice"), cl.Add("bob"), cl.Add("carol")
	bob.PublishKeyPackages(ctx)
	carol.PublishKeyPackages(ctx)
	fa, fb, fc := serve(t, alice, nil), serve(t, bob, nil), serve(t, carol, nil)
	ca, cb, cc := fa.dial(), fb.dial(), fc.dial()

	ida, err := ca.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cb.Connect(ctx, ida.Addrs[0])
	if err != nil || conn.PeerID != ida.PeerID {
		t.Fatalf("connect: %+v, %v", conn, err)
	}
	peers, err := cb.Peers(ctx)
	if err != nil || !containsPeer(peers, ida.PeerID) {
		t.Fatalf("bob's peers %+v, %v: no alice", peers, err)
	}
	// Each connection's remote address, dialled directly: no circuit.
	for _, p := range peers {
		if p.PeerID != ida.PeerID {
			continue
		}
		if len(p.Addrs) == 0 {
			t.Errorf("bob's peer alice has no connection addresses: %+v", p)
		}
		for _, a := range p.Addrs {
			if !strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") || strings.Contains(a, "p2p-circuit") {
				t.Errorf("bob's connection to alice is from %q, want loopback TCP", a)
			}
		}
	}

	ch, err := ca.Create(ctx, api.CreateParams{Name: "team"})
	if err != nil {
		t.Fatal(err)
	}
	// Cursor "0": every event bob's node holds, so nothing that happens
	// after this line can fall before the subscription.
	bobEvents := subscribe(t, cb, api.SubscribeParams{Cursor: "0"})

	inv, err := ca.Invite(ctx, ch.Channel, bob.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Channel != ch.Channel || inv.PeerID != bob.ID().String() || inv.Epoch != ch.Epoch+1 {
		t.Fatalf("invite %+v after create %+v", inv, ch)
	}
	got := bobEvents.await(t, "the invitation", func(es []api.Event) bool {
		for _, e := range es {
			if e.Type == "invite" && e.Invitation != nil && e.Channel == ch.Channel {
				return true
			}
		}
		return false
	})
	_ = got
	invs, err := cb.Invitations(ctx)
	if err != nil || len(invs) != 1 || invs[0].Channel != ch.Channel || invs[0].Name != "team" || invs[0].From != ida.PeerID {
		t.Fatalf("bob's invitations %+v, %v", invs, err)
	}
	joined, err := cb.Accept(ctx, invs[0].Invite)
	if err != nil || joined.Channel != ch.Channel {
		t.Fatalf("accept: %+v, %v", joined, err)
	}
	// Bob's channel is named "team" too, so names work on his side.
	if _, err := cb.Send(ctx, "team", "hi from bob"); err != nil {
		t.Fatal(err)
	}

	if _, err := ca.Send(ctx, "team", "hello"); err != nil {
		t.Fatal(err)
	}
	bobEvents.await(t, "alice's hello", hasText("hello"))
	if _, err := ca.Send(ctx, "team", "marker"); err != nil {
		t.Fatal(err)
	}
	es := bobEvents.await(t, "alice's marker", hasText("marker"))
	if n := countText(es, "hello"); n != 1 {
		t.Fatalf("bob's subscription saw hello %d times", n)
	}
	checkConsecutive(t, es)
	alice.Await(ctx, "bob's message at alice", func() bool {
		for _, m := range alice.History(chID(ch)) {
			if m.Body == "hi from bob" {
				return true
			}
		}
		return false
	})
	hist, err := cb.History(ctx, api.HistoryParams{Channel: ch.Channel})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, ",") != "hi from bob,hello,marker" {
		t.Fatalf("bob's history %q", texts)
	}

	// Carol joins and is removed; bob leaves, and alice's node commits it.
	if _, err := ca.Invite(ctx, "team", carol.ID().String()); err != nil {
		t.Fatal(err)
	}
	carol.Await(ctx, "carol's invitation", func() bool { return len(carol.Invitations()) == 1 })
	cinv, err := cc.Invitations(ctx)
	if err != nil || len(cinv) != 1 {
		t.Fatalf("carol's invitations %+v, %v", cinv, err)
	}
	if _, err := cc.Accept(ctx, cinv[0].Invite); err != nil {
		t.Fatal(err)
	}
	nodetest.AwaitConverged(ctx, chID(ch), 3, alice, bob, carol)
	before, _ := ca.Info(ctx, "team")
	rm, err := ca.Remove(ctx, "team", carol.ID().String())
	if err != nil || rm.Epoch != before.Epoch+1 || rm.PeerID != carol.ID().String() {
		t.Fatalf("remove %+v, %v (before: epoch %d)", rm, err, before.Epoch)
	}
	ms, err := ca.Members(ctx, "team")
	if err != nil || len(ms) != 2 {
		t.Fatalf("members after remove %+v, %v", ms, err)
	}
	if _, err := cb.Leave(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	alice.Await(ctx, "bob's leave committed", func() bool {
		info, err := alice.Info(chID(ch))
		return err == nil && info.Members == 1
	})
	bobEvents.await(t, "bob's channel_left", func(es []api.Event) bool {
		for _, e := range es {
			if e.Type == "channel_left" && e.Channel == ch.Channel {
				return true
			}
		}
		return false
	})
}

// chID is a channel's ID as bytes, for the node-level helpers.
func chID(c api.Channel) []byte {
	id, _ := node.ParseChannelID(c.Channel)
	return id
}

func containsPeer(ps []api.Peer, id string) bool {
	for _, p := range ps {
		if p.PeerID == id {
			return true
		}
	}
	return false
}

// checkConsecutive asserts that events' cursors are consecutive: the node
// numbers every event, so a gap or a duplicate shows here.
func checkConsecutive(t testing.TB, es []api.Event) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		a, b := cursorSeq(t, es[i-1].Cursor), cursorSeq(t, es[i].Cursor)
		if b != a+1 {
			t.Fatalf("event %d has cursor %d after %d: a gap or a duplicate", i, b, a)
		}
	}
}

// cursorSeq is the Seq part of a "<boot>-<seq>" cursor; the tests know
// the format, clients must not need to.
func cursorSeq(t testing.TB, c string) uint64 {
	t.Helper()
	_, seq, ok := strings.Cut(c, "-")
	v, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		t.Fatalf("cursor %q is not <boot>-<seq>", c)
	}
	return v
}

// pair is two nodes with servers, alice and bob, in one channel "log".
// A node announces the messages it receives, not its own, so tests that
// need message events send at alice and watch at bob.
func pair(t testing.TB, tuneBob func(*Server)) (ca, cb *client.Client, fb *fixture) {
	ctx := ctxT(t)
	cl := cluster(t)
	alice, bob := cl.Add("alice"), cl.Add("bob")
	bob.PublishKeyPackages(ctx)
	fa := serve(t, alice, nil)
	fb = serve(t, bob, tuneBob)
	ca, cb = fa.dial(), fb.dial()
	ch, err := ca.Create(ctx, api.CreateParams{Name: "log"})
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, chID(ch), bob)
	nodetest.AwaitConverged(ctx, chID(ch), 2, alice, bob)
	return ca, cb, fb
}

func TestSubscribeFromCursor(t *testing.T) {
	ctx := ctxT(t)
	c, cb, _ := pair(t, nil)
	all := subscribe(t, cb, api.SubscribeParams{Cursor: "0"})
	for i := range 10 {
		if _, err := c.Send(ctx, "log", "a"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	es := all.await(t, "a9", hasText("a9"))
	var mid string
	for _, e := range es {
		if e.Type == "message" && e.Message.Text == "a4" {
			mid = e.Cursor
		}
	}

	// Replay from a4's cursor while more messages are sent concurrently:
	// the replay and the live events must join with no gap or duplicate.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := c.Send(ctx, "log", "b"+strconv.Itoa(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	resumed := subscribe(t, cb, api.SubscribeParams{Cursor: mid})
	wg.Wait()
	got := resumed.await(t, "b19", hasText("b19"))
	checkConsecutive(t, got)
	if cursorSeq(t, got[0].Cursor)-1 != cursorSeq(t, mid) {
		t.Fatalf("the replay starts at %s, want the event after %s", got[0].Cursor, mid)
	}
	for _, text := range []string{"a5", "a9", "b0", "b19"} {
		if n := countText(got, text); n != 1 {
			t.Fatalf("%s seen %d times", text, n)
		}
	}
	if countText(got, "a4") != 0 {
		t.Fatal("the event at the cursor itself was replayed")
	}

	// A cursor ahead of the node's events, and ones that are no cursor
	// (a bare number is what cursors were before they carried the boot).
	boot, _, _ := strings.Cut(mid, "-")
	err := cb.Subscribe(ctx, api.SubscribeParams{Cursor: boot + "-99999999"}, func(api.Event) {})
	wantCode(t, err, api.CodeCursorExpired)
	for _, bad := range []string{"x", "99999999", boot + "-x", boot + "-", "-5", "ABCDEF0123456789-5", "abc-5"} {
		err = cb.Subscribe(ctx, api.SubscribeParams{Cursor: bad}, func(api.Event) {})
		wantCode(t, err, api.CodeInvalidArgument)
	}
}

// TestSubscribeLiveRaw: with no cursor, the response comes first and
// carries the cursor of the last event before going live; every event
// after it arrives, and only those.
func TestSubscribeLiveRaw(t *testing.T) {
	ctx := ctxT(t)
	c, _, f := pair(t, nil)
	p := f.peer
	r := f.raw()
	r.send(`{"jsonrpc":"2.0","id":"s","method":"events.subscribe","params":{"channel":"log"}}`)
	rep := r.recv()
	if string(rep.ID) != `"s"` || rep.Error != nil {
		t.Fatalf("subscribe reply %+v", rep)
	}
	var res api.SubscribeResult
	if err := json.Unmarshal(rep.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.Cursor != p.BootID()+"-"+strconv.FormatUint(p.LastEvent(), 10) {
		t.Fatalf("cursor %s, node's last event %d", res.Cursor, p.LastEvent())
	}
	if _, err := c.Send(ctx, "log", "now"); err != nil {
		t.Fatal(err)
	}
	for {
		n := r.recv()
		if n.Method != api.NotifyEvent {
			t.Fatalf("got %+v, want an event", n)
		}
		var e api.Event
		if err := json.Unmarshal(n.Params, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == "message" {
			if e.Message.Text != "now" {
				t.Fatalf("first message event %+v", e)
			}
			break
		}
	}
	r.send(`{"jsonrpc":"2.0","id":"u","method":"events.unsubscribe"}`)
	for {
		if rep := r.recv(); string(rep.ID) == `"u"` {
			break
		}
	}
}

func TestBadInput(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, nil)
	r := f.raw()

	r.send(`{"jsonrpc":"2.0","id":1,"method":`)
	r.wantError(-32700)
	r.send(`{"jsonrpc":"2.0","id":2,"method":"no.such"}`)
	r.wantError(-32601)
	r.send(`{"jsonrpc":"2.0","id":3,"method":"channel.info","params":{"channel":5}}`)
	r.wantError(-32602)
	r.send(`{"jsonrpc":"2.0","id":4,"method":"channel.info","params":["x"]}`)
	r.wantError(-32602)
	// Blank lines are nothing; the connection still serves.
	r.send(``)
	r.send(`{"jsonrpc":"2.0","id":5,"method":"node.ping"}`)
	if rep := r.recv(); string(rep.ID) != "5" || rep.Error != nil {
		t.Fatalf("ping after bad input: %+v", rep)
	}
	r.send(`{"jsonrpc":"2.0","id":6,"method":"node.peers","params":{}}`)
	if rep := r.recv(); string(rep.ID) != "6" || rep.Error != nil {
		t.Fatalf("peers with {} params: %+v", rep)
	}
	r.send(`{"jsonrpc":"2.0","id":7,"method":"channel.info","params":{"channel":"none"}}`)
	if rep := r.wantError(api.CodeUnknownChannel); string(rep.Error.Data) != `{"name":"unknown_channel"}` {
		t.Fatalf("error data %+v", rep.Error)
	}
}

func TestBrowserOriginRefused(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, nil)
	r := f.raw()
	for i, line := range []string{
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","headers":{"Origin":"http://evil"}}`,
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","Origin":"http://evil"}`,
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","REFERER":"http://evil"}`,
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","params":{"origin":"http://evil"}}`,
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","params":{"Referer":"http://evil"}}`,
		`{"jsonrpc":"2.0","id":%d,"method":"node.ping","\u004frigin":"http://evil"}`,
	} {
		r.send(strings.Replace(line, "%d", strconv.Itoa(i), 1))
		rep := r.wantError(api.CodeForbidden)
		if string(rep.ID) != strconv.Itoa(i) {
			t.Fatalf("line %d: refusal for id %s", i, rep.ID)
		}
	}
	r.send(`[{"jsonrpc":"2.0","id":"b","method":"node.ping"},{"jsonrpc":"2.0","id":"c","method":"node.ping","headers":{}}]`)
	if rep := r.wantError(api.CodeForbidden); string(rep.ID) != "null" {
		t.Fatalf("batch refusal id %s", rep.ID)
	}
	// A text that merely mentions the words is not refused.
	c := f.dial()
	ctx := ctxT(t)
	if _, err := c.Create(ctx, api.CreateParams{Name: "origin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "origin", `{"headers":{"Referer":"x"}}`); err != nil {
		t.Fatal(err)
	}
	r.send(`{"jsonrpc":"2.0","id":"ok","method":"node.ping"}`)
	if rep := r.recv(); string(rep.ID) != `"ok"` || rep.Error != nil {
		t.Fatalf("ping after refusals: %+v", rep)
	}
}

func TestOversizedLine(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, func(s *Server) { s.maxLine = 4096 })
	r := f.raw()
	r.send(`{"jsonrpc":"2.0","id":1,"method":"node.ping","params":{"pad":"` + strings.Repeat("x", 5000) + `"}}`)
	r.wantError(api.CodeTooLarge)
	r.wantEOF()
	// The daemon still serves a new client.
	if _, err := f.dial().Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A line just under the cap is served.
	r2 := f.raw()
	r2.send(`{"jsonrpc":"2.0","id":2,"method":"node.ping","params":{"pad":"` + strings.Repeat("x", 3000) + `"}}`)
	if rep := r2.recv(); rep.Error != nil {
		t.Fatalf("a line under the cap: %+v", rep)
	}
}

// TestOversizedLineDefaultCap sends a line over api.MaxRequestBytes itself.
func TestOversizedLineDefaultCap(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, nil)
	r := f.raw()
	go io.WriteString(r.nc, `{"jsonrpc":"2.0","id":1,"method":"node.ping","params":{"pad":"`+strings.Repeat("x", api.MaxRequestBytes)+`"}}`+"\n")
	r.wantError(api.CodeTooLarge)
	r.wantEOF()
	if _, err := f.dial().Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestStalledSubscriber(t *testing.T) {
	ctx := ctxT(t)
	c, cb, f := pair(t, func(s *Server) {
		s.maxPending = 8
		s.tuneConn = func(uc *net.UnixConn) { uc.SetWriteBuffer(4096) }
	})
	// A healthy subscriber on its own connection keeps up throughout.
	healthy := subscribe(t, cb, api.SubscribeParams{Cursor: "0"})

	stalled, err := net.Dial("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.UnixConn).SetReadBuffer(4096)
	if _, err := io.WriteString(stalled, `{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	conns := func() int {
		f.srv.mu.Lock()
		defer f.srv.mu.Unlock()
		return len(f.srv.conns)
	}
	// Each send makes events; the stalled client never reads them, so its
	// connection must go once they pile up, however the buffers fall.
	const want = 3 // c, the healthy subscription, the stalled one
	text := ""
	for i := 0; ; i++ {
		if i == 5000 {
			t.Fatal("the stalled subscriber was never disconnected")
		}
		text = "msg" + strconv.Itoa(i) + strings.Repeat(".", 200)
		if _, err := c.Send(ctx, "log", text); err != nil {
			t.Fatal(err)
		}
		if conns() < want {
			break
		}
	}
	if !strings.Contains(f.logs.String(), "disconnecting a subscriber") {
		t.Fatalf("no log of the disconnect:\n%s", f.logs)
	}
	healthy.await(t, "the last message at the healthy subscriber", hasText(text))
	if _, err := cb.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The stalled client finds its connection closed after what was
	// buffered.
	stalled.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, stalled); err != nil && !isReset(err) {
		t.Fatalf("reading the stalled connection: %v", err)
	}
}

func TestForeignUIDRefused(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, func(s *Server) {
		s.peerUID = func(*net.UnixConn) (int, error) { return os.Getuid() + 1000, nil }
	})
	nc, err := net.Dial("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, `{"jsonrpc":"2.0","id":1,"method":"node.identity"}`+"\n")
	nc.SetReadDeadline(time.Now().Add(time.Minute))
	b, err := io.ReadAll(nc)
	if len(b) != 0 {
		t.Fatalf("a refused connection was sent %q", b)
	}
	if err != nil && !isReset(err) {
		t.Fatalf("want the connection closed, got %v", err)
	}
	if !strings.Contains(f.logs.String(), "refused a connection of another user") {
		t.Fatalf("the refusal is not logged:\n%s", f.logs)
	}
}

func TestPeerCredIsOwnUID(t *testing.T) {
	p := cluster(t).Add("alice")
	f := serve(t, p, nil)
	nc, err := net.Dial("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	uid, err := peerCredUID(nc.(*net.UnixConn))
	if err != nil || uid != os.Getuid() {
		t.Fatalf("SO_PEERCRED uid %d, %v; want %d", uid, err, os.Getuid())
	}
}

func TestSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sp.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket of mode 0600", fi.Mode())
	}
	// Nothing but the socket is left in the directory.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries", len(ents))
	}
	// A daemon serves there: a second Listen refuses.
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(ln)
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("second Listen: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}

	// A stale socket (its daemon died without removing it) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()

	// A file that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Fatal("the regular file changed")
	}
}

func TestServeAndClose(t *testing.T) {
	p := cluster(t).Add("alice")
	path := filepath.Join(t.TempDir(), "sp.sock")
	s := New(p.Node, Options{})
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// Serve refuses a path a daemon already serves.
	busy := New(p.Node, Options{})
	errc := make(chan error, 1)
	go func() { errc <- s.ServeListener(context.Background(), ln) }()
	if err := busy.Serve(context.Background(), path); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("Serve on a served path: %v", err)
	}
	c, err := client.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close ends ServeListener once every connection is closed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err == nil {
		t.Fatal("a connection survived Close")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left: %v", err)
	}

	// Serve with a context: it returns nil once the context ends, and a
	// client that dials meanwhile gets an answer or no daemon, never a hang.
	s2 := New(p.Node, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- s2.Serve(ctx, path) }()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(context.Background(), path); !errors.Is(err, client.ErrNoDaemon) {
		t.Fatalf("dial after Serve ended: %v", err)
	}
}
