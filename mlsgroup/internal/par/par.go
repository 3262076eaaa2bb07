// Package par spreads independent pieces of one MLS operation over the
// cores: the signature checks of a large Add, the HPKE seals of an
// UpdatePath or a Welcome. Each piece costs tens of microseconds, so a
// 1000-member commit is worth splitting, and the goroutines end before the
// call returns, which keeps mlsgroup a state machine to its callers.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Do runs f(0) to f(n-1) on up to GOMAXPROCS goroutines and returns the
// error of the lowest i that failed, so that the outcome does not depend on
// scheduling. f must be safe to call concurrently for distinct i.
func Do(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
