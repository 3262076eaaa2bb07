package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// fuzzMaxLine is the line cap of the fuzzed server: small, so that the
// fuzzer reaches the too_large path with inputs it can mutate quickly.
const fuzzMaxLine = 4096

// fuzzSentinel is a request written after every fuzzed input: its
// response says the server has read the whole input and still answers on
// the connection. The ID is one a mutated input is unlikely to use.
const fuzzSentinel = `{"jsonrpc":"2.0","id":"fuzz-sentinel-7f3a","method":"node.ping"}`

// FuzzServerLine writes arbitrary bytes to a real server over a real unix
// socket and checks that the server never panics (a panic in a handler
// or in the line channel kills the fuzz worker), that what it writes back
// is JSON-RPC with at most one response per request line, and that after
// the connection a fresh one is still served. One node and one server
// serve every input of a worker.
func FuzzServerLine(f *testing.F) {
	p := cluster(f).Add("alice")
	fx := serve(f, p, func(s *Server) { s.maxLine = fuzzMaxLine })
	self := p.ID().String()

	req := func(id, method, params string) string {
		s := `{"jsonrpc":"2.0","id":` + id + `,"method":"` + method + `"`
		if params != "" {
			s += `,"params":` + params
		}
		return s + "}"
	}
	seeds := []string{
		// Valid requests of several methods.
		req("1", api.MethodPing, ""),
		req("2", api.MethodIdentity, "{}"),
		req("3", api.MethodPeers, "{}"),
		req("4", api.MethodCreate, `{"name":"fuzz","topic":"t"}`),
		req("5", api.MethodChannels, ""),
		req("6", api.MethodInfo, `{"channel":"fuzz"}`),
		req("7", api.MethodMembers, `{"channel":"fuzz"}`),
		req("8", api.MethodSend, `{"channel":"fuzz","text":"hi"}`),
		req("9", api.MethodHistory, `{"channel":"fuzz","limit":5}`),
		req("10", api.MethodInvite, `{"channel":"fuzz","peer_id":"`+self+`"}`),
		req("11", api.MethodInvitations, ""),
		req("12", api.MethodDecline, `{"invite":"nope"}`),
		req(`"s"`, api.MethodSubscribe, `{"cursor":"0"}`) + "\n" + req(`"u"`, api.MethodUnsubscribe, ""),
		req("13", api.MethodConnect, `{"addr":"/ip4/127.0.0.1/tcp/1/p2p/`+self+`"}`),
		`{"jsonrpc":"2.0","method":"node.ping"}`,                           // a notification: no response
		req("1", api.MethodPing, "") + "\n" + req("1", api.MethodPing, ""), // a reused ID
		// Malformed JSON.
		`{"jsonrpc":"2.0","id":1,"method":`,
		`{"jsonrpc":"2.0","id":1,"method":"node.ping"}}`,
		`not json at all`,
		`{}`, `[]`, `null`, `"x"`, `42`,
		`{"jsonrpc":"1.0","id":1,"method":"node.ping"}`,
		`{"jsonrpc":"2.0","id":{"a":1},"method":"node.ping"}`,
		// Batches.
		`[` + req("1", api.MethodPing, "") + `,` + req("2", api.MethodChannels, "") + `]`,
		`[` + req("1", api.MethodPing, "") + `,{"jsonrpc":"2.0","method":"node.ping"},1,"x"]`,
		`[` + req("1", api.MethodPing, "") + `,` + req("2", api.MethodPing, `{"origin":"http://e"}`) + `]`,
		// Unknown methods, wrong parameter types.
		req("1", "no.such", ""),
		req("1", "", ""),
		req("1", api.MethodInfo, `{"channel":5}`),
		req("1", api.MethodInfo, `["x"]`),
		req("1", api.MethodInfo, `"x"`),
		req("1", api.MethodHistory, `{"channel":"fuzz","limit":"5"}`),
		req("1", api.MethodSend, `{"channel":["fuzz"],"text":{"a":1}}`),
		// Huge numbers.
		req("1e400", api.MethodPing, ""),
		req("1", api.MethodHistory, `{"channel":"fuzz","limit":99999999999999999999999}`),
		req("1", api.MethodHistory, `{"channel":"fuzz","limit":-9223372036854775808,"before":18446744073709551615}`),
		req("1", api.MethodSubscribe, `{"cursor":"18446744073709551616"}`),
		// Nested depth.
		req("1", api.MethodPing, `{"x":`+strings.Repeat("[", 2000)+strings.Repeat("]", 2000)+`}`),
		strings.Repeat("[", 4000),
		// Invalid UTF-8.
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"channel.create\",\"params\":{\"name\":\"\xff\xfe\xc0\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xed\xa0\x80\",\"method\":\"node.ping\"}",
		// Browser-originated.
		`{"jsonrpc":"2.0","id":1,"method":"node.ping","headers":{"Origin":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"node.ping","\u004frigin":"x"}`,
		// Blank lines, CRs, an unterminated last line.
		"\n\n\r\n" + req("1", api.MethodPing, "") + "\r\n",
		// An oversized line, then a request that must not be answered.
		req("1", api.MethodPing, `{"pad":"`+strings.Repeat("x", fuzzMaxLine+10)+`"}`) + "\n" + req("2", api.MethodPing, ""),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzOne(t, fx.path, in)
		// The daemon still serves a fresh connection.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := client.Dial(ctx, fx.path)
		if err != nil {
			t.Fatalf("dial after the fuzzed connection: %v", err)
		}
		defer c.Close()
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("ping after the fuzzed connection: %v", err)
		}
	})
}

// fuzzOne writes in and the sentinel on one connection and checks what
// comes back until the sentinel's response or the end of the connection.
func fuzzOne(t *testing.T, path string, in []byte) {
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A deadline only turns a hang into a failure: the sentinel is a ping,
	// answered at once unless the server is stuck.
	nc.SetDeadline(time.Now().Add(time.Minute))

	// Written concurrently: the server may close the connection part way
	// (an oversized line), and a large input must not block the reader.
	werr := make(chan error, 1)
	go func() {
		msg := append(append(append([]byte(nil), in...), '\n'), fuzzSentinel+"\n"...)
		_, err := nc.Write(msg)
		werr <- err
	}()

	requests := 1 // the sentinel
	for _, l := range bytes.Split(in, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			requests++
		}
	}

	r := bufio.NewReader(nc)
	responses := 0
	sentinel := false
	for !sentinel {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				break // the server closed the connection: allowed
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("no sentinel response and no close within a minute; %d responses so far", responses)
			}
			t.Fatalf("reading: %v", err)
		}
		if err == nil {
			line = line[:len(line)-1]
		} else {
			t.Fatalf("a partial line %q before %v", line, err)
		}
		var isResp bool
		isResp, sentinel = checkLine(t, line)
		if isResp {
			responses++
		}
		if responses > requests {
			t.Fatalf("%d responses to %d request lines", responses, requests)
		}
	}
	nc.Close()
	<-werr // any write error is the server closing first, which is allowed
}

// checkLine checks that line is one JSON-RPC 2.0 message the server may
// send: a response (or a batch of them) or an event notification.
func checkLine(t *testing.T, line []byte) (response, sentinel bool) {
	t.Helper()
	type msg struct {
		V      string          `json:"jsonrpc"`
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	check := func(m msg) {
		if m.V != "2.0" {
			t.Fatalf("message without jsonrpc 2.0: %q", line)
		}
		if m.Method != "" {
			if m.Method != api.NotifyEvent || m.ID != nil {
				t.Fatalf("unexpected request from the server: %q", line)
			}
			return
		}
		if (m.Result == nil) == (m.Error == nil) {
			t.Fatalf("a response must carry exactly one of result and error: %q", line)
		}
		if string(m.ID) == `"fuzz-sentinel-7f3a"` {
			if m.Error != nil {
				t.Fatalf("the sentinel ping failed: %q", line)
			}
			sentinel = true
		}
	}
	t0 := bytes.TrimSpace(line)
	if len(t0) > 0 && t0[0] == '[' {
		var ms []msg
		if err := json.Unmarshal(t0, &ms); err != nil || len(ms) == 0 {
			t.Fatalf("server wrote a bad batch %q: %v", line, err)
		}
		for _, m := range ms {
			if m.Method != "" {
				t.Fatalf("a notification inside a batch response: %q", line)
			}
			check(m)
		}
		return true, sentinel
	}
	var m msg
	if err := json.Unmarshal(t0, &m); err != nil {
		t.Fatalf("server wrote a line that is not JSON %q: %v", line, err)
	}
	check(m)
	return m.Method == "", sentinel
}
