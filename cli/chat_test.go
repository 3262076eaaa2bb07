package cli

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// chatHarness drives a chatModel as bubbletea would, without a terminal:
// commands the model returns are collected, not run, so that a test
// decides what the daemon answers and when.
type chatHarness struct {
	t    *testing.T
	m    chatModel
	sent []string
}

func newChatHarness(t *testing.T) *chatHarness {
	h := &chatHarness{t: t}
	h.m = newChatModel(chatConfig{
		self: pidA, channel: chID, name: "general",
		now: func() time.Time { return t0.Add(time.Hour) },
		send: func(text string) tea.Cmd {
			h.sent = append(h.sent, text)
			return func() tea.Msg { return nil }
		},
	})
	h.do(tea.WindowSizeMsg{Width: 200, Height: 40})
	return h
}

func (h *chatHarness) do(msg tea.Msg) tea.Cmd {
	h.t.Helper()
	nm, cmd := h.m.Update(msg)
	m, ok := nm.(chatModel)
	if !ok {
		h.t.Fatalf("Update returned %T", nm)
	}
	h.m = m
	return cmd
}

// typeEnter puts text in the input line and presses Enter.
func (h *chatHarness) typeEnter(text string) tea.Cmd {
	h.t.Helper()
	h.m.input.SetValue(text)
	return h.do(tea.KeyPressMsg{Code: tea.KeyEnter})
}

// log is the conversation as rendered, one string per line.
func (h *chatHarness) log() []string {
	var out []string
	for _, l := range h.m.lines {
		out = append(out, h.m.render(l))
	}
	return out
}

func (h *chatHarness) texts() []string {
	var out []string
	for _, l := range h.m.lines {
		if !l.note {
			out = append(out, l.text)
		}
	}
	return out
}

func msg(seq uint64, id, from, text string) api.Message {
	return api.Message{Channel: chID, Seq: seq, ID: id, From: from, Text: text, Time: t0.Add(time.Duration(seq) * time.Minute)}
}

func msgEvent(cursor string, x api.Message) chatEventMsg {
	return chatEventMsg{api.Event{Cursor: cursor, Type: "message", Time: x.Time, Channel: chID, Message: &x}}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestChatHistoryThenLive: the history page (in whatever order it comes)
// then live events, oldest first, each line with its time, its author
// ("you" for self) and its text.
func TestChatHistoryThenLive(t *testing.T) {
	h := newChatHarness(t)
	h.do(chatHistoryMsg{msgs: []api.Message{msg(2, "m2", pidB, "second"), msg(1, "m1", pidA, "first")}})
	h.do(msgEvent("c10", msg(3, "m3", pidB, "third")))
	h.do(msgEvent("c11", msg(5, "m5", pidA, "fifth")))
	sameStrings(t, "texts", h.texts(), []string{"first", "second", "third", "fifth"})
	log := h.log()
	hhmm := t0.Add(3 * time.Minute).Local().Format("15:04")
	if !strings.HasPrefix(log[2], hhmm+" ") || !strings.Contains(log[2], shortPeer(pidB)) {
		t.Errorf("line %q lacks time %s or the short peer ID %s", log[2], hhmm, shortPeer(pidB))
	}
	if !strings.Contains(log[0], " you ") || !strings.Contains(log[3], " you ") {
		t.Errorf("own lines not shown as you: %q", log)
	}
	if strings.Contains(log[2], pidB) && len(pidB) > 10 {
		t.Errorf("peer ID not shortened: %q", log[2])
	}
	view := h.m.View().Content
	if !strings.Contains(view, "third") || !strings.Contains(view, "#general") {
		t.Errorf("view lacks the conversation or the channel:\n%s", view)
	}
	if h.m.status != "" {
		t.Errorf("status %q after history loaded", h.m.status)
	}
}

// TestChatDuplicateShownOnce: the same message from history and from
// events (replayed or live) appears once, and one that arrives out of
// order is put in its place by Seq.
func TestChatDuplicateShownOnce(t *testing.T) {
	h := newChatHarness(t)
	h.do(chatHistoryMsg{msgs: []api.Message{msg(1, "m1", pidB, "first"), msg(2, "m2", pidB, "second")}})
	h.do(msgEvent("c9", msg(2, "m2", pidB, "second")))
	h.do(msgEvent("c12", msg(4, "m4", pidB, "fourth")))
	h.do(msgEvent("c12", msg(4, "m4", pidB, "fourth")))
	h.do(msgEvent("c11", msg(3, "m3", pidB, "third")))
	// The same position in the log under another ID is the same message.
	h.do(msgEvent("c13", msg(3, "m3bis", pidB, "third")))
	sameStrings(t, "texts", h.texts(), []string{"first", "second", "third", "fourth"})
	log := h.log()
	if len(log) != 4 {
		t.Errorf("log %q", log)
	}
}

// TestChatOwnSendShownOnce: a sent message shows once whether its result
// or its event comes first.
func TestChatOwnSendShownOnce(t *testing.T) {
	h := newChatHarness(t)
	h.do(chatHistoryMsg{})
	if cmd := h.typeEnter("hello"); cmd == nil {
		t.Fatal("Enter returned no command")
	}
	if len(h.sent) != 1 || h.sent[0] != "hello" {
		t.Fatalf("sent %q", h.sent)
	}
	if h.m.input.Value() != "" {
		t.Errorf("input %q after Enter", h.m.input.Value())
	}
	h.do(chatSentMsg{text: "hello", res: api.SendResult{Channel: chID, ID: "s1", Seq: 4}})
	h.do(msgEvent("c1", api.Message{Channel: chID, Seq: 4, ID: "s1", From: pidA, Text: "hello", Time: t0}))

	h.typeEnter("again")
	h.do(msgEvent("c2", api.Message{Channel: chID, Seq: 5, ID: "s2", From: pidA, Text: "again", Time: t0}))
	h.do(chatSentMsg{text: "again", res: api.SendResult{Channel: chID, ID: "s2", Seq: 5}})

	sameStrings(t, "texts", h.texts(), []string{"hello", "again"})
	for _, l := range h.log() {
		if !strings.Contains(l, " you ") {
			t.Errorf("own line %q not shown as you", l)
		}
	}
	if h.m.status != "" {
		t.Errorf("status %q after the sends", h.m.status)
	}
}

// TestChatEscapesControls: an escape sequence in a message (or a name)
// is shown quoted, never written to the terminal.
func TestChatEscapesControls(t *testing.T) {
	h := newChatHarness(t)
	h.m.cfg.name = "gen\x1b]0;pwned\x07"
	h.do(chatHistoryMsg{msgs: []api.Message{msg(1, "m1", pidB, "a\x1b[2Jb\u009bc\nd")}})
	log := h.log()
	if want := `a\x1b[2Jb\u009bc\nd`; !strings.Contains(log[0], want) {
		t.Errorf("line %q lacks %q", log[0], want)
	}
	view := h.m.View().Content
	for _, bad := range []string{"\x1b[2J", "\u009b", "\x1b]0", "\x07", "c\nd"} {
		if strings.Contains(view, bad) {
			t.Errorf("view contains %q:\n%q", bad, view)
		}
	}
}

// TestChatSendErrorInStatus: a refused send is a status line and the
// text back in the input, not an exit.
func TestChatSendErrorInStatus(t *testing.T) {
	h := newChatHarness(t)
	h.do(chatHistoryMsg{})
	h.typeEnter("too big")
	err := &client.Error{Code: api.CodeTooLarge, Name: "too_large", Message: "message too large"}
	if cmd := h.do(chatSentMsg{text: "too big", err: err}); isQuit(cmd) {
		t.Fatal("a send error quit chat")
	}
	if !strings.Contains(h.m.status, "message too large") || !strings.Contains(h.m.status, "too_large") {
		t.Errorf("status %q", h.m.status)
	}
	if !strings.Contains(h.m.View().Content, "not sent: message too large") {
		t.Errorf("view lacks the error:\n%s", h.m.View().Content)
	}
	if h.m.input.Value() != "too big" {
		t.Errorf("input %q, want the unsent text back", h.m.input.Value())
	}
	if h.m.fatal != nil || len(h.texts()) != 0 {
		t.Errorf("fatal %v, lines %q", h.m.fatal, h.texts())
	}
}

// TestChatQuit: /quit, Esc and Ctrl+C quit, with no error; plain Enter
// on an empty line does nothing.
func TestChatQuit(t *testing.T) {
	for name, key := range map[string]tea.KeyPressMsg{
		"esc":    {Code: tea.KeyEscape},
		"ctrl+c": {Code: 'c', Mod: tea.ModCtrl},
	} {
		h := newChatHarness(t)
		if !isQuit(h.do(key)) {
			t.Errorf("%s did not quit", name)
		}
	}
	h := newChatHarness(t)
	if cmd := h.typeEnter("  "); cmd != nil || len(h.sent) != 0 {
		t.Errorf("blank Enter sent %q", h.sent)
	}
	if !isQuit(h.typeEnter("/quit")) {
		t.Error("/quit did not quit")
	}
	if len(h.sent) != 0 || h.m.fatal != nil {
		t.Errorf("/quit sent %q, fatal %v", h.sent, h.m.fatal)
	}
}

// TestChatDisconnect: the subscription ending quits with an error, so
// chat exits non-zero.
func TestChatDisconnect(t *testing.T) {
	h := newChatHarness(t)
	h.do(chatHistoryMsg{})
	if !isQuit(h.do(chatEndMsg{client.ErrDisconnected})) {
		t.Fatal("disconnect did not quit")
	}
	ce := h.m.fatal
	if ce == nil {
		t.Fatal("no error after disconnect")
	}
	if got := classify(ce); got.exit != exitError || got.name != "disconnected" {
		t.Errorf("error %+v", got)
	}
	if !strings.Contains(h.m.status, "disconnected") {
		t.Errorf("status %q", h.m.status)
	}
}

// TestChatHistoryErrorQuits: the first page failing is fatal.
func TestChatHistoryErrorQuits(t *testing.T) {
	h := newChatHarness(t)
	err := &client.Error{Code: api.CodeNotMember, Name: "not_member", Message: "not a member"}
	if !isQuit(h.do(chatHistoryMsg{err: err})) || h.m.fatal == nil {
		t.Fatalf("history error: fatal %v", h.m.fatal)
	}
}

// TestChatRefusesJSON: chat has no --json form; it points to watch and
// never dials.
func TestChatRefusesJSON(t *testing.T) {
	f := &fake{}
	out, errOut, code := run(t, context.Background(), f, "", "--json", "chat", "general")
	if code != exitUsage || !strings.Contains(errOut, "chat is interactive; use watch --json") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	sameJSON(t, out, `{"error":{"code":-32001,"name":"invalid_argument","message":"chat is interactive; use watch --json"}}`)
	if len(f.calls) != 0 {
		t.Errorf("asked the daemon %q", f.calls)
	}
}

// TestChatRefusesNonTerminal: with stdin or stdout not a terminal (a
// buffer, or a real pipe), chat refuses and names watch and send.
func TestChatRefusesNonTerminal(t *testing.T) {
	f := &fake{}
	_, errOut, code := run(t, context.Background(), f, "", "chat", "general")
	if code != exitUsage || !strings.Contains(errOut, "needs a terminal") ||
		!strings.Contains(errOut, "spacepanda watch") || !strings.Contains(errOut, "spacepanda send") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var errBuf strings.Builder
	if code := Run(context.Background(), []string{"--socket", "/s", "chat", "general"}, r, w, &errBuf); code != exitUsage ||
		!strings.Contains(errBuf.String(), "needs a terminal") {
		t.Errorf("pipes: exit %d, stderr %q", code, errBuf.String())
	}
	if len(f.calls) != 0 {
		t.Errorf("asked the daemon %q", f.calls)
	}
}

func TestChatArgs(t *testing.T) {
	_, errOut, code := run(t, context.Background(), &fake{}, "", "chat")
	if code != exitUsage || !strings.Contains(errOut, "takes CHANNEL") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestHelpListsChat(t *testing.T) {
	out, _, code := run(t, context.Background(), &fake{}, "", "--help")
	if code != 0 || !strings.Contains(out, "chat") {
		t.Errorf("exit %d, help lacks chat:\n%s", code, out)
	}
}
