package main

import (
	"bytes"
	"testing"
)

// TestMessageGroupID covers §2.1.2's varint lengths of group_id, which
// short test group IDs never reach past one byte.
func TestMessageGroupID(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300)
	cases := []struct {
		name string
		msg  []byte
		want []byte
		ok   bool
	}{
		{"1-byte length", []byte{0, 1, 0, 2, 3, 'a', 'b', 'c', 9}, []byte("abc"), true},
		{"2-byte length", append([]byte{0, 1, 0, 1, 0x41, 0x2c}, long...), long, true},
		{"4-byte length", []byte{0, 1, 0, 1, 0x80, 0, 0, 1, 'x'}, []byte("x"), true},
		{"empty group_id", []byte{0, 1, 0, 2, 0}, []byte{}, true},
		{"reserved prefix", []byte{0, 1, 0, 2, 0xc0, 0, 0, 0, 0, 0, 0, 1, 'x'}, nil, false},
		{"truncated", []byte{0, 1, 0, 2, 5, 'a'}, nil, false},
		{"welcome", []byte{0, 1, 0, 3, 0, 1}, nil, false},
		{"header only", []byte{0, 1, 0, 2}, nil, false},
		{"short", []byte{0, 1}, nil, false},
	}
	for _, tc := range cases {
		got, err := messageGroupID(tc.msg)
		if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: messageGroupID = %q, %v", tc.name, got, err)
		}
	}
	if cs, err := groupInfoSuite([]byte{0, 1, 0, 4, 0, 1, 0, 2}); err != nil || cs != 2 {
		t.Errorf("groupInfoSuite = %d, %v", cs, err)
	}
	if _, err := groupInfoSuite([]byte{0, 1, 0, 3, 0, 1, 0, 2}); err == nil {
		t.Error("groupInfoSuite accepted a Welcome")
	}
}

// TestWelcomeRefs reads the KeyPackageRefs of Welcomes and refuses
// truncated ones and other wire formats.
func TestWelcomeRefs(t *testing.T) {
	// Two secrets: ref "ab" with kem_output "k" and ciphertext "cc", ref
	// "d" with empty ones; then encrypted_group_info, which is not read.
	secrets := []byte{2, 'a', 'b', 1, 'k', 2, 'c', 'c', 1, 'd', 0, 0}
	welcome := append([]byte{0, 1, 0, 3, 0, 1, byte(len(secrets))}, secrets...)
	welcome = append(welcome, 1, 'g')
	refs, err := welcomeRefs(welcome)
	if err != nil || len(refs) != 2 || string(refs[0]) != "ab" || string(refs[1]) != "d" {
		t.Fatalf("welcomeRefs = %q, %v", refs, err)
	}
	if refs, err := welcomeRefs([]byte{0, 1, 0, 3, 0, 1, 0}); err != nil || len(refs) != 0 {
		t.Errorf("no secrets: %q, %v", refs, err)
	}
	for name, msg := range map[string][]byte{
		"not a Welcome":      {0, 1, 0, 4, 0, 1, 0},
		"no secrets vector":  {0, 1, 0, 3, 0, 1},
		"secrets overrun":    {0, 1, 0, 3, 0, 1, 5, 1, 'a'},
		"ref overruns":       {0, 1, 0, 3, 0, 1, 2, 3, 'a'},
		"ciphertext missing": {0, 1, 0, 3, 0, 1, 3, 1, 'a', 0},
		"reserved length":    {0, 1, 0, 3, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0},
		"short":              {0, 1, 0},
	} {
		if refs, err := welcomeRefs(msg); err == nil {
			t.Errorf("%s: welcomeRefs = %q, want an error", name, refs)
		}
	}
}
