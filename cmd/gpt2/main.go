// Command gpt2 runs, trains, evaluates and serves GPT-2 models.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/kernels"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status. Errors go to
// stderr as one line; a panic is reported the same way (with its stack only
// when GPT2_DEBUG is set), never as a raw trace.
func run(args []string) (status int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "gpt2: internal error: %v\n", r)
			if os.Getenv("GPT2_DEBUG") != "" {
				os.Stderr.Write(debug.Stack())
			}
			status = 2
		}
	}()
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "gpt2: %v\n", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "gpt2: %v\n", err)
		return 1
	}
	return 0
}

// usageError marks an error in how the command was called.
type usageError struct{ error }

func newRootCmd() *cobra.Command {
	var threads int
	root := &cobra.Command{
		Use:           "gpt2",
		Short:         "Run, train, evaluate and serve GPT-2 models",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if threads < 0 {
				return usageError{fmt.Errorf("--threads must be >= 0 (got %d)", threads)}
			}
			kernels.SetThreads(threads)
			return nil
		},
	}
	root.PersistentFlags().IntVar(&threads, "threads", 0, "threads for the kernels (0 = all cores)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		// Each command lives in its own file.
		newTokenizeCmd(), newDetokenizeCmd(), newScoreCmd(), newGenerateCmd(),
		newTrainCmd(), newPrepareCmd(),
		newEvalCmd(),
		newQuantizeCmd(), newBenchCmd(),
		newServeCmd(),
	)
	return root
}
