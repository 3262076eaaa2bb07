package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// The --json documents. Their field names are fixed by the daemon issue's
// table; scripts depend on them, so they are the CLI's own types rather
// than whatever api grows.
type (
	idJSON struct {
		PeerID  string   `json:"peer_id"`
		Addrs   []string `json:"addrs"`
		Version string   `json:"version"`
	}
	peerJSON struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	connectJSON struct {
		PeerID string `json:"peer_id"`
	}
	createJSON struct {
		Channel string `json:"channel"`
		Name    string `json:"name"`
	}
	channelJSON struct {
		Channel string `json:"channel"`
		Name    string `json:"name"`
		Members int    `json:"members"`
		Epoch   uint64 `json:"epoch"`
	}
	infoJSON struct {
		Channel            string `json:"channel"`
		Name               string `json:"name"`
		Epoch              uint64 `json:"epoch"`
		EpochAuthenticator string `json:"epoch_authenticator"`
		Members            int    `json:"members"`
		CipherSuite        uint16 `json:"cipher_suite"`
		Convergence        string `json:"convergence,omitempty"`
		ConvergenceNote    string `json:"convergence_note,omitempty"`
	}
	inviteJSON struct {
		Channel string `json:"channel"`
		PeerID  string `json:"peer_id"`
		Epoch   uint64 `json:"epoch"`
	}
	memberJSON struct {
		PeerID string `json:"peer_id"`
		Self   bool   `json:"self"`
	}
	changeJSON struct {
		Channel string `json:"channel"`
		Epoch   uint64 `json:"epoch"`
	}
	invitationJSON struct {
		Invite  string `json:"invite"`
		Channel string `json:"channel"`
		Name    string `json:"name"`
		From    string `json:"from"`
	}
	acceptJSON struct {
		Channel string `json:"channel"`
	}
	sendJSON struct {
		Channel string `json:"channel"`
		ID      string `json:"id"`
	}
	messageJSON struct {
		ID   string    `json:"id"`
		From string    `json:"from"`
		Text string    `json:"text"`
		Time time.Time `json:"time"` // encoding/json writes RFC 3339
	}
	versionJSON struct {
		Version    string `json:"version"`
		APIVersion int    `json:"api_version"`
	}
)

// args wraps cobra's argument checks so that a wrong count is a usage
// error, printed the same way as every other.
func args(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError("%s takes %s (got %d arguments)", cmd.CommandPath(), names, len(a))
		}
		return nil
	}
}

func table(w io.Writer, header string, rows func(tw io.Writer)) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
}

func (e *env) addCommands(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use: "id", Short: "Show the daemon's peer ID and addresses", Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.do(cmd, func(_ context.Context, _ daemon, id api.IdentityResult) (result, error) {
				out := idJSON{PeerID: id.PeerID, Addrs: nonNil(id.Addrs), Version: id.Version}
				return result{out, func(w io.Writer) {
					fmt.Fprintf(w, "peer ID: %s\nversion: %s\n", out.PeerID, out.Version)
					for _, a := range out.Addrs {
						fmt.Fprintf(w, "addr:    %s\n", a)
					}
				}}, nil
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use: "peers", Short: "List connected peers", Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				ps, err := d.Peers(ctx)
				out := make([]peerJSON, 0, len(ps))
				for _, p := range ps {
					out = append(out, peerJSON{p.PeerID, nonNil(p.Addrs)})
				}
				return result{out, func(w io.Writer) {
					if len(out) == 0 {
						fmt.Fprintln(w, "no peers connected")
						return
					}
					table(w, "PEER ID\tADDRS", func(tw io.Writer) {
						for _, p := range out {
							fmt.Fprintf(tw, "%s\t%s\n", p.PeerID, strings.Join(p.Addrs, ","))
						}
					})
				}}, err
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use: "connect MULTIADDR", Short: "Connect to a peer at a multiaddr ending in /p2p/<peer ID>", Args: args(1, "MULTIADDR"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				r, err := d.Connect(ctx, a[0])
				out := connectJSON{r.PeerID}
				return result{out, func(w io.Writer) { fmt.Fprintf(w, "connected to %s\n", out.PeerID) }}, err
			})
		},
	})
	root.AddCommand(e.channelCommand())
	root.AddCommand(&cobra.Command{
		Use: "invites", Short: "List pending invitations", Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				is, err := d.Invitations(ctx)
				out := make([]invitationJSON, 0, len(is))
				for _, i := range is {
					out = append(out, invitationJSON{i.Invite, i.Channel, i.Name, i.From})
				}
				return result{out, func(w io.Writer) {
					if len(out) == 0 {
						fmt.Fprintln(w, "no pending invitations")
						return
					}
					table(w, "INVITE\tCHANNEL\tNAME\tFROM", func(tw io.Writer) {
						for _, i := range out {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Invite, i.Channel, clean(i.Name), i.From)
						}
					})
				}}, err
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use: "accept INVITE", Short: "Accept an invitation and join its channel", Args: args(1, "INVITE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				c, err := d.Accept(ctx, a[0])
				return result{acceptJSON{c.Channel}, func(w io.Writer) {
					fmt.Fprintf(w, "joined %s (%s)\n", clean(c.Name), c.Channel)
				}}, err
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use: "decline INVITE", Short: "Decline an invitation", Args: args(1, "INVITE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				err := d.Decline(ctx, a[0])
				return result{struct{}{}, func(w io.Writer) { fmt.Fprintf(w, "declined %s\n", a[0]) }}, err
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use: "send CHANNEL [TEXT]", Short: "Send a message (the text, else stdin)",
		Long: "Send a message to CHANNEL (its ID or unique name). Without TEXT the message is read\n" +
			"from stdin, less one trailing newline. It returns once the message is durable and published.",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) < 1 {
				return usageError("%s takes CHANNEL [TEXT]", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			text := strings.Join(a[1:], " ")
			if len(a) == 1 {
				// One byte past the limit tells the daemon's too_large from a
				// message that just fits, without reading an endless pipe.
				b, err := io.ReadAll(io.LimitReader(e.stdin, api.MaxTextBytes+1))
				if err != nil {
					return classify(fmt.Errorf("reading the message from stdin: %w", err))
				}
				text = strings.TrimSuffix(string(b), "\n")
				if len(b) > api.MaxTextBytes {
					return &cliError{code: api.CodeTooLarge, name: api.CodeTooLarge.Name(),
						msg: fmt.Sprintf("message is larger than %d bytes", api.MaxTextBytes), exit: exitError}
				}
			}
			if text == "" {
				return usageError("nothing to send: give TEXT or write it to stdin")
			}
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				r, err := d.Send(ctx, a[0], text)
				return result{sendJSON{r.Channel, r.ID}, func(w io.Writer) { fmt.Fprintf(w, "sent %s\n", r.ID) }}, err
			})
		},
	})
	root.AddCommand(e.historyCommand(), e.watchCommand(), e.chatCommand())
	root.AddCommand(&cobra.Command{
		Use: "version", Short: "Show the CLI's version", Args: args(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			out := versionJSON{buildVersion(), api.Version}
			e.print(result{out, func(w io.Writer) { fmt.Fprintf(w, "spacepanda %s (API version %d)\n", out.Version, out.APIVersion) }})
			return nil
		},
	})
}

func (e *env) channelCommand() *cobra.Command {
	ch := &cobra.Command{
		Use: "channel", Short: "Create, inspect and change channels",
		// cobra only checks subcommand names at the root; without this a
		// mistyped one would print help and exit 0.
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageError("unknown command %q for %q", a[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	ch.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Create a channel with you as its only member", Args: args(1, "NAME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				c, err := d.Create(ctx, api.CreateParams{Name: a[0]})
				return result{createJSON{c.Channel, c.Name}, func(w io.Writer) {
					fmt.Fprintf(w, "created %s (%s)\n", clean(c.Name), c.Channel)
				}}, err
			})
		},
	})
	ch.AddCommand(&cobra.Command{
		Use: "list", Short: "List your channels", Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				cs, err := d.Channels(ctx)
				out := make([]channelJSON, 0, len(cs))
				for _, c := range cs {
					out = append(out, channelJSON{c.Channel, c.Name, c.Members, c.Epoch})
				}
				return result{out, func(w io.Writer) {
					if len(out) == 0 {
						fmt.Fprintln(w, "no channels; create one with `spacepanda channel create NAME`")
						return
					}
					table(w, "CHANNEL\tNAME\tMEMBERS\tEPOCH", func(tw io.Writer) {
						for _, c := range out {
							fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", c.Channel, clean(c.Name), c.Members, c.Epoch)
						}
					})
				}}, err
			})
		},
	})
	ch.AddCommand(&cobra.Command{
		Use: "info CHANNEL", Short: "Show a channel's group state", Args: args(1, "CHANNEL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				c, err := d.Info(ctx, a[0])
				out := infoJSON{c.Channel, c.Name, c.Epoch, c.EpochAuthenticator, c.Members, c.CipherSuite, c.Convergence, c.ConvergenceNote}
				return result{out, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
					fmt.Fprintf(tw, "channel:\t%s\nname:\t%s\nepoch:\t%d\nepoch authenticator:\t%s\nmembers:\t%d\ncipher suite:\t0x%04x\n",
						out.Channel, clean(out.Name), out.Epoch, out.EpochAuthenticator, out.Members, out.CipherSuite)
					if out.Convergence != "" {
						fmt.Fprintf(tw, "convergence:\t%s\n", out.Convergence)
					}
					if out.ConvergenceNote != "" {
						fmt.Fprintf(tw, "\t%s\n", clean(out.ConvergenceNote))
					}
					tw.Flush()
				}}, err
			})
		},
	})
	ch.AddCommand(&cobra.Command{
		Use: "invite CHANNEL PEER_ID", Short: "Add a peer to a channel (returns once the commit is merged)", Args: args(2, "CHANNEL PEER_ID"),
		Annotations: map[string]string{annChange: "1"},
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				r, err := d.Invite(ctx, a[0], a[1])
				out := inviteJSON{r.Channel, r.PeerID, r.Epoch}
				if out.PeerID == "" {
					out.PeerID = a[1]
				}
				return result{out, func(w io.Writer) {
					fmt.Fprintf(w, "invited %s to %s (epoch %d)\n", out.PeerID, out.Channel, out.Epoch)
				}}, err
			})
		},
	})
	ch.AddCommand(&cobra.Command{
		Use: "members CHANNEL", Short: "List a channel's members", Args: args(1, "CHANNEL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				ms, err := d.Members(ctx, a[0])
				out := make([]memberJSON, 0, len(ms))
				for _, m := range ms {
					out = append(out, memberJSON(m))
				}
				return result{out, func(w io.Writer) {
					for _, m := range out {
						if m.Self {
							fmt.Fprintf(w, "%s (you)\n", m.PeerID)
						} else {
							fmt.Fprintln(w, m.PeerID)
						}
					}
				}}, err
			})
		},
	})
	change := func(use, short, verb string, n int, names string, f func(context.Context, daemon, []string) (api.ChangeResult, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: args(n, names),
			Annotations: map[string]string{annChange: "1"},
			RunE: func(cmd *cobra.Command, a []string) error {
				return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
					r, err := f(ctx, d, a)
					out := changeJSON{r.Channel, r.Epoch}
					return result{out, func(w io.Writer) { fmt.Fprintf(w, "%s %s (epoch %d)\n", verb, out.Channel, out.Epoch) }}, err
				})
			},
		}
	}
	ch.AddCommand(
		change("remove CHANNEL PEER_ID", "Remove a member (returns once the commit is merged)", "removed a member from", 2, "CHANNEL PEER_ID",
			func(ctx context.Context, d daemon, a []string) (api.ChangeResult, error) {
				return d.Remove(ctx, a[0], a[1])
			}),
		change("leave CHANNEL", "Leave a channel", "left", 1, "CHANNEL",
			func(ctx context.Context, d daemon, a []string) (api.ChangeResult, error) { return d.Leave(ctx, a[0]) }),
		change("update CHANNEL", "Refresh your leaf key in a channel (post-compromise security)", "updated", 1, "CHANNEL",
			func(ctx context.Context, d daemon, a []string) (api.ChangeResult, error) { return d.Update(ctx, a[0]) }),
	)
	return ch
}

func (e *env) historyCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "history CHANNEL", Short: "Show a channel's latest messages, oldest first", Args: args(1, "CHANNEL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if limit < 1 || limit > api.MaxHistoryLimit {
				return usageError("--limit must be between 1 and %d", api.MaxHistoryLimit)
			}
			return e.do(cmd, func(ctx context.Context, d daemon, _ api.IdentityResult) (result, error) {
				ms, err := d.History(ctx, api.HistoryParams{Channel: a[0], Limit: limit})
				// The contract is oldest first; sorting keeps it so whatever
				// order a daemon sends.
				slices.SortStableFunc(ms, func(x, y api.Message) int { return cmpSeq(x.Seq, y.Seq) })
				out := make([]messageJSON, 0, len(ms))
				for _, m := range ms {
					out = append(out, messageJSON{m.ID, m.From, m.Text, m.Time})
				}
				return result{out, func(w io.Writer) {
					table(w, "TIME\tFROM\tTEXT", func(tw io.Writer) {
						for _, m := range out {
							fmt.Fprintf(tw, "%s\t%s\t%s\n", humanTime(m.Time), m.From, clean(m.Text))
						}
					})
				}}, err
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", api.DefaultHistoryLimit, "how many of the newest messages to show")
	return cmd
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *env) watchCommand() *cobra.Command {
	var cursor string
	cmd := &cobra.Command{
		Use: "watch [CHANNEL]", Short: "Print the daemon's events as they happen (one JSON object per line with --json)",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 1 {
				return usageError("%s takes at most one CHANNEL", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			p := api.SubscribeParams{Cursor: cursor}
			if len(a) == 1 {
				p.Channel = a[0]
			}
			ctx := cmd.Context()
			d, err := e.connectWithin(ctx)
			if err != nil {
				return classify(err)
			}
			defer d.Close()
			var mu sync.Mutex // the client may call back from its own goroutine
			err = d.Subscribe(ctx, p, func(ev api.Event) {
				mu.Lock()
				defer mu.Unlock()
				if e.json {
					writeJSON(e.stdout, ev)
					return
				}
				fmt.Fprintln(e.stdout, humanEvent(ev))
			})
			if ctx.Err() != nil {
				// Interrupted: the normal way to stop watching.
				return nil
			}
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, client.ErrDisconnected) {
				return &cliError{code: codeDisconnected, name: "disconnected", msg: "the daemon closed the connection", exit: exitError}
			}
			return classify(err)
		},
	}
	cmd.Flags().StringVar(&cursor, "since", "", "replay the events after this cursor (an event's \"cursor\") before going live")
	return cmd
}

// connectWithin connects under --timeout, for commands that then run for
// as long as the user wants.
func (e *env) connectWithin(ctx context.Context) (daemon, error) {
	cctx := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	d, _, err := e.connect(cctx)
	return d, err
}

func humanTime(t time.Time) string { return t.Local().Format(time.DateTime) }

// humanEvent is one plain line for an event.
func humanEvent(ev api.Event) string {
	t := humanTime(ev.Time)
	switch {
	case ev.Type == "message" && ev.Message != nil:
		return fmt.Sprintf("%s %s %s: %s", t, ev.Channel, ev.Message.From, clean(ev.Message.Text))
	case ev.Type == "invite" && ev.Invitation != nil:
		i := ev.Invitation
		return fmt.Sprintf("%s invite %s: %s (%s) from %s; spacepanda accept %s", t, i.Invite, clean(i.Name), i.Channel, i.From, i.Invite)
	}
	parts := []string{t, ev.Type}
	if ev.Channel != "" {
		parts = append(parts, ev.Channel)
	}
	if ev.PeerID != "" {
		parts = append(parts, ev.PeerID)
	}
	if ev.Epoch != 0 {
		parts = append(parts, fmt.Sprintf("epoch %d", ev.Epoch))
	}
	if ev.Error != "" {
		parts = append(parts, clean(ev.Error))
	}
	return strings.Join(parts, " ")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
