package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/train"
)

func newTrainCmd() *cobra.Command {
	o := train.DefaultOptions()
	var preset string
	var shape model.Config
	cmd := &cobra.Command{
		Use:   "train --data DIR|FILE [--init MODEL | --config PRESET | --n-layer N ...] [flags]",
		Short: "Train or fine-tune a GPT-2 model on token shards",
		Long: `Train trains a GPT-2 model on token shards made by "gpt2 prepare" (or any
llm.c-format .bin files) with AdamW, on the CPU.

Start from a checkpoint with --init (a Hugging Face directory or OpenAI's
release), or from a fresh model of a preset shape (--config gpt2, gpt2-medium,
gpt2-large, gpt2-xl) or an explicit one (--n-layer, --n-head, --n-embd,
--n-ctx), initialised as GPT-2 was. --out DIR receives the model in the
Hugging Face layout (loadable by every gpt2 command) with the optimizer state
beside it, every --save-every steps and at the end; --resume DIR continues
such a run exactly where it stopped. An interrupt (Ctrl-C) saves and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			o.Set = map[string]bool{}
			flags.Visit(func(f *pflag.Flag) { o.Set[f.Name] = true })
			explicit := slices.ContainsFunc([]string{"n-layer", "n-head", "n-embd", "n-ctx"}, flags.Changed)
			if o.Resume != "" {
				if o.Init != "" || preset != "" || explicit {
					return usageError{errors.New("--resume continues a saved run; it cannot be combined with --init, --config or --n-*")}
				}
			} else {
				if o.Data == "" {
					return usageError{errors.New("--data is required")}
				}
				switch {
				case o.Init != "" && (preset != "" || explicit):
					return usageError{errors.New("--init loads a model's shape from its checkpoint; do not combine it with --config or --n-*")}
				case o.Init == "":
					cfg, err := modelShape(preset, shape, flags)
					if err != nil {
						return usageError{err}
					}
					o.Config = cfg
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := train.Run(ctx, o, cmd.ErrOrStderr())
			if errors.Is(err, context.Canceled) {
				return errors.New("interrupted")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Init, "init", "", "start from this checkpoint (Hugging Face directory or OpenAI release)")
	f.StringVar(&preset, "config", "", "fresh model of a preset shape: "+strings.Join(presetNames(), ", "))
	f.IntVar(&shape.NLayer, "n-layer", 0, "fresh model: number of layers (default from --config, else 12)")
	f.IntVar(&shape.NHead, "n-head", 0, "fresh model: attention heads (default from --config, else 12)")
	f.IntVar(&shape.NEmbd, "n-embd", 0, "fresh model: embedding width (default from --config, else 768)")
	f.IntVar(&shape.NCtx, "n-ctx", 0, "fresh model: context length (default from --config, else 1024)")
	f.StringVar(&o.Data, "data", "", "training tokens: a directory of train_*.bin shards or one .bin file")
	f.StringVar(&o.Val, "val", "", "validation tokens (default: val_*.bin beside the training shards)")
	f.IntVar(&o.Batch, "batch", o.Batch, "sequences per micro-batch (B)")
	f.IntVar(&o.Seq, "seq", o.Seq, "tokens per sequence (T)")
	f.IntVar(&o.Accum, "accum", o.Accum, "micro-batches accumulated per optimizer step")
	f.IntVar(&o.Steps, "steps", o.Steps, "optimizer steps in total")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	f.Float64Var(&o.MinLR, "min-lr", o.MinLR, "learning rate at the end of the cosine decay (negative: --lr, a constant rate)")
	f.IntVar(&o.Warmup, "warmup", o.Warmup, "steps of linear warmup")
	f.Float64Var(&o.Beta1, "beta1", o.Beta1, "AdamW beta1")
	f.Float64Var(&o.Beta2, "beta2", o.Beta2, "AdamW beta2")
	f.Float64Var(&o.Eps, "eps", o.Eps, "AdamW epsilon")
	f.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW weight decay (matrices and embeddings only)")
	f.Float64Var(&o.GradClip, "grad-clip", o.GradClip, "clip the gradient's global norm to this (0: off)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed for initialisation and shuffling")
	f.BoolVar(&o.Shuffle, "shuffle", o.Shuffle, "shuffle the documents of each shard, differently each epoch")
	f.IntVar(&o.EvalEvery, "eval-every", o.EvalEvery, "measure the validation loss every this many steps (0: never)")
	f.IntVar(&o.EvalBatches, "eval-batches", o.EvalBatches, "validation batches per evaluation")
	f.IntVar(&o.SaveEvery, "save-every", o.SaveEvery, "save a checkpoint every this many steps (0: only at the end)")
	f.StringVar(&o.SaveDType, "save-dtype", o.SaveDType, "element type of the exported model.safetensors: f32 or f16 (the optimizer state stays f32)")
	f.StringVar(&o.Out, "out", "", "checkpoint directory (default with --resume: the resumed one)")
	f.StringVar(&o.LogJSON, "log-json", "", "append one JSON object per step to this file")
	f.StringVar(&o.Resume, "resume", "", "continue the run saved in this directory")
	return cmd
}

func presetNames() []string {
	var names []string
	for n := range model.Presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// modelShape resolves --config and the --n-* flags into a configuration.
func modelShape(preset string, shape model.Config, flags *pflag.FlagSet) (model.Config, error) {
	cfg := model.Presets["gpt2"]
	if preset != "" {
		p, ok := model.Presets[preset]
		if !ok {
			return cfg, fmt.Errorf("--config %q: want one of %s", preset, strings.Join(presetNames(), ", "))
		}
		cfg = p
	}
	for _, f := range []struct {
		name     string
		dst, val *int
	}{
		{"n-layer", &cfg.NLayer, &shape.NLayer}, {"n-head", &cfg.NHead, &shape.NHead},
		{"n-embd", &cfg.NEmbd, &shape.NEmbd}, {"n-ctx", &cfg.NCtx, &shape.NCtx},
	} {
		if flags.Changed(f.name) {
			if *f.val <= 0 {
				return cfg, fmt.Errorf("--%s %d must be positive", f.name, *f.val)
			}
			*f.dst = *f.val
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
