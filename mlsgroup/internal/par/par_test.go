package par

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestDoRunsEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1000} {
		counts := make([]atomic.Int32, n)
		if err := Do(n, func(i int) error { counts[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d ran %d times", n, i, c)
			}
		}
	}
}

// TestDoReportsLowestFailure: the error does not depend on which goroutine
// got there first.
func TestDoReportsLowestFailure(t *testing.T) {
	for range 20 {
		err := Do(100, func(i int) error {
			if i%10 == 3 {
				return fmt.Errorf("piece %d: %w", i, errors.ErrUnsupported)
			}
			return nil
		})
		if err == nil || err.Error() != "piece 3: unsupported operation" {
			t.Fatalf("err = %v, want piece 3's", err)
		}
	}
}
