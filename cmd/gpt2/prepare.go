package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/train/data"
)

func newPrepareCmd() *cobra.Command {
	var (
		o         data.PrepareOptions
		modelPath string
	)
	cmd := &cobra.Command{
		Use:   "prepare --out DIR [--val-fraction F | --val-files FILE,...] [--shard-tokens N] FILE|DIR...",
		Short: "Tokenize text files into training shards",
		Long: `Prepare tokenizes text files (and the files under directories) into token
shards in llm.c's format for "gpt2 train": DIR/train_000000.bin, ... and a
held-out validation set DIR/val_000000.bin. Each file is one document,
written as <|endoftext|> followed by its tokens. Files are tokenized in
parallel (--threads) and the output does not depend on how many threads run.

The validation set is --val-files, or else a --val-fraction of the bytes as
whole files chosen by a hash of their paths (the tail of the file when there
is only one).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Out == "" {
				return usageError{errors.New("--out is required")}
			}
			if cmd.Flags().Changed("val-fraction") && len(o.ValFiles) > 0 {
				return usageError{errors.New("give --val-fraction or --val-files, not both")}
			}
			if len(o.ValFiles) > 0 {
				o.ValFraction = 0
			}
			tok, err := openTokenizer(modelPath)
			if err != nil {
				return err
			}
			o.Tokenizer = tok
			o.Inputs = args
			threads, _ := cmd.Flags().GetInt("threads")
			o.Workers = threads
			o.Progress = os.Stderr
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			res, err := data.Prepare(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d train documents, %d tokens in %d shards; %d validation documents, %d tokens in %d shards; in %s\n",
				res.TrainDocs, res.TrainTokens, len(res.TrainShards), res.ValDocs, res.ValTokens, len(res.ValShards), o.Out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "", "directory for the shards")
	f.Float64Var(&o.ValFraction, "val-fraction", 0.01, "fraction of the bytes held out for validation, as whole files")
	f.StringSliceVar(&o.ValFiles, "val-files", nil, "files (or directories) to hold out for validation")
	f.IntVar(&o.ShardTokens, "shard-tokens", 100_000_000, "tokens per shard")
	f.StringVar(&modelPath, "model", "", "use this model directory's tokenizer (default: GPT-2's)")
	return cmd
}
