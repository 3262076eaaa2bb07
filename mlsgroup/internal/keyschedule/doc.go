// Package keyschedule derives the secrets of an MLS group (RFC 9420 §8 and
// §9): the per-epoch key schedule with its pre-shared keys, exporter and
// external key pair, the transcript hashes and confirmation tag that bind
// each epoch to the Commits that led to it, and the secret tree whose
// per-member hash ratchets yield the keys and nonces of PrivateMessages.
//
// Secret inputs are taken as byte slices, as package suite takes them;
// everything derived is held and returned as secret.Secret so that it never
// prints. The deletion schedule of §9.2 is applied where this package can
// see consumption happen, that is inside the SecretTree; the epoch's own
// secrets are deleted by the caller (Epoch.Wipe) once it moves on.
//
// Nothing here is safe for concurrent use unless it says so: a SecretTree
// changes on every read, since reading a key consumes it.
package keyschedule
