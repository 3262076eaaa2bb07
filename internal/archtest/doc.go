// Package archtest holds the tests that keep the repository's architecture
// honest: the import arrows of docs/DESIGN.md, mlsgroup's purity (no I/O, no
// clock, no randomness it is not given) and one doc comment per package. It
// has no code of its own; it exists so that `go test ./...` runs them.
package archtest
