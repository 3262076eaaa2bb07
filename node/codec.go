package node

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// The node's own encodings, in TLS presentation language with 2-byte
// length prefixes unless said otherwise. Each starts with a version byte,
// so that a later format is a new version, not a guess.
//
//	struct {
//	    uint8  version = 1;
//	    opaque message_id<16>;        // random, chosen by the author
//	    uint64 sent_at;               // author's clock, Unix milliseconds
//	    opaque body<0..2^16-1>;       // UTF-8 text
//	} Envelope;                       // the plaintext of an application message
//
//	struct {
//	    uint8  version = 1;
//	    opaque name<0..2^8-1>;
//	    opaque topic<0..2^16-1>;
//	} ChannelMeta;                    // the body of GroupContext extension ExtChannelMeta
//
//	struct {
//	    uint8  version = 1;
//	    uint8  kind;                  // LogKind
//	    uint64 epoch;                 // the epoch it was sent in
//	    opaque mls_message<0..2^24-1>;// as published: what sync serves
//	    opaque sender<0..2^8-1>;      // peer ID bytes (application messages)
//	    Envelope envelope<0..2^24-1>; // application messages only
//	    uint64 received_at;           // this node's clock, Unix milliseconds
//	} LogRecord;                      // one entry of a channel's message log
const codecVersion = 1

// ExtChannelMeta is the GroupContext extension (§13, private-use range)
// that carries a channel's human name and topic, so that every member and
// every invitee reads the same, authenticated by the group.
const ExtChannelMeta uint16 = 0xF5A1

// Limits of what a user may put in a message or a channel's metadata.
const (
	// MaxBodySize is the largest message body: ample for chat, far below
	// p2p's message cap once MLS framing is added.
	MaxBodySize = 16 << 10
	// MaxNameSize and MaxTopicSize bound channel metadata.
	MaxNameSize  = 64
	MaxTopicSize = 512
	// MessageIDSize is the size of an envelope's message ID.
	MessageIDSize = 16
)

var errMalformed = errors.New("node: malformed encoding")

// envelope is an application message's plaintext.
type envelope struct {
	ID     [MessageIDSize]byte
	SentAt uint64 // Unix milliseconds, the author's clock: shown, never trusted for order
	Body   string
}

func (e *envelope) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(codecVersion)
	b.AddBytes(e.ID[:])
	b.AddUint64(e.SentAt)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.Body)) })
	return b.BytesOrPanic()
}

func parseEnvelope(data []byte) (*envelope, error) {
	s := cryptobyte.String(data)
	var (
		v    uint8
		id   []byte
		e    envelope
		body cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != codecVersion || !s.ReadBytes(&id, MessageIDSize) ||
		!s.ReadUint64(&e.SentAt) || !s.ReadUint16LengthPrefixed(&body) || !s.Empty() {
		return nil, fmt.Errorf("%w: envelope", errMalformed)
	}
	if len(body) > MaxBodySize || !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: envelope body", errMalformed)
	}
	copy(e.ID[:], id)
	e.Body = string(body)
	return &e, nil
}

// channelMeta is what ExtChannelMeta holds.
type channelMeta struct {
	Name, Topic string
}

func (m channelMeta) check() error {
	switch {
	case len(m.Name) == 0 || len(m.Name) > MaxNameSize || !utf8.ValidString(m.Name):
		return fmt.Errorf("%w: a channel name is 1 to %d bytes of UTF-8", ErrInvalidArgument, MaxNameSize)
	case len(m.Topic) > MaxTopicSize || !utf8.ValidString(m.Topic):
		return fmt.Errorf("%w: a channel topic is at most %d bytes of UTF-8", ErrInvalidArgument, MaxTopicSize)
	}
	return nil
}

func (m channelMeta) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(codecVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(m.Name)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(m.Topic)) })
	return b.BytesOrPanic()
}

func parseChannelMeta(data []byte) (channelMeta, error) {
	s := cryptobyte.String(data)
	var (
		v           uint8
		name, topic cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != codecVersion || !s.ReadUint8LengthPrefixed(&name) ||
		!s.ReadUint16LengthPrefixed(&topic) || !s.Empty() {
		return channelMeta{}, fmt.Errorf("%w: channel metadata", errMalformed)
	}
	m := channelMeta{Name: string(name), Topic: string(topic)}
	if err := m.check(); err != nil {
		return channelMeta{}, fmt.Errorf("%w: channel metadata: %v", errMalformed, err)
	}
	return m, nil
}

// LogKind is what a log record holds.
type LogKind uint8

const (
	logApplication LogKind = 1
	logCommit      LogKind = 2
	logProposal    LogKind = 3
	// logResent is an application message logged already under another
	// copy (re-sent after a rewind, rewind.go): served by sync, never
	// shown.
	logResent LogKind = 4
)

// logRecord is one entry of a channel's log: the MLS message as it was
// published, for sync, and for application messages what it said, for
// history (the keys that decrypted it are gone).
type logRecord struct {
	Kind       LogKind
	Epoch      uint64
	Message    []byte
	Sender     []byte // peer ID bytes
	Envelope   *envelope
	ReceivedAt uint64
}

func (r *logRecord) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(codecVersion)
	b.AddUint8(uint8(r.Kind))
	b.AddUint64(r.Epoch)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Message) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Sender) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		if r.Envelope != nil {
			b.AddBytes(r.Envelope.marshal())
		}
	})
	b.AddUint64(r.ReceivedAt)
	return b.BytesOrPanic()
}

func parseLogRecord(data []byte) (*logRecord, error) {
	s := cryptobyte.String(data)
	var (
		v, kind       uint8
		r             logRecord
		msg, snd, env cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != codecVersion || !s.ReadUint8(&kind) || !s.ReadUint64(&r.Epoch) ||
		!s.ReadUint24LengthPrefixed(&msg) || !s.ReadUint8LengthPrefixed(&snd) ||
		!s.ReadUint24LengthPrefixed(&env) || !s.ReadUint64(&r.ReceivedAt) || !s.Empty() {
		return nil, fmt.Errorf("%w: log record", errMalformed)
	}
	r.Kind = LogKind(kind)
	if r.Kind < logApplication || r.Kind > logResent || len(msg) == 0 {
		return nil, fmt.Errorf("%w: log record kind %d", errMalformed, kind)
	}
	r.Message, r.Sender = []byte(msg), []byte(snd)
	if len(env) > 0 {
		e, err := parseEnvelope(env)
		if err != nil {
			return nil, err
		}
		r.Envelope = e
	}
	return &r, nil
}
