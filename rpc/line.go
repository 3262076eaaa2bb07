package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/spacepanda/spacepanda/rpc/api"
)

// errLineTooLong ends a connection whose request line exceeds the cap.
var errLineTooLong = errors.New("rpc: request line too long")

// lineChannel is jrpc2's channel.Channel for one connection:
// newline-delimited like channel.Line, but with the request cap, the
// refusal of browser-originated requests, and the gates that hold a
// subscription's first notification until its response is written.
type lineChannel struct {
	nc  net.Conn
	r   *bufio.Reader
	max int

	wmu   sync.Mutex
	gates map[string]chan struct{} // request ID -> closed once its response is sent
}

func newLineChannel(nc net.Conn, max int) *lineChannel {
	return &lineChannel{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), max: max}
}

// Recv returns the next request line that is neither blank nor refused.
func (c *lineChannel) Recv() ([]byte, error) {
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.sendError(nil, api.CodeTooLarge, "request line over the limit; closing the connection")
			}
			return nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if id, browser := browserOriginated(line); browser {
			if id != nil {
				c.sendError(id, api.CodeForbidden, "browser-originated request refused")
			}
			continue
		}
		return line, nil
	}
}

func (c *lineChannel) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		if len(buf)+len(chunk) > c.max+1 { // +1: the newline itself
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return buf, nil // a last line without its newline
		default:
			return nil, err
		}
	}
}

// Send writes one message line. While a subscription waits for its
// response, outgoing responses are read for its ID.
func (c *lineChannel) Send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(append(msg, '\n')); err != nil {
		return err
	}
	if len(c.gates) > 0 {
		c.openGates(msg)
	}
	return nil
}

func (c *lineChannel) Close() error { return c.nc.Close() }

// gate returns a channel closed once the response to request id is sent.
func (c *lineChannel) gate(id string) <-chan struct{} {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.gates == nil {
		c.gates = make(map[string]chan struct{})
	}
	g := make(chan struct{})
	c.gates[id] = g
	return g
}

func (c *lineChannel) openGates(msg []byte) {
	type resp struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	var rs []resp
	if t := bytes.TrimSpace(msg); len(t) > 0 && t[0] == '[' {
		json.Unmarshal(t, &rs)
	} else {
		var r resp
		if json.Unmarshal(t, &r) == nil {
			rs = append(rs, r)
		}
	}
	for _, r := range rs {
		if r.Method != "" {
			continue
		}
		id := string(bytes.TrimSpace(r.ID))
		if g, ok := c.gates[id]; ok {
			close(g)
			delete(c.gates, id)
		}
	}
}

// sendError writes an error response outside jrpc2 (for lines jrpc2
// never sees). id nil is written as null.
func (c *lineChannel) sendError(id json.RawMessage, code api.Code, msg string) {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		V     string          `json:"jsonrpc"`
		ID    json.RawMessage `json:"id"`
		Error wireError       `json:"error"`
	}{"2.0", id, wireError{int(code), msg, api.ErrorData{Name: code.Name()}}})
	c.Send(b)
}

type wireError struct {
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Data    api.ErrorData `json:"data"`
}

// browserOriginated applies the package's rule for requests that came
// through an HTTP bridge from a browser. id is the request's ID to answer
// (nil for a notification, null for a batch).
func browserOriginated(line []byte) (id json.RawMessage, browser bool) {
	// A cheap look first: the keys can only be present if their letters
	// are, or if the line escapes characters (a key may be spelled with
	// \u escapes).
	low := bytes.ToLower(line)
	if !bytes.Contains(low, []byte("origin")) && !bytes.Contains(low, []byte("referer")) &&
		!bytes.Contains(low, []byte("headers")) && !bytes.Contains(line, []byte(`\`)) {
		return nil, false
	}
	t := bytes.TrimSpace(line)
	if len(t) > 0 && t[0] == '[' {
		var batch []json.RawMessage
		if json.Unmarshal(t, &batch) != nil {
			return nil, false
		}
		for _, m := range batch {
			if _, b := browserObject(m); b {
				return json.RawMessage("null"), true
			}
		}
		return nil, false
	}
	return browserObject(t)
}

func browserObject(m json.RawMessage) (json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(m, &obj) != nil {
		return nil, false
	}
	var id json.RawMessage
	browser := false
	for k, v := range obj {
		if k == "id" {
			id = v
		}
		switch strings.ToLower(k) {
		case "headers", "origin", "referer":
			browser = true
		case "params":
			var p map[string]json.RawMessage
			if json.Unmarshal(v, &p) == nil {
				for pk := range p {
					if lk := strings.ToLower(pk); lk == "origin" || lk == "referer" {
						browser = true
					}
				}
			}
		}
	}
	return id, browser
}
