package treemath

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// treeMathVector is one entry of the working group's tree-math.json.
type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

// TestTreeMathVectors checks RFC 9420 Appendix C's functions against every
// node of every tree in tree-math.json; null in the vector means the
// function is undefined there (a leaf has no children, the root no parent).
func TestTreeMathVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/mls-vectors/tree-math.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []treeMathVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("n_leaves=%d", v.NLeaves), func(t *testing.T) {
			if got := NodeWidth(v.NLeaves); got != v.NNodes {
				t.Errorf("NodeWidth = %d, want %d", got, v.NNodes)
			}
			if got := Root(v.NLeaves); uint32(got) != v.Root {
				t.Errorf("Root = %d, want %d", got, v.Root)
			}
			for _, tab := range []struct {
				name string
				want []*uint32
				f    func(NodeIndex) (NodeIndex, bool)
			}{
				{"left", v.Left, func(x NodeIndex) (NodeIndex, bool) { return Left(x), !x.IsLeaf() }},
				{"right", v.Right, func(x NodeIndex) (NodeIndex, bool) { return Right(x), !x.IsLeaf() }},
				{"parent", v.Parent, func(x NodeIndex) (NodeIndex, bool) { return Parent(x, v.NLeaves), x != Root(v.NLeaves) }},
				{"sibling", v.Sibling, func(x NodeIndex) (NodeIndex, bool) { return Sibling(x, v.NLeaves), x != Root(v.NLeaves) }},
			} {
				if uint32(len(tab.want)) != v.NNodes {
					t.Fatalf("%s has %d entries, want %d", tab.name, len(tab.want), v.NNodes)
				}
				for i, w := range tab.want {
					got, defined := tab.f(NodeIndex(i))
					switch {
					case w == nil && defined:
						t.Errorf("%s(%d) defined as %d, vector says undefined", tab.name, i, got)
					case w != nil && !defined:
						t.Errorf("%s(%d) undefined, want %d", tab.name, i, *w)
					case w != nil && uint32(got) != *w:
						t.Errorf("%s(%d) = %d, want %d", tab.name, i, got, *w)
					}
				}
			}
		})
	}
}

// TestPathsAgreeWithParent checks the derived walks against the primitive
// functions: the direct path is the chain of parents, the copath their
// siblings, and the common ancestor of two nodes is on both direct paths.
func TestPathsAgreeWithParent(t *testing.T) {
	for _, n := range []uint32{1, 2, 4, 8, 32, 256} {
		w := NodeWidth(n)
		for x := NodeIndex(0); uint32(x) < w; x++ {
			dp, cp := DirectPath(x, n), Copath(x, n)
			if len(dp) != len(cp) {
				t.Fatalf("n=%d x=%d: direct path %v and copath %v differ in length", n, x, dp, cp)
			}
			cur := x
			for i, p := range dp {
				if p != Parent(cur, n) || cp[i] != Sibling(cur, n) {
					t.Fatalf("n=%d x=%d: step %d is %d/%d", n, x, i, p, cp[i])
				}
				if !IsInSubtree(x, p) || IsInSubtree(x, cp[i]) {
					t.Fatalf("n=%d x=%d: subtree membership wrong at %d", n, x, p)
				}
				cur = p
			}
			if len(dp) > 0 && dp[len(dp)-1] != Root(n) {
				t.Fatalf("n=%d x=%d: direct path does not end at the root", n, x)
			}
			for y := NodeIndex(0); uint32(y) < w; y++ {
				a := CommonAncestor(x, y)
				if !IsInSubtree(x, a) || !IsInSubtree(y, a) {
					t.Fatalf("n=%d: CommonAncestor(%d,%d)=%d does not hold both", n, x, y, a)
				}
				if !a.IsLeaf() && IsInSubtree(x, Left(a)) && IsInSubtree(y, Left(a)) ||
					!a.IsLeaf() && IsInSubtree(x, Right(a)) && IsInSubtree(y, Right(a)) {
					t.Fatalf("n=%d: CommonAncestor(%d,%d)=%d is not the lowest", n, x, y, a)
				}
			}
		}
	}
}
