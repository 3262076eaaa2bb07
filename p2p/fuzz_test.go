package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Limits the fuzz targets parse with: small, so that any allocation past
// them shows.
const (
	fuzzMaxEntries = 4
	fuzzMaxData    = 64
	fuzzMaxBytes   = 128
)

// encode runs a writer function into a byte slice.
func encode(write func(w *bufio.Writer)) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	write(w)
	w.Flush()
	return b.Bytes()
}

// parsing is data ready to parse, reporting how many bytes were consumed.
type parsing struct {
	src *bytes.Reader
	r   *bufio.Reader
	n   int
}

func newParsing(data []byte) *parsing {
	src := bytes.NewReader(data)
	return &parsing{src: src, r: bufio.NewReader(src), n: len(data)}
}

func (p *parsing) consumed() int { return p.n - p.src.Len() - p.r.Buffered() }

// checkReencoding checks what the writer side makes of a parsed value: it
// is exactly the bytes the value was parsed from (readUvarint refuses
// non-minimal varints and a sync page's end flag is 0 or 1, so there is one
// encoding per value), and it parses back to the same value.
func checkReencoding[T any](t *testing.T, consumed, again []byte, parse func([]byte) (T, int, error), want T) {
	t.Helper()
	if !bytes.Equal(again, consumed) {
		t.Fatalf("re-encoding %x differs from the parsed bytes %x", again, consumed)
	}
	got, n, err := parse(again)
	if err != nil {
		t.Fatalf("re-encoding %x of %x does not parse: %v", again, consumed, err)
	}
	if n != len(again) {
		t.Fatalf("re-encoding %x parsed %d of its %d bytes", again, n, len(again))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("re-encoding %x of %x parses to %+v, want %+v", again, consumed, got, want)
	}
}

type syncRequest struct {
	Channel, After []byte
	Limit          uint64
}

func parseSyncRequest(data []byte) (syncRequest, int, error) {
	p := newParsing(data)
	var q syncRequest
	var err error
	q.Channel, q.After, q.Limit, err = readSyncRequest(p.r)
	return q, p.consumed(), err
}

func FuzzSyncRequest(f *testing.F) {
	for _, q := range []syncRequest{
		{Channel: []byte("channel"), Limit: 64},
		{Channel: []byte("channel"), After: []byte("cursor-17"), Limit: 1},
		{Channel: bytes.Repeat([]byte{0xaa}, maxChannelID), After: bytes.Repeat([]byte{0xbb}, maxCursor), Limit: 1 << 40},
		{},
	} {
		f.Add(encode(func(w *bufio.Writer) { writeSyncRequest(w, q.Channel, q.After, q.Limit) }))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, n, err := parseSyncRequest(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if len(q.Channel) > maxChannelID || len(q.After) > maxCursor {
			t.Fatalf("parsed %d-byte channel, %d-byte cursor", len(q.Channel), len(q.After))
		}
		again := encode(func(w *bufio.Writer) { writeSyncRequest(w, q.Channel, q.After, q.Limit) })
		checkReencoding(t, data[:n], again, parseSyncRequest, q)
	})
}

type syncPageResponse struct {
	Page []SyncEntry
	End  bool
}

// parseSyncPageResponse reads a whole response, status first, as syncPage
// does.
func parseSyncPageResponse(data []byte) (syncPageResponse, int, error) {
	p := newParsing(data)
	if err := readStatus(p.r, ErrSyncRefused); err != nil {
		return syncPageResponse{}, p.consumed(), err
	}
	page, end, err := readSyncPage(p.r, fuzzMaxEntries, fuzzMaxData, fuzzMaxBytes)
	return syncPageResponse{page, end}, p.consumed(), err
}

func writeSyncPageResponse(w *bufio.Writer, resp syncPageResponse) {
	writeStatus(w, nil)
	writeSyncPage(w, resp.Page, resp.End)
}

func FuzzSyncPage(f *testing.F) {
	for _, resp := range []syncPageResponse{
		{End: true},
		{Page: []SyncEntry{{Cursor: []byte("c1"), Data: []byte("commit")}}},
		{Page: []SyncEntry{{Cursor: []byte("c1"), Data: []byte("a")}, {Cursor: []byte("c2"), Data: nil}, {Cursor: []byte("c3"), Data: bytes.Repeat([]byte("m"), fuzzMaxData)}}, End: true},
	} {
		f.Add(encode(func(w *bufio.Writer) { writeSyncPageResponse(w, resp) }))
	}
	f.Add(encode(func(w *bufio.Writer) { writeStatus(w, errors.New("not a member")) }))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, n, err := parseSyncPageResponse(data)
		if err != nil {
			var refused *RefusedError
			if errors.As(err, &refused) {
				if !errors.Is(err, ErrSyncRefused) || len(refused.Reason) > maxReason {
					t.Fatalf("refusal %v", err)
				}
				again := encode(func(w *bufio.Writer) { writeStatus(w, errors.New(refused.Reason)) })
				_, m, err := parseSyncPageResponse(again)
				var back *RefusedError
				if !errors.As(err, &back) || back.Reason != refused.Reason || m != len(again) || len(again) > n {
					t.Fatalf("refusal %q re-encoded as %x parses to %v", refused.Reason, again, err)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if len(resp.Page) > fuzzMaxEntries {
			t.Fatalf("parsed %d entries", len(resp.Page))
		}
		total := 0
		for _, e := range resp.Page {
			if len(e.Cursor) == 0 || len(e.Cursor) > maxCursor || len(e.Data) > fuzzMaxData {
				t.Fatalf("parsed entry with %d-byte cursor, %d bytes of data", len(e.Cursor), len(e.Data))
			}
			total += len(e.Data)
		}
		if total > fuzzMaxBytes {
			t.Fatalf("parsed %d bytes of data", total)
		}
		again := encode(func(w *bufio.Writer) { writeSyncPageResponse(w, resp) })
		checkReencoding(t, data[:n], again, parseSyncPageResponse, resp)
	})
}

// welcomeExchange is one run of the welcome protocol as the two sides read
// it: the Welcome the receiver reads, then the status the sender reads.
type welcomeExchange struct {
	Welcome []byte
	Reason  string // empty for an acknowledgement
}

const fuzzMaxWelcome = 64

func parseWelcomeExchange(data []byte) (welcomeExchange, int, error) {
	p := newParsing(data)
	var x welcomeExchange
	var err error
	if x.Welcome, err = readFrame(p.r, fuzzMaxWelcome); err != nil {
		return x, p.consumed(), err
	}
	err = readStatus(p.r, ErrWelcomeRejected)
	var refused *RefusedError
	if errors.As(err, &refused) {
		x.Reason, err = refused.Reason, nil
		if x.Reason == "" {
			// An empty reason would re-encode as an acknowledgement.
			x.Reason = "\x00empty"
		}
	}
	return x, p.consumed(), err
}

func writeWelcomeExchange(w *bufio.Writer, x welcomeExchange) {
	writeFrame(w, x.Welcome)
	switch x.Reason {
	case "":
		writeStatus(w, nil)
	case "\x00empty":
		writeStatus(w, errors.New(""))
	default:
		writeStatus(w, errors.New(x.Reason))
	}
}

func FuzzWelcomeRequest(f *testing.F) {
	for _, x := range []welcomeExchange{
		{Welcome: []byte("welcome")},
		{Welcome: bytes.Repeat([]byte{0x42}, fuzzMaxWelcome), Reason: "KeyPackage already used"},
		{Reason: string(bytes.Repeat([]byte("r"), maxReason))},
	} {
		f.Add(encode(func(w *bufio.Writer) { writeWelcomeExchange(w, x) }))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, n, err := parseWelcomeExchange(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if len(x.Welcome) > fuzzMaxWelcome || len(x.Reason) > maxReason {
			t.Fatalf("parsed %d-byte Welcome, %d-byte reason", len(x.Welcome), len(x.Reason))
		}
		again := encode(func(w *bufio.Writer) { writeWelcomeExchange(w, x) })
		checkReencoding(t, data[:n], again, parseWelcomeExchange, x)
	})
}

// parseStoredWelcome is parsePendingWelcome, which reads no further than
// the end of its last field.
func parseStoredWelcome(data []byte) (PendingWelcome, int, error) {
	w, err := parsePendingWelcome(data)
	if err != nil {
		return PendingWelcome{}, 0, err
	}
	return *w, len(w.marshal()), nil
}

func FuzzPendingWelcome(f *testing.F) {
	_, to := identity(f)
	for _, w := range []PendingWelcome{
		{ID: []byte{1, 2}, To: to, Welcome: []byte("welcome"), Expires: time.UnixMilli(1700000000123)},
		{ID: []byte("w1"), To: to, Welcome: bytes.Repeat([]byte{7}, 300), Expires: time.UnixMilli(-1)},
	} {
		f.Add(w.marshal())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := parsePendingWelcome(data)
		if err != nil {
			return
		}
		if w.To.Validate() != nil {
			t.Fatalf("parsed invalid peer ID %x", []byte(w.To))
		}
		again := w.marshal()
		checkReencoding(t, data, again, parseStoredWelcome, *w)
	})
}

// TestReadUvarint pins the varint decoding the fuzz targets rely on: every
// value has exactly one accepted encoding.
func TestReadUvarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 40, 1<<64 - 1} {
		data := encode(func(w *bufio.Writer) { writeUvarint(w, v) })
		got, err := readUvarint(bufio.NewReader(bytes.NewReader(data)))
		if err != nil || got != v {
			t.Errorf("%x: got %d, %v; want %d", data, got, err, v)
		}
	}
	for _, data := range [][]byte{
		{},                 // nothing
		{0x80},             // cut short
		{0x80, 0x00},       // 0 in two bytes
		{0xff, 0x80, 0x00}, // 127 in three bytes
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},       // 2^64 and more
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // eleven bytes
	} {
		if v, err := readUvarint(bufio.NewReader(bytes.NewReader(data))); !errors.Is(err, ErrProtocol) {
			t.Errorf("%x: got %d, %v; want ErrProtocol", data, v, err)
		}
	}
}
