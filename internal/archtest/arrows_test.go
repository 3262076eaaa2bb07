package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/spacepanda/spacepanda"

// pkg is the part of `go list -json` these tests read.
type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	Doc        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// rel is p's path inside the module ("" for the root).
func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// A rule forbids the packages under From to depend, directly or not, on
// the project directories in Project or the import paths under External.
type rule struct {
	From     string
	Project  []string
	External []string
}

var (
	network = []string{"net", "github.com/libp2p", "github.com/multiformats"}
	leveldb = []string{"github.com/syndtr/goleveldb"}
)

// rules are the arrows of docs/DESIGN.md, written as what each package must
// not reach. The leaves (mlsgroup, store, p2p, config, rpc/api) import
// nothing else of the project.
var rules = []rule{
	{"mlsgroup", []string{"store", "p2p", "node", "rpc", "config", "keypkgdir", "testnet", "cmd", "cli"},
		append(append([]string{}, network...), leveldb...)},
	{"store", []string{"mlsgroup", "p2p", "node", "rpc", "config", "keypkgdir", "testnet", "cmd", "cli"}, nil},
	{"p2p", []string{"mlsgroup", "store", "node", "rpc", "config", "keypkgdir", "testnet", "cmd", "cli"}, nil},
	{"config", []string{"mlsgroup", "store", "p2p", "node", "rpc", "keypkgdir", "testnet", "cmd", "cli"}, nil},
	{"rpc/api", []string{"mlsgroup", "store", "p2p", "node", "rpc/client", "config", "keypkgdir", "testnet", "cmd", "cli"},
		[]string{"github.com", "golang.org"}},
	{"keypkgdir", []string{"p2p", "store", "node", "rpc", "testnet", "cmd", "cli"},
		append([]string{"github.com/libp2p/go-libp2p-kad-dht", "github.com/libp2p/go-libp2p-pubsub"}, leveldb...)},
	{"node", []string{"rpc", "testnet", "cmd", "cli"}, nil},
	{"testnet", []string{"cmd", "cli"}, nil},
	{"cli", []string{"node", "p2p", "store", "mlsgroup", "keypkgdir", "testnet"}, append(append([]string{}, network[1:]...), leveldb...)},
	{"cmd/spacepanda", []string{"node", "p2p", "store", "mlsgroup", "keypkgdir", "testnet"}, append(append([]string{}, network[1:]...), leveldb...)},
	// netlab drives ip and nft: it knows nothing of spacepanda or libp2p,
	// so that a test or a command can put any process in its namespaces.
	{"internal/netlab", []string{"mlsgroup", "store", "p2p", "node", "rpc", "config", "keypkgdir", "testnet", "cmd", "cli", "internal/proctest"},
		append(append([]string{}, network[1:]...), leveldb...)},
	// The chaos harness drives daemons from outside, as a client does:
	// processes, the RPC client and the firewall, never the node itself.
	{"internal/chaostest", []string{"node", "p2p", "store", "mlsgroup", "keypkgdir", "testnet", "cli"}, append(append([]string{}, network[1:]...), leveldb...)},
	{"internal/proctest", []string{"node", "p2p", "store", "mlsgroup", "keypkgdir", "testnet", "cli", "rpc"}, append(append([]string{}, network[1:]...), leveldb...)},
}

// testnetImports are the project packages testnet may import.
// It drives daemons (process mode) as a client does, through rpc/client,
// never through the server package.
var testnetImports = map[string]bool{"node": true, "node/nodetest": true, "p2p": true, "store": true, "config": true,
	"rpc/api": true, "rpc/client": true}

func denied(dep string, ru rule) bool {
	if r, ok := strings.CutPrefix(dep, module+"/"); ok {
		for _, d := range ru.Project {
			if under(r, d) {
				return true
			}
		}
		return false
	}
	for _, d := range ru.External {
		if under(dep, d) {
			return true
		}
	}
	return false
}

func TestImportArrows(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, ru := range rules {
			if !under(r, ru.From) {
				continue
			}
			for _, dep := range p.Deps {
				if denied(dep, ru) {
					t.Errorf("%s depends on %s, which docs/DESIGN.md forbids", r, dep)
				}
			}
		}
		// The rpc server goes through node only: it imports none of the
		// layers below node (it reaches them through node, so Deps would
		// hold them all); rpc/api and rpc/client have their rules above.
		if r == "rpc" {
			for _, dep := range p.Imports {
				if denied(dep, rule{Project: []string{"p2p", "store", "mlsgroup", "keypkgdir"}}) {
					t.Errorf("rpc depends on %s: it must go through node", dep)
				}
			}
		}
		// The testnet drives nodes as a user's program would, and starts
		// them as the tests do: it imports only these of the project.
		if under(r, "testnet") {
			for _, dep := range p.Deps {
				if dep == module+"/rpc" {
					t.Errorf("%s depends on the rpc server: it drives daemons through rpc/client", r)
				}
			}
			for _, dep := range p.Imports {
				if d, ok := strings.CutPrefix(dep, module+"/"); ok && !testnetImports[d] {
					t.Errorf("%s imports %s: the testnet may import only %v", r, d, testnetImports)
				}
			}
			continue
		}
		if r == "cmd/spacepanda-testnet" {
			continue // the one importer of testnet
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/testnet") {
				t.Errorf("%s depends on %s: nothing may import testnet but its command", r, dep)
			}
		}
	}
}

// TestMLSGroupIsPure enforces that mlsgroup is a state machine: no package of
// it imports os, net, syscall or a source of randomness, and no code calls
// time.Now. Time and randomness are parameters (DESIGN.md, mlsgroup).
func TestMLSGroupIsPure(t *testing.T) {
	forbidden := map[string]bool{"os": true, "net": true, "syscall": true, "crypto/rand": true,
		"math/rand": true, "math/rand/v2": true, "net/http": true, "os/exec": true}
	// HPKE encapsulation is the one exception: Go's crypto/hpke draws its
	// ephemeral keys from the system CSPRNG and takes no reader, so the
	// suite package hands circl's X448 suites the same source rather than
	// having suites differ in where their randomness comes from. Everything
	// MLS itself draws (leaf and path secrets, key pairs, reuse guards)
	// comes from the injected reader.
	allowed := map[string]string{"mlsgroup/internal/suite": "crypto/rand"}
	seen := 0
	for _, p := range listPackages(t) {
		if !under(rel(p.ImportPath), "mlsgroup") || isTestSupport(p.ImportPath) {
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if forbidden[imp] && allowed[rel(p.ImportPath)] != imp {
				t.Errorf("%s imports %s", rel(p.ImportPath), imp)
			}
		}
		fset := token.NewFileSet()
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					t.Errorf("%s reads the clock (time.%s)", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
	if seen == 0 {
		t.Fatal("no mlsgroup packages found")
	}
}

// isTestSupport reports whether path is a package that exists for tests
// (named like raft's rafttest): it may read files, and only _test files may
// import it (TestTestSupportOnlyInTests).
func isTestSupport(path string) bool { return strings.HasSuffix(path, "test") }

// TestTestSupportOnlyInTests keeps test-support packages out of the
// product: no package's non-test files import one, except another
// test-support package (chaostest builds on proctest). The testnet is
// the other exception: it is itself a harness of real nodes, started as
// the tests start them (node/nodetest), and only its own command imports
// it.
func TestTestSupportOnlyInTests(t *testing.T) {
	for _, p := range listPackages(t) {
		if isTestSupport(p.ImportPath) || under(rel(p.ImportPath), "testnet") {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/") && isTestSupport(imp) {
				t.Errorf("%s imports the test-support package %s outside its tests", rel(p.ImportPath), rel(imp))
			}
		}
	}
}

// TestEveryPackageHasOneDoc: each package says what it is for, exactly once.
func TestEveryPackageHasOneDoc(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
			continue
		}
		fset := token.NewFileSet()
		docs := 0
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil {
				docs++
			}
		}
		if docs != 1 {
			t.Errorf("%s has %d package doc comments, want 1", p.ImportPath, docs)
		}
	}
}
