package secret

import (
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New([]byte("hunter2-hunter2"))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, "hunter2") || strings.Contains(strings.ToLower(out), "68756e74") {
			t.Errorf("%s printed the secret: %s", verb, out)
		}
		wrapped := fmt.Sprintf(verb, struct{ K Secret }{s})
		if strings.Contains(wrapped, "hunter2") || strings.Contains(strings.ToLower(wrapped), "68756e74") {
			t.Errorf("%s in a struct printed the secret: %s", verb, wrapped)
		}
	}
}

func TestSecretEqualAndWipe(t *testing.T) {
	a, b := New([]byte{1, 2, 3}), New([]byte{1, 2, 3})
	if !a.Equal(b) || a.Equal(New([]byte{1, 2, 4})) || a.Equal(New([]byte{1, 2})) {
		t.Fatal("Equal is wrong")
	}
	buf := a.Bytes()
	a.Wipe()
	if !a.IsZero() || buf[0] != 0 || buf[2] != 0 {
		t.Fatal("Wipe left key material behind")
	}
}
