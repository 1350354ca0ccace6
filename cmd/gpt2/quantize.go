package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/quant"
)

func newQuantizeCmd() *cobra.Command {
	var modelPath, outDir, to string
	cmd := &cobra.Command{
		Use:   "quantize --to q8_0|f16|bf16 --model DIR --out DIR",
		Short: "Write a copy of a model with its weight matrices in reduced precision",
		Long: `Quantize loads the model at --model (any format gpt2 reads) and writes it to
--out as a Hugging Face style directory (model.safetensors, config.json,
vocab.json, merges.txt) with its weight matrices stored as --to:

  f16    IEEE half precision, rounded to nearest (half the bytes of f32)
  bf16   bfloat16, rounded to nearest (half the bytes; coarser, wider range)
  q8_0   8-bit integers with one float32 scale per 32 consecutive values of
         a row (scale = max|v|/127), as GGUF's Q8_0 (about 0.28x the bytes)

The matrices are the token embedding (also the output projection) and the
four of each block; biases, layer norms and the position embedding stay
float32. Every command loads the result with --model, using the weights in
place: decoding reads fewer bytes per token and runs faster.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if modelPath == "" || outDir == "" || to == "" {
				return usageError{errors.New("quantize needs --to, --model and --out")}
			}
			dt, err := kernels.ParseDType(to)
			if err != nil || dt == kernels.F32 {
				return usageError{fmt.Errorf("--to %q: want q8_0, f16 or bf16", to)}
			}
			if same, err := sameDir(modelPath, outDir); err != nil {
				return err
			} else if same {
				return usageError{errors.New("--out must not be the model's own directory")}
			}
			m, tok, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			q, err := m.Convert(dt)
			if err != nil {
				return err
			}
			if err := quant.Save(outDir, q, tok); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %v weights, %.1f MiB read per token (was %.1f MiB as %v)\n",
				filepath.Join(outDir, "model.safetensors"), dt,
				float64(q.WeightBytes())/(1<<20), float64(m.WeightBytes())/(1<<20), m.WeightType())
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", "model to convert (directory or .safetensors file)")
	cmd.Flags().StringVar(&outDir, "out", "", "directory to write (created if need be)")
	cmd.Flags().StringVar(&to, "to", "", "weight type: q8_0, f16 or bf16")
	return cmd
}

// sameDir reports whether the model at path lives in directory dir.
func sameDir(path, dir string) (bool, error) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		path = filepath.Dir(path)
	}
	a, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("open model: %w", err)
	}
	b, err := os.Stat(dir)
	if err != nil {
		return false, nil // not there yet: Save creates it
	}
	return os.SameFile(a, b), nil
}
