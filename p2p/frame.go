package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Stream protocols frame each field as an unsigned varint length and the
// bytes; numbers are unsigned varints; a status is one byte.

// Status bytes of stream responses.
const (
	statusOK      byte = 0
	statusRefused byte = 1
)

// maxReason caps the reason text of a refusal.
const maxReason = 256

func writeUvarint(w *bufio.Writer, v uint64) {
	w.Write(binary.AppendUvarint(nil, v))
}

func writeFrame(w *bufio.Writer, b []byte) {
	writeUvarint(w, uint64(len(b)))
	w.Write(b)
}

// readUvarint reads an unsigned varint and rejects one longer than its
// value needs: with a single encoding per value, a stream decodes one way
// and re-encodes to the bytes it came from.
func readUvarint(r *bufio.Reader) (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		b, err := r.ReadByte()
		if err != nil {
			return 0, protocolError(err)
		}
		buf[i] = b
		if b < 0x80 {
			// A last byte of zero after others adds nothing to the value.
			if i > 0 && b == 0 {
				return 0, fmt.Errorf("%w: non-minimal varint", ErrProtocol)
			}
			v, n := binary.Uvarint(buf[:i+1])
			if n <= 0 {
				return 0, fmt.Errorf("%w: varint overflows 64 bits", ErrProtocol)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: varint longer than %d bytes", ErrProtocol, binary.MaxVarintLen64)
}

// readFrame reads one frame of at most limit bytes, in chunks allocated as
// its bytes arrive (readFrameHeld).
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	return readFrameHeld(r, limit, nil)
}

func readByte(r *bufio.Reader) (byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, protocolError(err)
	}
	return b, nil
}

// protocolError marks a short or broken stream as the peer's fault, keeping
// the cause.
func protocolError(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}

// writeStatus answers with a status and, for a refusal, its reason.
func writeStatus(w *bufio.Writer, refusal error) {
	if refusal == nil {
		w.WriteByte(statusOK)
		return
	}
	reason := refusal.Error()
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	w.WriteByte(statusRefused)
	writeFrame(w, []byte(reason))
}

// readStatus reads a status; a refusal becomes a *RefusedError of kind.
func readStatus(r *bufio.Reader, kind error) error {
	st, err := readByte(r)
	if err != nil {
		return err
	}
	switch st {
	case statusOK:
		return nil
	case statusRefused:
		reason, err := readFrame(r, maxReason)
		if err != nil {
			return err
		}
		return &RefusedError{Kind: kind, Reason: string(reason)}
	}
	return fmt.Errorf("%w: status %d", ErrProtocol, st)
}

// ended reports whether ctx has ended, waiting for it once its deadline has
// passed: streams take their deadline from their context, and a stream may
// reach it, and fail as if the peer were at fault, a moment before the
// context does.
func ended(ctx context.Context) bool {
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
	}
	return ctx.Err() != nil
}

// guard binds a stream to ctx for one exchange: the stream's deadline is
// ctx's, or d from now, and a cancelled ctx resets the stream at once, which
// a deadline alone would not: a read blocked on a peer that stalls would
// otherwise wait for the deadline whatever the caller wants. The caller
// calls stop once the exchange is over, before ctx is cancelled, so that a
// stream that ended well is not reset after the fact.
func guard(ctx context.Context, s network.Stream, d time.Duration) (stop func() bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(d)
	}
	_ = s.SetDeadline(deadline)
	return context.AfterFunc(ctx, func() { s.Reset() })
}

// blame says whose failure a failed exchange of the caller's was. When the
// caller's own context ended, cancelled or past its deadline, the error is
// that context's, whatever the stream reported (a reset or a deadline that
// readers take for the peer's ErrProtocol); when the host closed, it is
// ErrClosed; otherwise it is err, the peer's or the network's. what names
// the exchange.
func (h *Host) blame(caller context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case ended(caller):
		return fmt.Errorf("%s: %w (%v)", what, caller.Err(), err)
	case h.ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%v)", what, ErrClosed, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
