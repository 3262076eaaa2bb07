module github.com/spacepanda/spacepanda

go 1.26.0

require (
	github.com/cloudflare/circl v1.6.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
)
