// Package interop runs spacepanda's MLS against an independent
// implementation: the ts-mls interop peer in ../shared/interop/ts-mls-peer
// (beside the repository) drives cmd/mlspeer and ts-mls peers through its
// selftest, a five-member group life cycle in which every member must agree
// on every epoch. The package has only tests; they skip, saying why, where
// node, npm or the peer folder is missing.
package interop
