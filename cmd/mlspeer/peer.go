package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// peer is one MLS client: the process's one Storage, the groups it is in
// and the signature keys of the identities it has been asked to act as. It is not
// safe for concurrent use; serve handles one request at a time, in order.
type peer struct {
	storage *mlsgroup.MemoryStorage
	rand    io.Reader
	now     func() time.Time
	diag    io.Writer // diagnostics (stderr); never the protocol stream

	groups map[string]*group // by group ID
	// signers holds one signature key per identity and suite: RFC 9420
	// §7.3 wants the leaves of a group to have distinct signature keys,
	// so two identities of this peer must not share one.
	signers map[signerKey]*mlsgroup.Signer
	// kpSigners is the key that signed each KeyPackage, by its ref, for
	// join to find from the ref a Welcome names.
	kpSigners map[string]*mlsgroup.Signer
}

type signerKey struct {
	identity string
	suite    mlsgroup.CipherSuite
}

func newPeer(rand io.Reader, now func() time.Time, diag io.Writer) *peer {
	return &peer{
		storage:   new(mlsgroup.MemoryStorage),
		rand:      rand,
		now:       now,
		diag:      diag,
		groups:    make(map[string]*group),
		signers:   make(map[signerKey]*mlsgroup.Signer),
		kpSigners: make(map[string]*mlsgroup.Signer),
	}
}

// handler is one op: it returns the response object or an error, which
// becomes {"error": ...}.
type handler func(p *peer, r *request) (any, error)

// ops is the protocol's method table (README.md of the ts-mls peer).
var ops = map[string]handler{
	"ping":           (*peer).ping,
	"key_package":    (*peer).keyPackage,
	"create_group":   (*peer).createGroup,
	"add":            (*peer).add,
	"remove":         (*peer).remove,
	"update":         (*peer).update,
	"commit":         (*peer).commit,
	"propose_add":    (*peer).proposeAdd,
	"propose_remove": (*peer).proposeRemove,
	"join":           (*peer).join,
	"process":        (*peer).process,
	"encrypt":        (*peer).encrypt,
	"export":         (*peer).export,
	"state":          (*peer).state,
	"group_info":     (*peer).groupInfo,
	"external_join":  (*peer).externalJoin,
	"ratchet_tree":   (*peer).ratchetTree,
	"drop_group":     (*peer).dropGroup,
}

// serve answers each request line of in with one response line on out,
// until in ends. Bad requests get an error response; only I/O errors stop it.
func (p *peer) serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	for {
		line, readErr := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			w.Write(p.handle(line))
			w.WriteByte('\n')
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing response: %w", err)
			}
		}
		if readErr == io.EOF {
			return nil
		}
		if readErr != nil {
			return fmt.Errorf("reading request: %w", readErr)
		}
	}
}

// handle turns one request line into one response line (without newline).
func (p *peer) handle(line []byte) []byte {
	id, req, err := decodeRequest(line)
	if err != nil {
		return encodeResponse(id, errorResponse{err.Error()})
	}
	h, ok := ops[req.Op]
	if !ok {
		return encodeResponse(id, errorResponse{fmt.Sprintf("unknown op '%s'", req.Op)})
	}
	resp, err := p.call(h, req)
	if err != nil {
		return encodeResponse(id, errorResponse{err.Error()})
	}
	return encodeResponse(id, resp)
}

// call runs h, turning a panic into an error so that one bad request does
// not end the peer; the stack goes to the diagnostics stream.
func (p *peer) call(h handler, req *request) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(p.diag, "mlspeer: panic in %s: %v\n%s", req.Op, v, debug.Stack())
			resp, err = nil, fmt.Errorf("internal error in %s: %v", req.Op, v)
		}
	}()
	return h(p, req)
}
