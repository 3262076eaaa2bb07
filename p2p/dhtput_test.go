package p2p

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// countingValidator is versionValidator counting its Validate calls.
type countingValidator struct {
	versionValidator
	n atomic.Int64
}

func (c *countingValidator) Validate(key string, value []byte) error {
	c.n.Add(1)
	return c.versionValidator.Validate(key, value)
}

type acceptAny struct{ versionValidator }

func (acceptAny) Validate(string, []byte) error { return nil }

// TestDHTPutBudget: one peer can make a host validate only so many DHT
// records: of 30 PUTs in a row, the host validates those within the
// peer's budget (the default MaxPeerPuts, 8) and refuses the rest
// unvalidated; a peer whose record fails validation loses its whole
// budget at once, so that its next, valid, PUTs are refused unvalidated
// too. Another peer's budget is its own.
func TestDHTPutBudget(t *testing.T) {
	t.Parallel()
	const puts, budget = 30, 8
	counter := &countingValidator{}
	hosts := newHosts(t, 3, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Validators = map[string]Validator{"test": counter}
		} else {
			// The others send whatever they are asked to.
			cfg.Validators = map[string]Validator{"test": acceptAny{}}
		}
	})
	b, a, c := hosts[0], hosts[1], hosts[2]
	connect(t, a, b)
	connect(t, c, b)
	waitForRoutingTables(t, hosts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for i := range puts {
		a.PutValue(ctx, "/test/a", fmt.Appendf(nil, "v%05d", i))
	}
	n := counter.n.Load()
	t.Logf("%d PUTs from one peer: the host ran its validator %d times", puts, n)
	// A stored record is validated again when a new one is put beside it.
	if n > 2*budget {
		t.Fatalf("%d PUTs from one peer ran the host's validator %d times, want at most %d", puts, n, 2*budget)
	}
	if v, err := b.GetValue(ctx, "/test/a"); err != nil || string(v) < fmt.Sprintf("v%05d", budget/2) {
		t.Fatalf("the host holds %q, %v: the PUTs within budget were not stored", v, err)
	}

	before := counter.n.Load()
	c.PutValue(ctx, "/test/c", []byte("not a version"))
	if counter.n.Load() == before {
		t.Fatal("the host did not validate another peer's first PUT")
	}
	before = counter.n.Load()
	for i := range 5 {
		c.PutValue(ctx, "/test/c", fmt.Appendf(nil, "v%d", i))
	}
	if n := counter.n.Load() - before; n != 0 {
		t.Fatalf("after an invalid record, the peer's next PUTs ran the host's validator %d times", n)
	}
}
