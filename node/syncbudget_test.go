package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
)

// TestServeSyncBudget: the node's sync provider keeps a page's data within
// the byte budget p2p hands it (a first entry always goes), says whether
// the log goes on, and paging on serves every entry of the log once.
func TestServeSyncBudget(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "big", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	body := strings.Repeat("x", node.MaxBodySize-64)
	for i := range 20 {
		if _, err := alice.Send(ctx, ch, fmt.Sprintf("%d %s", i, body)); err != nil {
			t.Fatal(err)
		}
	}
	logged, err := alice.Node.LogLen(ch)
	if err != nil {
		t.Fatal(err)
	}

	for _, budget := range []int{1, 40 << 10, 1 << 20} {
		var after []byte
		served, pages := 0, 0
		for {
			page, more, err := alice.Node.ServeSync(ctx, bob.ID(), ch, after, 128, budget)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, e := range page {
				total += len(e.Data)
			}
			if len(page) > 1 && total > budget {
				t.Fatalf("budget %d: page %d of %d entries holds %d bytes", budget, pages, len(page), total)
			}
			served += len(page)
			pages++
			if !more {
				break
			}
			if len(page) == 0 {
				t.Fatalf("budget %d: an empty page with more behind it", budget)
			}
			after = page[len(page)-1].Cursor
		}
		if served != logged {
			t.Fatalf("budget %d: served %d entries, the log holds %d", budget, served, logged)
		}
		t.Logf("budget %d: %d entries in %d pages", budget, served, pages)
	}
}
