package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/testnet"
)

// writeRun writes the logs of a small run by hand: two nodes, two
// messages, and (with lose) the second one never delivered.
func writeRun(t *testing.T, lose bool) string {
	t.Helper()
	dir := t.TempDir()
	logs, err := testnet.NewLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	scenario := "name='hand'\nnodes=2\n[[channels]]\nname='c'\n[load]\nmessages=2\nrate=1\n[assert]\nmin_delivery=1.0\n"
	sp := testnet.RunSpacepanda
	for _, r := range []testnet.Record{
		{T: 1, Run: sp, Ev: testnet.EvScenario, Text: scenario},
		{T: 2, Run: sp, Ev: testnet.EvPhase, Kind: "load"},
		{T: 10e6, Run: sp, Node: "n000", Ev: testnet.EvSent, Chan: "c", Msg: "m1", To: []string{"n001"}},
		{T: 15e6, Run: sp, Node: "n001", Ev: testnet.EvRecv, Chan: "c", Msg: "m1", From: "n000"},
		{T: 20e6, Run: sp, Node: "n000", Ev: testnet.EvSent, Chan: "c", Msg: "m2", To: []string{"n001"}},
	} {
		logs.Write(r)
	}
	if !lose {
		logs.Write(testnet.Record{T: 29e6, Run: sp, Node: "n001", Ev: testnet.EvRecv, Chan: "c", Msg: "m2", From: "n000"})
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAnalyze(t *testing.T) {
	for _, lose := range []bool{false, true} {
		dir := writeRun(t, lose)
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"analyze", dir}, &out, &errb)
		want := 0
		if lose {
			want = 1
		}
		if code != want {
			t.Errorf("lose=%v: exit %d, want %d\n%s%s", lose, code, want, out.String(), errb.String())
		}
		data, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep testnet.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 2 || rep.Expected != 2 || rep.Lost != map[bool]int{false: 0, true: 1}[lose] {
			t.Errorf("lose=%v: sent %d expected %d lost %d", lose, rep.Sent, rep.Expected, rep.Lost)
		}
		if !lose && (rep.LatencyMs.P50 != 5 || rep.LatencyMs.Max != 9) {
			t.Errorf("latency %+v, want p50 5 ms and max 9 ms", rep.LatencyMs)
		}
		if _, err := os.Stat(filepath.Join(dir, "latency-cdf.svg")); err != nil {
			t.Error(err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"analyze", t.TempDir()},              // no logs
		{"run", "/nonexistent/scenario.toml"}, // no file
		{"run"},                               // no scenario
		{"fly"},                               // no such command
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "spacepanda-testnet") {
			t.Errorf("%v: stderr %q does not say who failed", args, errb.String())
		}
	}
}
