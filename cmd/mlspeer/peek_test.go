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
	if cs, err := welcomeSuite([]byte{0, 1, 0, 3, 0, 83}); err != nil || cs != 83 {
		t.Errorf("welcomeSuite = %d, %v", cs, err)
	}
	if cs, err := groupInfoSuite([]byte{0, 1, 0, 4, 0, 1, 0, 2}); err != nil || cs != 2 {
		t.Errorf("groupInfoSuite = %d, %v", cs, err)
	}
	if _, err := groupInfoSuite([]byte{0, 1, 0, 3, 0, 1, 0, 2}); err == nil {
		t.Error("groupInfoSuite accepted a Welcome")
	}
}
