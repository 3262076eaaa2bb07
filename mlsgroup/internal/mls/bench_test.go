package mls

import (
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// commitMessage is the first public commit message of messages.json.
func commitMessage(b *testing.B) []byte {
	return vectortest.Load[messagesVector](b, "messages.json")[0].PublicMessageCommit
}

func BenchmarkDecodeMLSMessage(b *testing.B) {
	data := commitMessage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var m MLSMessage
		if err := wire.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	data := commitMessage(b)
	var m MLSMessage
	if err := wire.Unmarshal(data, &m); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Marshal(&m); err != nil {
			b.Fatal(err)
		}
	}
}
