package node

import "github.com/libp2p/go-libp2p/core/peer"

// LastLogged is the wire bytes of the last entry of channel's log.
func (n *Node) LastLogged(channel []byte) ([]byte, error) {
	es, err := n.st.LogAfter(channel, 0, 1<<20)
	if err != nil || len(es) == 0 {
		return nil, err
	}
	r, err := parseLogRecord(es[len(es)-1].Data)
	if err != nil {
		return nil, err
	}
	return r.Message, nil
}

// OwnCopies is how many of its own messages channel's log holds as copies
// re-sent after a rewind or for a rejoined member.
func (n *Node) OwnCopies(channel []byte) int {
	es, err := n.st.LogAfter(channel, 0, 1<<20)
	if err != nil {
		return 0
	}
	k := 0
	for _, e := range es {
		if r, err := parseLogRecord(e.Data); err == nil && r.Kind == logResent && peer.ID(r.Sender) == n.id {
			k++
		}
	}
	return k
}
