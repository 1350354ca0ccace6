package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/defaultmodel"
	"github.com/gpt2go/gpt2/serve"
)

func newServeCmd() *cobra.Command {
	var (
		modelPath, addr, apiKey string
		maxBatch, maxQueue      int
		timeout                 time.Duration
		maxBody                 int64
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the model over HTTP: an OpenAI-compatible API and a playground",
		Long: `Serve answers OpenAI-style completion requests for the model, with the
requests of all clients batched together, and serves a playground page at /.

Endpoints: POST /v1/completions (OpenAI's legacy completions API, streaming
included), GET /v1/models, POST /tokenize, POST /detokenize, GET /health,
GET /metrics (Prometheus) and GET / (the playground).

It listens on 127.0.0.1:8080 unless --addr says otherwise; a host of 0.0.0.0
or "" serves every interface. Up to --max-batch sequences are generated at
once, sharing each forward pass; up to --max-queue requests wait for a
place, and more are refused with 429. With --api-key, the API endpoints want
"Authorization: Bearer KEY". A request still running after --timeout ends
with a 504 timeout error (0: no limit).

Each request is logged to stderr as one line. SIGINT or SIGTERM stops
accepting connections and exits once the requests in progress have
finished; a second signal exits at once.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case maxBatch < 1:
				return usageError{fmt.Errorf("--max-batch must be >= 1 (got %d)", maxBatch)}
			case maxQueue < 1:
				return usageError{fmt.Errorf("--max-queue must be >= 1 (got %d)", maxQueue)}
			case timeout < 0:
				return usageError{fmt.Errorf("--timeout must not be negative (got %s)", timeout)}
			case maxBody < 1:
				return usageError{fmt.Errorf("--max-body must be >= 1 (got %d)", maxBody)}
			}
			m, tok, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			stderr := cmd.ErrOrStderr()
			srv, err := serve.New(serve.Config{
				Model: m, Tokenizer: tok, ModelID: modelID(modelPath),
				MaxBatch: maxBatch, MaxQueue: maxQueue,
				APIKey: apiKey, Timeout: timeout, MaxBody: maxBody,
				Log: stderr,
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				srv.Close()
				return fmt.Errorf("serve: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			fmt.Fprintf(stderr, "gpt2 serve: %s (context %d tokens) on http://%s (batch %d, queue %d)\n",
				modelID(modelPath), m.Config.NCtx, ln.Addr(), maxBatch, maxQueue)

			select {
			case err := <-served:
				srv.Close()
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			stop() // a second signal now ends the process
			fmt.Fprintln(stderr, "gpt2 serve: shutting down; finishing the requests in progress")
			if err := srv.Shutdown(context.Background()); err != nil {
				return fmt.Errorf("shut down: %w", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			fmt.Fprintln(stderr, "gpt2 serve: stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory (Hugging Face or OpenAI GPT-2 checkpoint; default: the built-in model)")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.IntVar(&maxBatch, "max-batch", 8, "sequences generated at once, each with its own key/value cache")
	f.IntVar(&maxQueue, "max-queue", 64, "requests that may wait for a place in the batch before more get 429")
	f.StringVar(&apiKey, "api-key", "", "require this key (Authorization: Bearer KEY) on the API endpoints")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "end requests that run longer than this with a 504 (0: no limit)")
	f.Int64Var(&maxBody, "max-body", 1<<20, "largest request body accepted, in bytes (larger: 413)")
	return cmd
}

// modelID names the model in the API: its directory's name, or
// defaultmodel.Name for the built-in model.
func modelID(path string) string {
	if path == "" {
		return defaultmodel.Name
	}
	path = filepath.Clean(path)
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		path = filepath.Dir(path)
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	return filepath.Base(path)
}
