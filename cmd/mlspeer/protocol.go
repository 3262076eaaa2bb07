package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// b64 is a binary field: standard, padded base64 in JSON, as the protocol
// requires of every MLS object, key and secret.
type b64 []byte

func (b b64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

func (b *b64) UnmarshalJSON(data []byte) error {
	if string(data) == "null" { // absent, as for every optional field
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("must be a base64 string")
	}
	out, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return errors.New("is not valid standard base64")
	}
	*b = out
	return nil
}

// request is every field any op takes; each op reads its own. Optional
// fields are pointers (or nil slices) so that absent differs from zero.
type request struct {
	Op string `json:"op"`

	Identity *string `json:"identity"`
	Suite    *uint16 `json:"suite"`
	// Grease is accepted and has no effect: mlsgroup puts no GREASE
	// values (§13.5) in its capabilities, so its output is always the
	// stable one that "grease":false asks ts-mls for.
	Grease          *bool   `json:"grease"`
	LifetimeS       *uint64 `json:"lifetime_s"`
	NotBefore       *uint64 `json:"not_before"`
	NotAfter        *uint64 `json:"not_after"`
	GroupID         b64     `json:"group_id"`
	PublicHandshake *bool   `json:"public_handshake"`
	Public          *bool   `json:"public"`

	KeyPackages []b64    `json:"key_packages"`
	KeyPackage  b64      `json:"key_package"`
	LeafIndex   *uint32  `json:"leaf_index"`
	LeafIndices []uint32 `json:"leaf_indices"`
	Add         []b64    `json:"add"`
	Remove      []uint32 `json:"remove"`

	Welcome   b64 `json:"welcome"`
	GroupInfo b64 `json:"group_info"`
	Message   b64 `json:"message"`
	// RatchetTree is a b64 tree for join and external_join, and a bool
	// (include the ratchet_tree extension in the Welcome) for commits.
	RatchetTree json.RawMessage `json:"ratchet_tree"`

	Plaintext         b64     `json:"plaintext"`
	AuthenticatedData b64     `json:"authenticated_data"`
	Label             *string `json:"label"`
	Context           b64     `json:"context"`
	Length            *int    `json:"length"`
}

// decodeRequest parses one line. The id comes back even when the rest does
// not decode, so that the error response can still be matched to it.
func decodeRequest(line []byte) (id json.RawMessage, req *request, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil || fields == nil {
		return nil, nil, errors.New("request must be a JSON object")
	}
	id = fields["id"]
	req = new(request)
	if err := json.Unmarshal(line, req); err != nil {
		return id, nil, fieldError(fields, err)
	}
	return id, req, nil
}

// fieldError names the field a request failed to decode on, by decoding
// the fields one at a time: encoding/json does not say which field a
// custom decoder (b64) refused.
func fieldError(fields map[string]json.RawMessage, err error) error {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		one, mErr := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		if mErr != nil {
			continue
		}
		var te *json.UnmarshalTypeError
		switch fErr := json.Unmarshal(one, new(request)); {
		case fErr == nil:
		case errors.As(fErr, &te):
			return fmt.Errorf("field '%s': unexpected JSON %s", name, te.Value)
		default:
			return fmt.Errorf("field '%s' %v", name, fErr)
		}
	}
	return fmt.Errorf("invalid request: %v", err)
}

// treeBytes is ratchet_tree as join and external_join take it: an optional
// b64 ratchet_tree extension body.
func (r *request) treeBytes() ([]byte, error) {
	if len(r.RatchetTree) == 0 || bytes.Equal(r.RatchetTree, []byte("null")) {
		return nil, nil
	}
	var t b64
	if err := t.UnmarshalJSON(r.RatchetTree); err != nil {
		return nil, fmt.Errorf("field 'ratchet_tree' %v", err)
	}
	return t, nil
}

// includeTree is ratchet_tree as commits take it: whether the Welcome's
// GroupInfo carries the ratchet_tree extension (default true).
func (r *request) includeTree() (bool, error) {
	if len(r.RatchetTree) == 0 || bytes.Equal(r.RatchetTree, []byte("null")) {
		return true, nil
	}
	var v bool
	if err := json.Unmarshal(r.RatchetTree, &v); err != nil {
		return false, errors.New("field 'ratchet_tree' must be a boolean in commit ops")
	}
	return v, nil
}

func (r *request) needGroupID() ([]byte, error) {
	if r.GroupID == nil {
		return nil, errors.New("missing 'group_id'")
	}
	return r.GroupID, nil
}

func (r *request) needIdentity() ([]byte, error) {
	if r.Identity == nil || *r.Identity == "" {
		return nil, errors.New("field 'identity' must be a non-empty string")
	}
	return []byte(*r.Identity), nil
}

// removed is the leaf_index / leaf_indices pair of remove and propose_remove.
func (r *request) removed() ([]uint32, error) {
	switch {
	case r.LeafIndices != nil:
		if len(r.LeafIndices) == 0 {
			return nil, errors.New("'leaf_indices' is empty")
		}
		return r.LeafIndices, nil
	case r.LeafIndex != nil:
		return []uint32{*r.LeafIndex}, nil
	}
	return nil, errors.New("need 'leaf_index' or 'leaf_indices'")
}

// encodeResponse writes resp as one JSON object with id first, if the
// request had one.
func encodeResponse(id json.RawMessage, resp any) []byte {
	body, err := json.Marshal(resp)
	if err != nil {
		body, _ = json.Marshal(errorResponse{fmt.Sprintf("encoding response: %v", err)})
	}
	if len(id) == 0 {
		return body
	}
	out := append([]byte(`{"id":`), id...)
	if len(body) > 2 { // not "{}"
		out = append(out, ',')
	}
	return append(out, body[1:]...)
}

type errorResponse struct {
	Error string `json:"error"`
}

// Responses, one per op (README.md of the ts-mls peer).
type (
	pingResponse struct {
		OK             bool     `json:"ok"`
		Implementation string   `json:"implementation"`
		Suites         []uint16 `json:"suites"`
	}
	keyPackageResponse struct {
		KeyPackage    b64 `json:"key_package"`
		KeyPackageRef b64 `json:"key_package_ref"`
	}
	createGroupResponse struct {
		Epoch     uint64 `json:"epoch"`
		LeafIndex uint32 `json:"leaf_index"`
	}
	commitResponse struct {
		Commit  b64    `json:"commit"`
		Welcome b64    `json:"welcome,omitempty"`
		Epoch   uint64 `json:"epoch"`
	}
	proposalResponse struct {
		Proposal b64 `json:"proposal"`
	}
	joinResponse struct {
		GroupID   b64    `json:"group_id"`
		Epoch     uint64 `json:"epoch"`
		LeafIndex uint32 `json:"leaf_index"`
	}
	externalJoinResponse struct {
		Commit    b64    `json:"commit"`
		GroupID   b64    `json:"group_id"`
		Epoch     uint64 `json:"epoch"`
		LeafIndex uint32 `json:"leaf_index"`
	}
	// applicationResponse always carries plaintext, "" when empty: a
	// peer that leaves an empty field out cannot be told from one that
	// lost it.
	applicationResponse struct {
		Type      string `json:"type"`
		Plaintext b64    `json:"plaintext"`
	}
	processResponse struct {
		Type    string  `json:"type"`
		Epoch   *uint64 `json:"epoch,omitempty"`
		Removed *bool   `json:"removed,omitempty"`
	}
	messageResponse struct {
		Message b64 `json:"message"`
	}
	exportResponse struct {
		Secret b64    `json:"secret"`
		Epoch  uint64 `json:"epoch"`
	}
	stateResponse struct {
		Epoch                   uint64   `json:"epoch"`
		CipherSuite             uint16   `json:"cipher_suite"`
		LeafIndex               uint32   `json:"leaf_index"`
		Active                  bool     `json:"active"`
		Status                  string   `json:"status"`
		Members                 []member `json:"members"`
		EpochAuthenticator      b64      `json:"epoch_authenticator"`
		TreeHash                b64      `json:"tree_hash"`
		ConfirmedTranscriptHash b64      `json:"confirmed_transcript_hash"`
		PendingProposals        int      `json:"pending_proposals"`
	}
	member struct {
		LeafIndex      uint32  `json:"leaf_index"`
		Identity       *string `json:"identity,omitempty"` // basic credentials only
		IdentityB64    b64     `json:"identity_b64,omitempty"`
		CredentialType string  `json:"credential_type"`
		SignatureKey   b64     `json:"signature_key"`
	}
	groupInfoResponse struct {
		GroupInfo b64 `json:"group_info"`
	}
	ratchetTreeResponse struct {
		RatchetTree b64 `json:"ratchet_tree"`
	}
	emptyResponse struct{}
)
