package node

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	e := &envelope{SentAt: 1234, Body: "héllo"}
	e.ID[0] = 7
	got, err := parseEnvelope(e.marshal())
	if err != nil || *got != *e {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	bad := [][]byte{
		nil, {2}, e.marshal()[:5], append(e.marshal(), 0),
		(&envelope{Body: string([]byte{0xff, 0xfe})}).marshal(),
		(&envelope{Body: strings.Repeat("x", MaxBodySize+1)}).marshal(),
	}
	for i, b := range bad {
		if _, err := parseEnvelope(b); !errors.Is(err, errMalformed) {
			t.Errorf("bad envelope %d: %v", i, err)
		}
	}
}

func TestChannelMetaChecks(t *testing.T) {
	for _, m := range []channelMeta{{Name: ""}, {Name: strings.Repeat("n", MaxNameSize+1)}, {Name: "ok", Topic: strings.Repeat("t", MaxTopicSize+1)}, {Name: "\xff"}} {
		if err := m.check(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q: %v", m.Name, err)
		}
	}
	m := channelMeta{Name: "general", Topic: "t"}
	got, err := parseChannelMeta(m.marshal())
	if err != nil || got != m {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
}

func TestLogRecordRoundTrip(t *testing.T) {
	r := &logRecord{Kind: logApplication, Epoch: 3, Message: []byte("mls"), Sender: []byte("peer"), Envelope: &envelope{Body: "b"}, ReceivedAt: 9}
	got, err := parseLogRecord(r.marshal())
	if err != nil || got.Kind != r.Kind || got.Epoch != 3 || !bytes.Equal(got.Message, r.Message) || got.Envelope.Body != "b" || got.ReceivedAt != 9 {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	if _, err := parseLogRecord((&logRecord{Kind: 9, Message: []byte("x")}).marshal()); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// Fuzz targets for every decoder of bytes that came from the network or
// from disk: none may panic, and what decodes re-encodes to the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add((&envelope{Body: "x"}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err == nil && !bytes.Equal(e.marshal(), data) {
			t.Fatalf("re-encodes differently")
		}
	})
}

func FuzzChannelMeta(f *testing.F) {
	f.Add(channelMeta{Name: "n", Topic: "t"}.marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseChannelMeta(data)
		if err == nil && !bytes.Equal(m.marshal(), data) {
			t.Fatalf("re-encodes differently")
		}
	})
}

func FuzzLogRecord(f *testing.F) {
	f.Add((&logRecord{Kind: logCommit, Message: []byte("m")}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseLogRecord(data)
		if err == nil && !bytes.Equal(r.marshal(), data) {
			t.Fatalf("re-encodes differently")
		}
	})
}

func FuzzInvitation(f *testing.F) {
	f.Add((&Invitation{Name: "n", Members: []peer.ID{"a"}, welcome: []byte("w")}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := parseInvitation([]byte{1}, data)
		if err == nil && !bytes.Equal(inv.marshal(), data) {
			t.Fatalf("re-encodes differently")
		}
	})
}
