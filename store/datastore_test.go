package store

import (
	"errors"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dstest "github.com/ipfs/go-datastore/test"
)

func dsKey(s string) ds.Key { return ds.NewKey(s) }

// TestDatastoreSuite runs go-datastore's own conformance tests, which
// include the prefix queries the DHT makes. It leaves out
// SubtestCombinations (as the suite itself does under -race): it tries
// thousands of filter/order/offset/limit mixes that go-datastore's naive
// helpers apply on top of this datastore, and takes half a minute.
func TestDatastoreSuite(t *testing.T) {
	subtests := map[string]func(*testing.T, ds.Datastore){
		"BasicPutGet":       dstest.SubtestBasicPutGet,
		"NotFounds":         dstest.SubtestNotFounds,
		"Prefix":            dstest.SubtestPrefix,
		"Order":             dstest.SubtestOrder,
		"Limit":             dstest.SubtestLimit,
		"Filter":            dstest.SubtestFilter,
		"ManyKeysAndQuery":  dstest.SubtestManyKeysAndQuery,
		"ReturnSizes":       dstest.SubtestReturnSizes,
		"BasicSync":         dstest.SubtestBasicSync,
		"Batch":             func(t *testing.T, d ds.Datastore) { dstest.RunBatchTest(t, d.(ds.Batching)) },
		"BatchDelete":       func(t *testing.T, d ds.Datastore) { dstest.RunBatchDeleteTest(t, d.(ds.Batching)) },
		"BatchPutAndDelete": func(t *testing.T, d ds.Datastore) { dstest.RunBatchPutAndDeleteTest(t, d.(ds.Batching)) },
	}
	// Sealing is below the datastore's logic: the encrypted store runs the
	// subtests that read values and sizes back.
	sealedToo := map[string]bool{"BasicPutGet": true, "ReturnSizes": true, "Batch": true, "Prefix": true}
	for _, pass := range []string{"", "pw"} {
		t.Run(fmt.Sprintf("encrypted=%v", pass != ""), func(t *testing.T) {
			for name, f := range subtests {
				if pass != "" && !sealedToo[name] {
					continue
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					f(t, openTest(t, t.TempDir(), encOptions(pass)).Datastore())
				})
			}
		})
	}
}

// TestDatastoreStaysInItsNamespace: the DHT's keys cannot reach the store's
// own, and a query over the whole datastore sees only DHT keys.
func TestDatastoreStaysInItsNamespace(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var b Batch
	b.PutGroup([]byte("g"), []byte("state"))
	commit(t, s, &b)
	d := s.Datastore()
	ctx := t.Context()
	for i := range 300 { // more than one query page
		if err := d.Put(ctx, dsKey(fmt.Sprintf("/providers/%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	d.Put(ctx, dsKey("/providersX"), []byte("not under /providers"))
	d.Put(ctx, dsKey("/providers"), []byte("the prefix itself"))
	for _, c := range []struct {
		q    query.Query
		want int
	}{
		{query.Query{}, 302},
		{query.Query{Prefix: "/providers"}, 300},
		{query.Query{Prefix: "/providers", KeysOnly: true, Orders: []query.Order{query.OrderByKeyDescending{}}}, 300},
		{query.Query{Prefix: "/providers", Offset: 250, Limit: 100}, 50},
	} {
		res, err := d.Query(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		es, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != c.want {
			t.Errorf("%v: %d entries, want %d", c.q, len(es), c.want)
		}
		for i := 1; i < len(es) && len(c.q.Orders) > 0; i++ {
			if es[i-1].Key <= es[i].Key {
				t.Errorf("descending order broken at %s, %s", es[i-1].Key, es[i].Key)
				break
			}
		}
	}
	if v, err := s.Group([]byte("g")); err != nil || string(v) != "state" {
		t.Errorf("group = %q, %v", v, err)
	}
	if err := d.Sync(ctx, dsKey("/")); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if _, err := d.Get(ctx, dsKey("/missing")); !errors.Is(err, ds.ErrNotFound) {
		t.Errorf("Get missing: %v, want ds.ErrNotFound", err)
	}
	s.Close()
	if _, err := d.Get(ctx, dsKey("/providers/001")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	res, _ := d.Query(ctx, query.Query{})
	if _, err := res.Rest(); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close: %v", err)
	}
}
