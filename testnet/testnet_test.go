package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func loadSmoke(t *testing.T) *Scenario {
	t.Helper()
	sc, err := LoadScenario("scenarios/smoke.toml")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestSmoke is acceptance point 1: the smoke scenario on real nodes
// delivers every message, converges after its commit storm, writes the
// report and charts, and analyze rebuilds the same report from the logs.
func TestSmoke(t *testing.T) {
	sc := loadSmoke(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	rep, err := Run(ctx, sc, Options{Out: out, Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke took %s", time.Since(t0).Round(time.Millisecond))
	var sum bytes.Buffer
	rep.Summary(&sum)
	t.Log("\n" + sum.String())
	if !rep.Passed {
		t.Fatalf("smoke failed its assertions")
	}
	if rep.Sent != sc.Load.Messages || rep.Expected != sc.Load.Messages*(sc.Nodes-1) || rep.Delivered != rep.Expected || rep.Lost != 0 {
		t.Errorf("sent %d expected %d delivered %d lost %d", rep.Sent, rep.Expected, rep.Delivered, rep.Lost)
	}
	if rep.Baseline == nil || rep.Baseline.Sent != sc.Load.Messages || rep.Ratios == nil {
		t.Errorf("no baseline beside the run: %+v", rep.Baseline)
	}
	if rep.JoinMs.N != sc.Nodes-1 {
		t.Errorf("%d join times, want %d", rep.JoinMs.N, sc.Nodes-1)
	}
	storm := false
	for _, c := range rep.Convergence {
		storm = storm || c.Kind == FaultCommitStorm && c.Converged
	}
	if !storm {
		t.Errorf("no convergence measured after the commit storm: %+v", rep.Convergence)
	}
	var fields map[string]any
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"delivery_ratio", "sent", "delivered", "lost", "duplicates", "latency_ms", "baseline"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("report.json lacks %q", k)
		}
	}
	for _, k := range []string{"p50", "p95", "p99", "max"} {
		if _, ok := fields["latency_ms"].(map[string]any)[k]; !ok {
			t.Errorf("report.json latency_ms lacks %q", k)
		}
	}
	for _, f := range []string{"latency-cdf.png", "latency-cdf.svg", "delivery.png", "delivery.svg", "convergence.png", "convergence.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("chart %s: %v", f, err)
		}
	}
	recs, err := ReadLogs(out)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Analyze(recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rep)
	b, _ := json.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Errorf("analyze rebuilt another report:\n%s\n%s", a, b)
	}
}

// TestSmokeFailsOnALostMessage: one delivery the harness drops (the
// message never reaches that node, as far as the run can tell) is one
// lost message, counted against that node, and the run fails.
func TestSmokeFailsOnALostMessage(t *testing.T) {
	sc := loadSmoke(t)
	// Nothing will bring the dropped delivery back: waiting the whole
	// drain for it would only slow the test.
	sc.Drain.Duration = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var once sync.Once
	dropped := false
	rep, err := Run(ctx, sc, Options{DropDelivery: func(node, msg string) bool {
		hit := false
		if node == "n003" && msg == "m0000042" {
			once.Do(func() { hit, dropped = true, true })
		}
		return hit
	}})
	if err != nil {
		t.Fatal(err)
	}
	var sum bytes.Buffer
	rep.Summary(&sum)
	t.Log("\n" + sum.String())
	if !dropped {
		t.Fatal("the message to drop never reached n003")
	}
	if rep.Lost != 1 || rep.LostByNode["n003"] != 1 || rep.Delivered != rep.Expected-1 {
		t.Errorf("lost %d (by node %v), delivered %d of %d; want exactly one lost at n003", rep.Lost, rep.LostByNode, rep.Delivered, rep.Expected)
	}
	if rep.Passed {
		t.Error("a run with a lost message passed")
	}
	if !strings.Contains(sum.String(), "FAIL") {
		t.Error("the summary does not say FAIL")
	}
}

// TestShippedScenariosParse: every scenario in scenarios/ is valid.
func TestShippedScenariosParse(t *testing.T) {
	names, err := filepath.Glob("scenarios/*.toml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, n := range names {
		sc, err := LoadScenario(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if sc.Name+".toml" != filepath.Base(n) {
			t.Errorf("%s is named %q", n, sc.Name)
		}
	}
}

// TestScenarioBadInput: what a scenario file can get wrong is refused
// with an error, not run as some other scenario.
func TestScenarioBadInput(t *testing.T) {
	base := "name='x'\nnodes=3\n[[channels]]\nname='c'\n[load]\nmessages=1\nrate=1\n"
	if _, err := ParseScenario([]byte(base)); err != nil {
		t.Fatalf("the base scenario: %v", err)
	}
	for name, text := range map[string]string{
		"unknown key":       base + "[links]\nlatncy='1ms'\n",
		"bad duration":      base + "drain='soon'\n",
		"one node":          strings.Replace(base, "nodes=3", "nodes=1", 1),
		"no channels":       "name='x'\nnodes=3\n",
		"member range":      base + "[[channels]]\nname='d'\nmembers=[0,7]\n",
		"repeated channel":  base + "[[channels]]\nname='c'\n",
		"unknown fault":     base + "[[faults]]\nat='1s'\nkind='meteor'\n",
		"partition 1 group": base + "[[faults]]\nat='1s'\nkind='partition'\ngroups=[[0,1,2]]\n",
		"storm no channel":  base + "[[faults]]\nat='1s'\nkind='commit-storm'\nnodes=[1]\nchannel='nope'\n",
		"faults unordered":  base + "[[faults]]\nat='2s'\nkind='heal'\n[[faults]]\nat='1s'\nkind='heal'\n",
		"loopback cut":      base + "mode='loopback'\n[[faults]]\nat='1s'\nkind='offline'\nnodes=[1]\n",
		"bad mode":          base + "mode='carrier-pigeon'\n",
		"rate missing":      strings.Replace(base, "rate=1\n", "", 1),
		"delivery ratio":    base + "[assert]\nmin_delivery=2.0\n",
		"not toml":          "nodes = = 3",
	} {
		if _, err := ParseScenario([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestEventLogBadInput: a torn last line (a run killed mid-write) is
// dropped; a malformed line elsewhere is an error.
func TestEventLogBadInput(t *testing.T) {
	good := `{"t":1,"run":"spacepanda","ev":"sent","msg":"m1"}` + "\n"
	recs, err := decodeLog(strings.NewReader(good + good + `{"t":2,"ru`))
	if err != nil || len(recs) != 2 {
		t.Errorf("torn tail: %d records, %v", len(recs), err)
	}
	for name, text := range map[string]string{
		"bad line in the middle": good + "{nope}\n" + good,
		"no kind":                `{"t":1}` + "\n" + good,
	} {
		if _, err := decodeLog(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadLogs(t.TempDir()); err == nil {
		t.Error("a directory without logs was read")
	}
}

func FuzzParseScenario(f *testing.F) {
	if data, err := os.ReadFile("scenarios/smoke.toml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := ParseScenario(data)
		if err != nil {
			return
		}
		if sc.Nodes < 2 || len(sc.Channels) == 0 {
			t.Fatalf("accepted %+v", sc)
		}
	})
}

func FuzzDecodeLog(f *testing.F) {
	f.Add([]byte(`{"t":1,"run":"spacepanda","ev":"sent","msg":"m1","to":["n001"]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := decodeLog(bytes.NewReader(data))
		if err != nil {
			return
		}
		if _, err := Analyze(recs, &Scenario{Name: "f", Nodes: 2}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestScenario runs the shipped scenarios named in TESTNET_RUN (comma
// separated, e.g. TESTNET_RUN=churn,process-10), each with the baseline,
// and fails when one fails its assertions. They take minutes, so the
// default test run skips it; the command runs the same scenarios.
func TestScenario(t *testing.T) {
	names := os.Getenv("TESTNET_RUN")
	if names == "" {
		t.Skip("set TESTNET_RUN=name[,name] to run shipped scenarios beyond smoke")
	}
	for _, name := range strings.Split(names, ",") {
		t.Run(name, func(t *testing.T) {
			sc, err := LoadScenario(filepath.Join("scenarios", name+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			rep, err := Run(ctx, sc, Options{Out: t.TempDir(), Baseline: true})
			if err != nil {
				t.Fatal(err)
			}
			var sum bytes.Buffer
			rep.Summary(&sum)
			t.Log("\n" + sum.String())
			if !rep.Passed {
				t.Error("the scenario failed its assertions")
			}
		})
	}
}
