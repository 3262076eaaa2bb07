package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Datastore is the DHT's namespace of the store, a go-datastore Batching
// datastore, so that a node keeps one database. Its writes are not synced
// one by one (DHT records are a cache the network can refill); Sync makes
// everything written before it durable. Closing it does nothing: the
// Store owns the database.
type Datastore struct {
	s    *Store
	sync atomic.Uint64
}

var _ ds.Batching = (*Datastore)(nil)

// Datastore returns the store's go-datastore namespace.
func (s *Store) Datastore() *Datastore { return &Datastore{s: s} }

// Get implements ds.Datastore.
func (d *Datastore) Get(_ context.Context, key ds.Key) ([]byte, error) {
	v, err := d.s.get("datastore get", dhtKey(key.String()))
	if errors.Is(err, ErrNotFound) {
		return nil, ds.ErrNotFound
	}
	return v, err
}

// Has implements ds.Datastore.
func (d *Datastore) Has(_ context.Context, key ds.Key) (bool, error) {
	if err := d.s.enter(); err != nil {
		return false, err
	}
	defer d.s.exit()
	ok, err := d.s.db.Has(dhtKey(key.String()), nil)
	return ok, translate(d.s.dir, "datastore has", err)
}

// GetSize implements ds.Datastore.
func (d *Datastore) GetSize(ctx context.Context, key ds.Key) (int, error) {
	v, err := d.Get(ctx, key)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Put implements ds.Datastore.
func (d *Datastore) Put(_ context.Context, key ds.Key, value []byte) error {
	if err := d.s.enter(); err != nil {
		return err
	}
	defer d.s.exit()
	k := dhtKey(key.String())
	v, err := d.s.sealValue(k, value)
	if err != nil {
		return err
	}
	return translate(d.s.dir, "datastore put", d.s.db.Put(k, v, nil))
}

// Delete implements ds.Datastore.
func (d *Datastore) Delete(_ context.Context, key ds.Key) error {
	if err := d.s.enter(); err != nil {
		return err
	}
	defer d.s.exit()
	return translate(d.s.dir, "datastore delete", d.s.db.Delete(dhtKey(key.String()), nil))
}

// Sync implements ds.Datastore. LevelDB has one journal, so a synced write
// makes every write before it durable, whatever its prefix.
func (d *Datastore) Sync(_ context.Context, _ ds.Key) error {
	if err := d.s.enter(); err != nil {
		return err
	}
	defer d.s.exit()
	v := binary.BigEndian.AppendUint64(nil, d.sync.Add(1))
	return translate(d.s.dir, "datastore sync", d.s.db.Put(metaKey(metaDSSync), v, syncWrite))
}

// Close implements ds.Datastore; it does not close the Store.
func (d *Datastore) Close() error { return nil }

// Batch implements ds.Batching. The batch is written atomically.
func (d *Datastore) Batch(_ context.Context) (ds.Batch, error) {
	return &dsBatch{d: d, b: new(leveldb.Batch)}, nil
}

type dsBatch struct {
	d *Datastore
	b *leveldb.Batch
}

func (b *dsBatch) Put(_ context.Context, key ds.Key, value []byte) error {
	k := dhtKey(key.String())
	v, err := b.d.s.sealValue(k, value)
	if err != nil {
		return err
	}
	b.b.Put(k, v)
	return nil
}

func (b *dsBatch) Delete(_ context.Context, key ds.Key) error {
	b.b.Delete(dhtKey(key.String()))
	return nil
}

func (b *dsBatch) Commit(_ context.Context) error {
	if err := b.d.s.enter(); err != nil {
		return err
	}
	defer b.d.s.exit()
	return translate(b.d.s.dir, "datastore batch", b.d.s.db.Write(b.b, nil))
}

// Query implements ds.Datastore. The prefix becomes a key range, and an
// order by key (either way) becomes the direction of the scan; filters,
// other orders, offset and limit are applied by go-datastore's naive
// helpers on top, as the interface allows.
//
// Results are read in pages, each with its own short-lived iterator, not
// with one iterator held for as long as the caller reads: that would pin a
// LevelDB snapshot and keep deleted secrets of the other namespaces in the
// files through compaction. A query therefore does not see one snapshot,
// which go-datastore does not promise either.
func (d *Datastore) Query(ctx context.Context, q query.Query) (query.Results, error) {
	naive := q
	naive.Prefix = ""
	prefix := ds.NewKey(q.Prefix).String()
	start := dhtKey(prefix)
	if prefix != "/" {
		// "/a" selects "/a/b", not "/a" or "/ab".
		start = append(start, '/')
	}
	it := &dsIter{d: d, ctx: ctx, keysOnly: q.KeysOnly, r: util.Range{Start: start, Limit: prefixEnd(start)}}
	if len(q.Orders) > 0 {
		switch q.Orders[0].(type) {
		case query.OrderByKey, *query.OrderByKey:
			naive.Orders = nil
		case query.OrderByKeyDescending, *query.OrderByKeyDescending:
			naive.Orders = nil
			it.reverse = true
		}
	}
	res := query.ResultsFromIterator(q, query.Iterator{Next: it.next})
	return query.NaiveQueryApply(naive, res), nil
}

// dsPage is how many entries a Query reads per iterator.
const dsPage = 128

type dsIter struct {
	d        *Datastore
	ctx      context.Context
	r        util.Range // what is left to read
	reverse  bool
	keysOnly bool
	buf      []query.Entry
	done     bool
}

func (it *dsIter) next() (query.Result, bool) {
	if len(it.buf) == 0 && !it.done {
		if err := it.fill(); err != nil {
			it.done = true
			return query.Result{Error: err}, true
		}
	}
	if len(it.buf) == 0 {
		return query.Result{}, false
	}
	e := it.buf[0]
	it.buf = it.buf[1:]
	return query.Result{Entry: e}, true
}

func (it *dsIter) fill() error {
	if err := it.ctx.Err(); err != nil {
		return err
	}
	s := it.d.s
	var last []byte
	var openErr error
	err := s.scanRaw("datastore query", &it.r, it.reverse, func(k, raw []byte) bool {
		e := query.Entry{Key: string(k[1:]), Size: len(raw)}
		if s.crypt != nil {
			e.Size -= sealOverhead
		}
		if !it.keysOnly {
			if e.Value, openErr = s.openValue(k, raw); openErr != nil {
				return false
			}
		}
		it.buf = append(it.buf, e)
		last = k
		return len(it.buf) < dsPage
	})
	if err = errors.Join(openErr, err); err != nil {
		return err
	}
	if len(it.buf) < dsPage {
		it.done = true
		return nil
	}
	if it.reverse {
		it.r.Limit = last
	} else {
		it.r.Start = append(bytes.Clone(last), 0)
	}
	return nil
}
