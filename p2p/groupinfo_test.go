package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestGroupView: a member gets the provider's view, with a GroupInfo only
// when it asks for one; a peer the provider refuses gets
// ErrGroupInfoRefused with its reason; a view the provider cannot serve
// within the limits is refused rather than sent.
func TestGroupView(t *testing.T) {
	t.Parallel()
	var member peer.ID
	view := GroupView{Epoch: 42, Authenticator: bytes.Repeat([]byte{7}, 32), GroupInfo: []byte("group info")}
	big := false
	provider := func(_ context.Context, from peer.ID, channel []byte, withGroupInfo bool) (GroupView, error) {
		if !bytes.Equal(channel, testChannel) || from != member {
			return GroupView{}, errors.New("not served")
		}
		v := view
		if big {
			v.GroupInfo = make([]byte, 2<<20)
		}
		return v, nil
	}
	hosts := newHosts(t, 3, func(i int, cfg *Config) {
		if i == 0 {
			cfg.GroupInfoProvider = provider
			cfg.MaxMessageSize = 1 << 20
		}
	})
	member = hosts[1].ID()
	connect(t, hosts[0], hosts[1])
	connect(t, hosts[0], hosts[2])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got, err := hosts[1].GroupView(ctx, hosts[0].ID(), testChannel, false)
	if err != nil || got.Epoch != 42 || !bytes.Equal(got.Authenticator, view.Authenticator) || got.GroupInfo != nil {
		t.Fatalf("view without GroupInfo: %+v, %v", got, err)
	}
	got, err = hosts[1].GroupView(ctx, hosts[0].ID(), testChannel, true)
	if err != nil || string(got.GroupInfo) != "group info" {
		t.Fatalf("view with GroupInfo: %+v, %v", got, err)
	}
	var refused *RefusedError
	for _, q := range []struct {
		h       *Host
		channel []byte
	}{{hosts[2], testChannel}, {hosts[1], []byte("another channel")}} {
		_, err = q.h.GroupView(ctx, hosts[0].ID(), q.channel, true)
		if !errors.Is(err, ErrGroupInfoRefused) || !errors.As(err, &refused) || refused.Reason != "not served" {
			t.Fatalf("refused view: %v", err)
		}
	}
	big = true
	if _, err = hosts[1].GroupView(ctx, hosts[0].ID(), testChannel, true); !errors.Is(err, ErrGroupInfoRefused) {
		t.Fatalf("a GroupInfo over MaxMessageSize: %v", err)
	}
	// A host that serves no view resets the stream.
	if _, err = hosts[0].GroupView(ctx, hosts[1].ID(), testChannel, false); err == nil {
		t.Fatal("a view from a host that serves none")
	}
}

// TestGroupViewCancelled: a provider that stalls holds the requester only
// until its context ends.
func TestGroupViewCancelled(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	hosts := newHosts(t, 2, func(i int, cfg *Config) {
		cfg.GroupInfoProvider = func(ctx context.Context, _ peer.ID, _ []byte, _ bool) (GroupView, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return GroupView{}, errors.New("stalled")
		}
	})
	connect(t, hosts[0], hosts[1])
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := hosts[1].GroupView(ctx, hosts[0].ID(), testChannel, true)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled view: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled view returned after %v", d)
	}
}

type groupInfoRequest struct {
	Channel       []byte
	WithGroupInfo bool
}

func parseGroupInfoRequest(data []byte) (groupInfoRequest, int, error) {
	p := newParsing(data)
	var q groupInfoRequest
	var err error
	q.Channel, q.WithGroupInfo, err = readGroupInfoRequest(p.r)
	return q, p.consumed(), err
}

func FuzzGroupInfoRequest(f *testing.F) {
	for _, q := range []groupInfoRequest{
		{Channel: []byte("channel")},
		{Channel: bytes.Repeat([]byte{0xaa}, maxChannelID), WithGroupInfo: true},
		{},
	} {
		f.Add(encode(func(w *bufio.Writer) { writeGroupInfoRequest(w, q.Channel, q.WithGroupInfo) }))
	}
	f.Add([]byte{1, 'c', 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		q, n, err := parseGroupInfoRequest(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if len(q.Channel) > maxChannelID {
			t.Fatalf("parsed a %d-byte channel", len(q.Channel))
		}
		again := encode(func(w *bufio.Writer) { writeGroupInfoRequest(w, q.Channel, q.WithGroupInfo) })
		checkReencoding(t, data[:n], again, parseGroupInfoRequest, q)
	})
}

// parseGroupViewResponse reads a whole response, status first, as
// groupView does.
func parseGroupViewResponse(data []byte) (GroupView, int, error) {
	p := newParsing(data)
	if err := readStatus(p.r, ErrGroupInfoRefused); err != nil {
		return GroupView{}, p.consumed(), err
	}
	v, err := readGroupView(p.r, fuzzMaxData)
	return v, p.consumed(), err
}

func FuzzGroupView(f *testing.F) {
	for _, v := range []GroupView{
		{Epoch: 1, Authenticator: []byte{1}},
		{Epoch: 1 << 50, Authenticator: bytes.Repeat([]byte{2}, maxAuthenticator), GroupInfo: bytes.Repeat([]byte{3}, fuzzMaxData)},
	} {
		f.Add(encode(func(w *bufio.Writer) { writeStatus(w, nil); writeGroupView(w, v) }))
	}
	f.Add(encode(func(w *bufio.Writer) { writeStatus(w, errors.New("not served")) }))
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := parseGroupViewResponse(data)
		if err != nil {
			var refused *RefusedError
			if errors.As(err, &refused) {
				if !errors.Is(err, ErrGroupInfoRefused) || len(refused.Reason) > maxReason {
					t.Fatalf("refusal %v", err)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if len(v.Authenticator) == 0 || len(v.Authenticator) > maxAuthenticator || len(v.GroupInfo) > fuzzMaxData {
			t.Fatalf("parsed a %d-byte authenticator and a %d-byte GroupInfo", len(v.Authenticator), len(v.GroupInfo))
		}
		again := encode(func(w *bufio.Writer) { writeStatus(w, nil); writeGroupView(w, v) })
		checkReencoding(t, data[:n], again, parseGroupViewResponse, v)
	})
}
