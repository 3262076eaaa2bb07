// Command spacepanda-testnet runs testnet scenarios and analyses their
// logs again.
//
//	spacepanda-testnet run SCENARIO.toml [--out DIR] [--baseline] [--quiet] [--cpuprofile FILE]
//	spacepanda-testnet analyze DIR
//
// run plays the scenario on real nodes (package testnet), prints the
// summary and, with --out, writes DIR/report.json, DIR/events/*.jsonl and
// the charts; --baseline also plays its message load on raw gossipsub
// between the same hosts; --cpuprofile writes a CPU profile of the whole
// run (for go tool pprof: in mocknet and loopback modes the nodes run in
// this process, so it shows where their time goes). analyze rebuilds report.json and the charts
// from DIR/events alone. The exit status is 0 when the scenario's
// assertions hold, 1 when one fails, 2 when the run could not be made.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/spacepanda/spacepanda/testnet"
)

// errFailed is a run that worked and whose assertions did not hold.
var errFailed = errors.New("the scenario's assertions failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "spacepanda-testnet",
		Short:         "Run multi-node simulations of real spacepanda nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var (
		out      string
		baseline bool
		quiet    bool
		cpuprof  string
	)
	runCmd := &cobra.Command{
		Use:   "run SCENARIO.toml",
		Short: "Play a scenario and report on it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := testnet.LoadScenario(args[0])
			if err != nil {
				return err
			}
			if cpuprof != "" {
				f, err := os.Create(cpuprof)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			opts := testnet.Options{Out: out, Baseline: baseline}
			if !quiet {
				opts.Progress = stderr
			}
			rep, err := testnet.Run(ctx, sc, opts)
			if err != nil {
				return err
			}
			rep.Summary(stdout)
			if out != "" {
				fmt.Fprintf(stdout, "report: %s\n", out)
			}
			if !rep.Passed {
				return errFailed
			}
			return nil
		},
	}
	runCmd.Flags().StringVar(&out, "out", "", "write report.json, the event logs and the charts into this directory")
	runCmd.Flags().BoolVar(&baseline, "baseline", false, "also run the message load on raw gossipsub, and report the ratios")
	runCmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display on stderr")
	runCmd.Flags().StringVar(&cpuprof, "cpuprofile", "", "write a CPU profile of the run to this file")
	analyzeCmd := &cobra.Command{
		Use:   "analyze DIR",
		Short: "Rebuild a run's report and charts from its event logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			recs, err := testnet.ReadLogs(dir)
			if err != nil {
				return err
			}
			rep, err := testnet.Analyze(recs, nil)
			if err != nil {
				return err
			}
			if err := rep.WriteJSON(dir); err != nil {
				return err
			}
			if err := testnet.Charts(dir, rep, recs); err != nil {
				return err
			}
			rep.Summary(stdout)
			if !rep.Passed {
				return errFailed
			}
			return nil
		},
	}
	root.AddCommand(runCmd, analyzeCmd)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFailed):
		fmt.Fprintln(stderr, "spacepanda-testnet:", err)
		return 1
	default:
		fmt.Fprintln(stderr, "spacepanda-testnet:", err)
		return 2
	}
}
