package store

import "github.com/spacepanda/spacepanda/mlsgroup"

// mlsStorageOf hands s to mlsgroup as its Storage. (*Store).PutKeyPackage
// takes the lastResort parameter of mlsgroup's Storage as it is being
// changed; until that change is merged, mlsgroup still asks for the
// three-parameter form, which this adapter gives it (never last resort).
// Once merged, this returns s itself and the adapter goes.
func mlsStorageOf(s *Store) mlsgroup.Storage { return oldMLSStorage{s} }

type oldMLSStorage struct{ *Store }

func (o oldMLSStorage) PutKeyPackage(ref, private []byte, notAfter uint64) error {
	return o.Store.PutKeyPackage(ref, private, notAfter, false)
}
