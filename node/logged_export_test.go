package node

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
