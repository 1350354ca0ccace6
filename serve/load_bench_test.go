package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/defaultmodel"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// benchModels are the models the load benchmark serves: the directory in
// $GPT2_BENCH_MODEL if set; else the default model (6 layers of width 256,
// fp16), and the fixture model, so narrow (64) that sampling a token from
// the 50257 logits costs more than the forward pass, which batching cannot
// share.
func benchModels(b *testing.B) map[string]func() (*model.Model, *tokenizer.Tokenizer) {
	if dir := os.Getenv("GPT2_BENCH_MODEL"); dir != "" {
		return map[string]func() (*model.Model, *tokenizer.Tokenizer){filepath.Base(dir): func() (*model.Model, *tokenizer.Tokenizer) {
			m, err := model.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			tok, err := tokenizer.LoadDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { m.Close() })
			return m, tok
		}}
	}
	return map[string]func() (*model.Model, *tokenizer.Tokenizer){
		defaultmodel.Name: func() (*model.Model, *tokenizer.Tokenizer) {
			m, tok, err := defaultmodel.Load()
			if err != nil {
				b.Fatal(err)
			}
			return m, tok
		},
		"fixture": func() (*model.Model, *tokenizer.Tokenizer) { return loadFixture(b) },
	}
}

// BenchmarkLoad measures the server's throughput over loopback HTTP with
// 1, 4 and 16 clients (for each of benchModels), each sending its next
// request as soon as the last one is answered: requests of a short prompt
// and 32 new tokens, sampled with temperature 0.8 and top-k 40. It reports
// requests/s and generated tokens/s, and for 4 and 16 clients the
// tokens/s over one client's (x_1client); batching is what makes it grow
// with the clients. One op is one request from every client.
func BenchmarkLoad(b *testing.B) {
	models := benchModels(b)
	for _, name := range slices.Sorted(maps.Keys(models)) {
		b.Run("model="+name, func(b *testing.B) {
			m, tok := models[name]()
			benchmarkLoad(b, m, tok)
		})
	}
}

func benchmarkLoad(b *testing.B, m *model.Model, tok *tokenizer.Tokenizer) {
	const maxTokens = 32
	var alone float64 // tokens/s with one client, for the speed-ups
	for _, clients := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, err := New(Config{Model: m, Tokenizer: tok, MaxBatch: 16, MaxQueue: 64})
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(ln)
			defer s.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			url := "http://" + ln.Addr().String() + "/v1/completions"
			request := func(i int64) int {
				body := fmt.Sprintf(`{"prompt": "The history of the city begins", "max_tokens": %d, "temperature": 0.8, "top_k": 40, "seed": %d}`, maxTokens, i)
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return 0
				}
				defer resp.Body.Close()
				var c completion
				if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 || c.Usage == nil {
					io.Copy(io.Discard, resp.Body)
					b.Errorf("status %d: %v", resp.StatusCode, err)
					return 0
				}
				return c.Usage.CompletionTokens
			}
			var wg sync.WaitGroup
			for i := range clients { // warm up the connections and caches
				wg.Go(func() { request(int64(-i)) })
			}
			wg.Wait()
			tokens0, steps0 := counter(b, s, "gpt2_generated_tokens_total"), counter(b, s, "gpt2_forward_steps_total")

			// One op is one request from each client; the clients do not
			// wait for each other between requests.
			var next, tokens atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Go(func() {
					for range b.N {
						tokens.Add(int64(request(next.Add(1))))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N*clients)/elapsed, "req/s")
			rate := float64(tokens.Load()) / elapsed
			b.ReportMetric(rate, "tokens/s")
			if clients == 1 {
				alone = rate
			} else if alone > 0 {
				// The measure: tokens/s over one client's, from
				// runs minutes apart at most.
				b.ReportMetric(rate/alone, "x_1client")
			}
			// Tokens per forward step: how well requests were batched.
			b.ReportMetric((counter(b, s, "gpt2_generated_tokens_total")-tokens0)/(counter(b, s, "gpt2_forward_steps_total")-steps0), "tokens/step")
		})
	}
}

// counter reads a counter of s's metrics.
func counter(b *testing.B, s *Server, name string) float64 {
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}
