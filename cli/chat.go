package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// chatHistory is how many of the newest messages chat opens with.
const chatHistory = 200

func (e *env) chatCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "chat CHANNEL",
		Short: "Talk in a channel interactively: its history, live messages and an input line",
		Long: "chat opens an interactive view of CHANNEL (its ID or unique name): the latest\n" +
			"messages, new ones as they arrive, and an input line; Enter sends. Esc, Ctrl+C or\n" +
			"/quit leaves. For scripts use `spacepanda watch` and `spacepanda send`.",
		Args: args(1, "CHANNEL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if e.json {
				return usageError("chat is interactive; use watch --json")
			}
			in, out, ok := terminals(e.stdin, e.stdout)
			if !ok {
				return usageError("chat needs a terminal on stdin and stdout; " +
					"use `spacepanda watch CHANNEL` to read and `spacepanda send CHANNEL TEXT` to write")
			}
			return e.chat(cmd.Context(), a[0], in, out)
		},
	}
}

// terminals reports whether both streams are terminals, as a TUI needs:
// a pipe would get escape sequences and never send key presses.
func terminals(stdin io.Reader, stdout io.Writer) (*os.File, *os.File, bool) {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(in.Fd()) || !term.IsTerminal(out.Fd()) {
		return nil, nil, false
	}
	return in, out, true
}

// chatReady, when set (by tests), runs after the daemon confirmed the
// subscription and before history is read: the window a message sent
// during chat's start-up falls into.
var chatReady func()

// chat runs the TUI. The subscription is confirmed before history is
// read (see chatFeed), so every message is in one or the other, or in
// both, which the model shows once.
func (e *env) chat(ctx context.Context, channel string, in, out *os.File) error {
	cctx := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	d, id, err := e.connect(cctx)
	if err != nil {
		return classify(err)
	}
	defer d.Close()
	info, err := d.Info(cctx, channel)
	if err != nil {
		return classify(err)
	}
	// The resolved ID from here on: a name could become ambiguous while
	// chat runs.
	chID := info.Channel
	// runCtx ends when chat does, so that nothing in flight outlives it.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	rpcCtx := func() (context.Context, context.CancelFunc) {
		if e.timeout > 0 {
			return context.WithTimeout(runCtx, e.timeout)
		}
		return context.WithCancel(runCtx)
	}

	m := newChatModel(chatConfig{
		self: id.PeerID, channel: chID, name: info.Name, now: time.Now,
		send: func(text string) tea.Cmd {
			return func() tea.Msg {
				c, cancel := rpcCtx()
				defer cancel()
				r, err := d.Send(c, chID, text)
				return chatSentMsg{text: text, res: r, err: err}
			}
		},
	})

	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	subDone := make(chan struct{})
	defer func() { stop(); <-subDone }()
	go func() {
		defer close(subDone)
		err := chatFeed(runCtx, d, chID, rpcCtx, func(msg tea.Msg) { p.Send(msg) })
		// Send is a no-op once the program has ended.
		p.Send(chatEndMsg{err})
	}()

	final, err := p.Run()
	if ctx.Err() != nil {
		// A signal: the normal way out, as for watch.
		return nil
	}
	if err != nil {
		return classify(err)
	}
	if fm, ok := final.(chatModel); ok && fm.fatal != nil {
		return fm.fatal
	}
	return nil
}

// chatFeed subscribes to channel chID and, once the daemon confirmed the
// subscription, reads the newest history page; it delivers that page
// (chatHistoryMsg) and then every event (chatEventMsg), in that order, and
// returns how the subscription ended. Reading history only after the
// confirmation closes the start-up window: a message stored before it is
// in the page, one stored after it is an event, one in between is in
// both and shown once (chatModel.addMessage). rpcCtx bounds the history
// read.
func chatFeed(ctx context.Context, d daemon, chID string, rpcCtx func() (context.Context, context.CancelFunc), deliver func(tea.Msg)) error {
	ready := func(string) {
		if chatReady != nil {
			chatReady()
		}
		// On the subscription's goroutine: events wait until the page is
		// delivered, so they come after it.
		hctx, cancel := rpcCtx()
		defer cancel()
		ms, err := d.History(hctx, api.HistoryParams{Channel: chID, Limit: chatHistory})
		deliver(chatHistoryMsg{msgs: ms, err: err})
	}
	return d.SubscribeWith(ctx, api.SubscribeParams{Channel: chID}, client.SubscribeOptions{Ready: ready},
		func(ev api.Event) { deliver(chatEventMsg{ev}) })
}

// The messages chatModel.Update takes, besides key presses and window
// sizes. Everything that talks to the daemon runs in a tea.Cmd or the
// subscription goroutine and comes back as one of these, so that the
// model is a pure function tests drive without a terminal or daemon.
type (
	chatHistoryMsg struct {
		msgs []api.Message
		err  error
	}
	chatEventMsg struct{ ev api.Event }
	chatSentMsg  struct {
		text string
		res  api.SendResult
		err  error
	}
	// chatEndMsg: the subscription ended, so the daemon is gone.
	chatEndMsg struct{ err error }
)

type chatConfig struct {
	self, channel, name string
	now                 func() time.Time
	send                func(text string) tea.Cmd
}

// chatLine is one line of the conversation: a message (seq > 0 orders
// it) or a note about the channel.
type chatLine struct {
	seq  uint64
	id   string
	from string
	text string
	time time.Time
	note bool
}

type chatModel struct {
	cfg    chatConfig
	lines  []chatLine
	seen   map[string]bool // message IDs shown
	seqs   map[uint64]bool // and their Seqs
	input  textinput.Model
	status string
	fatal  error

	width, height int
	scroll        int // lines scrolled back from the bottom
}

func newChatModel(cfg chatConfig) chatModel {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "type a message; Enter sends, Esc leaves"
	in.CharLimit = api.MaxTextBytes
	in.Focus()
	return chatModel{cfg: cfg, seen: map[string]bool{}, seqs: map[uint64]bool{}, input: in, status: "loading history…"}
}

func (m chatModel) Init() tea.Cmd { return textinput.Blink }

func (m chatModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.SetWidth(max(msg.Width-len(m.input.Prompt)-1, 1))
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case chatHistoryMsg:
		if msg.err != nil {
			m.fatal = classify(msg.err)
			return m, tea.Quit
		}
		for _, x := range msg.msgs {
			m.addMessage(x)
		}
		if m.status == "loading history…" {
			m.status = ""
		}
		return m, nil
	case chatEventMsg:
		m.event(msg.ev)
		return m, nil
	case chatSentMsg:
		if msg.err != nil {
			m.status = "not sent: " + clean(errText(msg.err))
			if m.input.Value() == "" {
				m.input.SetValue(msg.text) // so that a retry is one Enter away
			}
			return m, nil
		}
		m.status = ""
		// The event may come first or after; the ID shows it once.
		m.addMessage(api.Message{Channel: m.cfg.channel, Seq: msg.res.Seq, ID: msg.res.ID,
			From: m.cfg.self, Text: msg.text, Time: m.cfg.now()})
		return m, nil
	case chatEndMsg:
		m.fatal = &cliError{code: codeDisconnected, name: "disconnected", msg: "the daemon closed the connection", exit: exitError}
		if msg.err != nil && !errors.Is(msg.err, io.EOF) && !errors.Is(msg.err, client.ErrDisconnected) && !errors.Is(msg.err, context.Canceled) {
			m.fatal = classify(msg.err)
		}
		m.status = "disconnected: " + clean(m.fatal.Error())
		return m, tea.Quit
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m chatModel) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "ctrl+c", "esc":
		return m, tea.Quit
	case "pgup":
		m.scroll += max(m.logHeight()-1, 1)
		return m, nil
	case "pgdown":
		m.scroll = max(m.scroll-max(m.logHeight()-1, 1), 0)
		return m, nil
	case "enter":
		text := m.input.Value()
		switch strings.TrimSpace(text) {
		case "/quit":
			return m, tea.Quit
		case "":
			return m, nil
		}
		m.input.Reset()
		m.scroll = 0
		m.status = "sending…"
		if m.cfg.send == nil {
			return m, nil
		}
		return m, m.cfg.send(text)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

func (m *chatModel) event(ev api.Event) {
	if ev.Channel != "" && ev.Channel != m.cfg.channel {
		return
	}
	switch ev.Type {
	case "message":
		if ev.Message != nil {
			m.addMessage(*ev.Message)
		}
		return
	case "member_joined":
		m.note(ev, m.who(ev.PeerID)+" joined")
	case "member_left":
		m.note(ev, m.who(ev.PeerID)+" left")
	case "member_removed":
		m.note(ev, m.who(ev.PeerID)+" was removed")
	case "channel_left":
		m.note(ev, "you are no longer a member of this channel")
		m.status = "you left this channel; Esc to close"
	case "commit_lost", "error":
		m.note(ev, ev.Type+": "+clean(ev.Error))
	}
}

func (m *chatModel) note(ev api.Event, text string) {
	m.lines = append(m.lines, chatLine{time: ev.Time, text: text, note: true})
}

// addMessage inserts x in Seq order unless it is already shown (by ID,
// or by Seq, the daemon's position of it in the channel's log): the
// history page, events and a send's result can each carry the same
// message.
func (m *chatModel) addMessage(x api.Message) {
	if x.ID == "" || m.seen[x.ID] || (x.Seq != 0 && m.seqs[x.Seq]) {
		return
	}
	m.seen[x.ID] = true
	if x.Seq != 0 {
		m.seqs[x.Seq] = true
	}
	l := chatLine{seq: x.Seq, id: x.ID, from: x.From, text: x.Text, time: x.Time}
	// Notes stay where they happened; messages move back past later
	// messages only.
	i := len(m.lines)
	for i > 0 && !m.lines[i-1].note && m.lines[i-1].seq > x.Seq {
		i--
	}
	m.lines = append(m.lines, chatLine{})
	copy(m.lines[i+1:], m.lines[i:])
	m.lines[i] = l
}

func (m chatModel) who(peer string) string {
	if peer == m.cfg.self {
		return "you"
	}
	return shortPeer(peer)
}

// shortPeer keeps a peer ID's tail: its head (12D3KooW for Ed25519
// keys) is the same for everyone.
func shortPeer(p string) string {
	p = clean(p)
	if len(p) <= 10 {
		return p
	}
	return "…" + p[len(p)-8:]
}

// render is one line of the conversation as shown: control characters in
// what peers wrote are quoted (clean), never sent to the terminal.
func (m chatModel) render(l chatLine) string {
	t := l.time.Local().Format("15:04")
	if l.note {
		return fmt.Sprintf("%s * %s", t, l.text)
	}
	return fmt.Sprintf("%s %-9s %s", t, m.who(l.from), clean(l.text))
}

func (m chatModel) logHeight() int {
	return max(m.height-3, 1) // header, status, input
}

func (m chatModel) View() tea.View {
	var b strings.Builder
	name := clean(m.cfg.name)
	if name == "" {
		name = m.cfg.channel
	}
	fmt.Fprintf(&b, "#%s  (Enter sends · PgUp/PgDn scroll · Esc or /quit leaves)\n", name)

	var rows []string
	for _, l := range m.lines {
		s := m.render(l)
		if m.width > 0 {
			s = ansi.Wrap(s, m.width, "")
		}
		rows = append(rows, strings.Split(s, "\n")...)
	}
	if m.height > 0 {
		h := m.logHeight()
		end := max(len(rows)-m.scroll, min(h, len(rows)))
		start := max(end-h, 0)
		rows = rows[start:end]
		for len(rows) < h {
			rows = append([]string{""}, rows...)
		}
	}
	for _, r := range rows {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	st := m.status
	if m.scroll > 0 && st == "" {
		st = "scrolled back; PgDn to return"
	}
	fmt.Fprintf(&b, "%s\n", st)
	b.WriteString(m.input.View())
	v := tea.NewView(b.String())
	v.AltScreen = true
	return v
}

// errText is an error as the status line shows it: the daemon's message
// and name when it refused.
func errText(err error) string {
	if re, ok := asRPCError(err); ok {
		if re.Name != "" {
			return re.Message + " (" + re.Name + ")"
		}
		return re.Message
	}
	return classify(err).msg
}
