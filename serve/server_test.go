package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/sample"
)

func TestEndpoints(t *testing.T) {
	ts := start(t, nil, 0)
	_, tok := loadFixture(t)

	code, _, body := ts.do(t, "GET", "/health", "")
	if code != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("/health: %d %s", code, body)
	}

	code, _, body = ts.do(t, "GET", "/v1/models", "")
	var list struct {
		Object string
		Data   []modelObject
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || list.Object != "list" || len(list.Data) != 1 ||
		list.Data[0].ID != "tiny-real-vocab" || list.Data[0].Object != "model" || list.Data[0].MaxModelLen != 128 {
		t.Errorf("/v1/models: %d %s", code, body)
	}
	if code, _, body = ts.do(t, "GET", "/v1/models/tiny-real-vocab", ""); code != 200 {
		t.Errorf("/v1/models/tiny-real-vocab: %d %s", code, body)
	}
	if code, _, body = ts.do(t, "GET", "/v1/models/gpt-4", ""); code != 404 || apiErrorOf(t, body).Code == nil {
		t.Errorf("/v1/models/gpt-4: %d %s", code, body)
	}

	text := "Hello, world! ünïcode 🙂"
	code, _, body = ts.do(t, "POST", "/tokenize", mustJSON(t, map[string]string{"prompt": text}))
	var toks struct {
		Tokens []int
		Count  int
	}
	if err := json.Unmarshal(body, &toks); code != 200 || err != nil || !slices.Equal(toks.Tokens, tok.Encode(text)) || toks.Count != len(toks.Tokens) {
		t.Errorf("/tokenize: %d %s, want %v", code, body, tok.Encode(text))
	}
	code, _, body = ts.do(t, "POST", "/detokenize", mustJSON(t, map[string][]int{"tokens": toks.Tokens}))
	var detok struct{ Prompt string }
	if err := json.Unmarshal(body, &detok); code != 200 || err != nil || detok.Prompt != text {
		t.Errorf("/detokenize: %d %s, want %q", code, body, text)
	}
	if code, _, body = ts.do(t, "POST", "/tokenize", `{"prompt": ""}`); code != 200 || !strings.Contains(string(body), `"tokens":[]`) {
		t.Errorf("/tokenize empty: %d %s", code, body)
	}

	// A completion, to have something to count.
	c := ts.complete(t, map[string]any{"model": "tiny-real-vocab", "prompt": "Hi", "max_tokens": 3, "temperature": 0})
	if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.Model != "tiny-real-vocab" || c.Created == 0 ||
		len(c.Choices) != 1 || c.Usage == nil || *c.Usage != (usage{PromptTokens: 1, CompletionTokens: 3, TotalTokens: 4}) ||
		c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "length" || c.Choices[0].Logprobs != nil {
		t.Errorf("completion: %+v", c)
	}

	// The scheduler updates the gauge just after the response is sent.
	waitFor(t, "an empty batch", func() bool { return ts.metric(t, "gpt2_batch_size") == 0 })
	code, hdr, body := ts.do(t, "GET", "/metrics", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`gpt2_http_requests_total{code="200",endpoint="/v1/completions"} 1`,
		`gpt2_http_requests_total{code="404",endpoint="/v1/models/{model}"} 1`,
		"gpt2_prompt_tokens_total 1", "gpt2_generated_tokens_total 3",
		"gpt2_queue_depth 0", "gpt2_batch_size 0", "gpt2_kv_caches 1",
		"gpt2_time_to_first_token_seconds_count 1",
		`gpt2_http_request_duration_seconds_count{endpoint="/v1/completions"} 1`,
		`gpt2_sequences_finished_total{reason="length"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// One log line per request (the last may come just after its response).
	// (The /metrics requests are polled, so leave them out.)
	apiLines := func() int {
		return strings.Count(ts.logs.String(), "\n") - strings.Count(ts.logs.String(), "GET /metrics ")
	}
	waitFor(t, "log lines", func() bool { return apiLines() >= 8 })
	logs := ts.logs.String()
	if n := apiLines(); n != 8 {
		t.Errorf("%d log lines for 8 requests:\n%s", n, logs)
	}
	if !strings.Contains(logs, "POST /v1/completions 200") || !strings.Contains(logs, "prompt_tokens=1 completion_tokens=3") {
		t.Errorf("log lacks the completion:\n%s", logs)
	}
}

// greedy is sample.Generate's greedy continuation, the reference.
func greedy(t *testing.T, prompt []int, n int) sample.Result {
	t.Helper()
	m, tok := loadFixture(t)
	res, err := sample.Generate(context.Background(), m, tok, prompt, sample.Options{MaxTokens: n}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestGreedy(t *testing.T) {
	exp := fixture.LoadExpected(t, fixture.HFDir(t))
	_, tok := loadFixture(t)
	ts := start(t, nil, 0)
	var wg sync.WaitGroup
	// All prompts at once, so they share the batch.
	for _, g := range exp.GreedyAllPrompts {
		wg.Go(func() {
			c := ts.complete(t, map[string]any{"prompt": g.PromptText, "max_tokens": g.NNew, "temperature": 0, "logprobs": 0})
			want, _ := tok.Decode(g.GeneratedIDs)
			ch := c.Choices[0]
			if ch.Text != want {
				t.Errorf("%q: got %q, want %q", g.PromptText, ch.Text, want)
			}
			if c.Usage.PromptTokens != len(g.PromptIDs) || c.Usage.CompletionTokens != g.NNew {
				t.Errorf("%q: usage %+v", g.PromptText, c.Usage)
			}
			// The log-probabilities are the model's, as Generate reports them.
			ref := greedy(t, g.PromptIDs, g.NNew)
			if len(ch.Logprobs.TokenLogprobs) != len(ref.Logprobs) {
				t.Fatalf("%q: %d logprobs, want %d", g.PromptText, len(ch.Logprobs.TokenLogprobs), len(ref.Logprobs))
			}
			for i, lp := range ch.Logprobs.TokenLogprobs {
				if math.Abs(*lp-ref.Logprobs[i]) > 1e-9 {
					t.Errorf("%q: token %d logprob %g, want %g", g.PromptText, i, *lp, ref.Logprobs[i])
				}
			}
		})
	}
	wg.Wait()

	// Token-array prompts, several in one request.
	var prompts [][]int
	for _, g := range exp.GreedyAllPrompts[:3] {
		prompts = append(prompts, g.PromptIDs)
	}
	c := ts.complete(t, map[string]any{"prompt": prompts, "max_tokens": 20, "temperature": 0})
	for i, g := range exp.GreedyAllPrompts[:3] {
		want, _ := tok.Decode(g.GeneratedIDs)
		if c.Choices[i].Index != i || c.Choices[i].Text != want {
			t.Errorf("prompt %d of 3: %+v, want %q", i, c.Choices[i], want)
		}
	}
}

// TestEchoLogprobs checks the loglikelihood query against the fixture's
// float64 reference: echo, logprobs and max_tokens 0 score every prompt
// token. A small prefill chunk makes long prompts go in several steps.
func TestEchoLogprobs(t *testing.T) {
	exp := fixture.LoadExpected(t, fixture.HFDir(t))
	_, tok := loadFixture(t)
	for _, chunk := range []int{0, 7} {
		ts := start(t, func(c *Config) { c.PrefillChunk = chunk }, 0)
		var wg sync.WaitGroup
		for _, sq := range exp.Sequences {
			wg.Go(func() {
				c := ts.complete(t, map[string]any{"prompt": sq.InputIDs, "echo": true, "logprobs": 5, "max_tokens": 0})
				ch := c.Choices[0]
				want, _ := tok.Decode(sq.InputIDs)
				lp := ch.Logprobs
				if ch.Text != want || *ch.FinishReason != "length" || len(lp.Tokens) != len(sq.InputIDs) ||
					len(lp.TokenLogprobs) != len(sq.InputIDs) || len(lp.TopLogprobs) != len(sq.InputIDs) || len(lp.TextOffset) != len(sq.InputIDs) {
					t.Fatalf("chunk %d, %s: %+v", chunk, sq.Name, ch)
				}
				if lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil || lp.TextOffset[0] != 0 {
					t.Errorf("%s: first token %v %v %d, want null, null, 0", sq.Name, lp.TokenLogprobs[0], lp.TopLogprobs[0], lp.TextOffset[0])
				}
				offset := 0
				for i, id := range sq.InputIDs {
					b, _ := tok.TokenBytes(id)
					if lp.TextOffset[i] != offset {
						t.Errorf("%s: text_offset[%d] = %d, want %d", sq.Name, i, lp.TextOffset[i], offset)
					}
					offset += len(b)
					if i == 0 {
						continue
					}
					got, ref := *lp.TokenLogprobs[i], sq.NextTokenLogprobs[i-1]
					if math.Abs(got-ref) > 5e-6 {
						t.Errorf("chunk %d, %s: token %d logprob %.9f, want %.9f", chunk, sq.Name, i, got, ref)
					}
					top := lp.TopLogprobs[i]
					if len(top) < 5 || len(top) > 6 || top[lp.Tokens[i]] != got {
						t.Errorf("%s: token %d top_logprobs %v lack the token %q", sq.Name, i, top, lp.Tokens[i])
					}
				}
			})
		}
		wg.Wait()
	}

	// One generated token: its alternatives are the reference's top 5.
	ts := start(t, nil, 0)
	for _, sq := range exp.Sequences[:4] {
		if len(sq.InputIDs) >= 128 {
			continue
		}
		c := ts.complete(t, map[string]any{"prompt": sq.InputIDs, "logprobs": 5, "max_tokens": 1, "temperature": 0})
		lp := c.Choices[0].Logprobs
		if len(lp.Tokens) != 1 {
			t.Fatalf("%s: %+v", sq.Name, lp)
		}
		top := lp.TopLogprobs[0]
		for i, id := range sq.Last.Top10IDs[:5] {
			s, _ := (&responder{s: ts.Server}).tokenString(id)
			if got, ok := top[s]; !ok || math.Abs(got-sq.Last.Top10Logprobs[i]) > 5e-6 {
				t.Errorf("%s: alternative %d (%q): %v, want %.9f", sq.Name, i, s, top, sq.Last.Top10Logprobs[i])
			}
		}
		if math.Abs(*lp.TokenLogprobs[0]-sq.Last.Top10Logprobs[0]) > 5e-6 {
			t.Errorf("%s: greedy token logprob %g, want %g", sq.Name, *lp.TokenLogprobs[0], sq.Last.Top10Logprobs[0])
		}
	}
}

func TestEchoAndEmptyPrompt(t *testing.T) {
	ts := start(t, nil, 0)
	_, tok := loadFixture(t)
	c := ts.complete(t, map[string]any{"prompt": "The cat", "echo": true, "max_tokens": 0})
	if c.Choices[0].Text != "The cat" || c.Usage.CompletionTokens != 0 {
		t.Errorf("echo, max_tokens 0: %+v", c.Choices[0])
	}
	if c := ts.complete(t, map[string]any{"prompt": "The cat", "max_tokens": 0}); c.Choices[0].Text != "" {
		t.Errorf("max_tokens 0: %+v", c.Choices[0])
	}
	c = ts.complete(t, map[string]any{"prompt": "The cat", "echo": true, "max_tokens": 5, "temperature": 0})
	ref := greedy(t, tok.Encode("The cat"), 5)
	if c.Choices[0].Text != "The cat"+ref.Text {
		t.Errorf("echo: %q, want %q", c.Choices[0].Text, "The cat"+ref.Text)
	}
	// An empty or missing prompt starts from <|endoftext|>.
	ref = greedy(t, nil, 5)
	for _, req := range []map[string]any{
		{"prompt": "", "max_tokens": 5, "temperature": 0},
		{"max_tokens": 5, "temperature": 0},
		{"prompt": []int{50256}, "max_tokens": 5, "temperature": 0},
	} {
		c := ts.complete(t, req)
		if c.Choices[0].Text != ref.Text || c.Usage.PromptTokens != 1 {
			t.Errorf("%v: %q (usage %+v), want %q", req, c.Choices[0].Text, c.Usage, ref.Text)
		}
	}
}

func TestStopAndChoices(t *testing.T) {
	ts := start(t, nil, 0)
	_, tok := loadFixture(t)
	prompt := "Once upon a time"
	ref := greedy(t, tok.Encode(prompt), 20)
	if len(ref.Text) < 10 {
		t.Fatalf("reference too short: %q", ref.Text)
	}
	stop := ref.Text[5:8]
	c := ts.complete(t, map[string]any{"prompt": prompt, "max_tokens": 20, "temperature": 0, "stop": []string{"never there", stop}})
	want := ref.Text[:strings.Index(ref.Text, stop)]
	if ch := c.Choices[0]; ch.Text != want || *ch.FinishReason != "stop" {
		t.Errorf("stop %q: %q %s, want %q stop", stop, ch.Text, *ch.FinishReason, want)
	}

	// n choices: choice i uses seed+i, like `gpt2 generate --num-samples`.
	m, _ := loadFixture(t)
	opts := sample.Options{Params: sample.Params{Temperature: 1, TopK: 50, Seed: 42}, MaxTokens: 8, N: 3}
	res, err := sample.Generate(context.Background(), m, tok, tok.Encode(prompt), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = ts.complete(t, map[string]any{"prompt": []string{prompt, "Hi"}, "max_tokens": 8, "top_k": 50, "seed": 42, "n": 3})
	if len(c.Choices) != 6 {
		t.Fatalf("%d choices, want 6", len(c.Choices))
	}
	for i, r := range res {
		if c.Choices[i].Index != i || c.Choices[i].Text != r.Text {
			t.Errorf("choice %d: %q, want %q", i, c.Choices[i].Text, r.Text)
		}
	}
	if c.Usage.PromptTokens != len(tok.Encode(prompt))+1 {
		t.Errorf("usage %+v", c.Usage)
	}
}

// TestSeededBatching checks that a seeded request draws the same tokens
// alone and batched with other requests.
func TestSeededBatching(t *testing.T) {
	ts := start(t, func(c *Config) { c.MaxBatch = 16 }, 0)
	req := map[string]any{"prompt": "In a shocking finding,", "max_tokens": 40, "seed": 1234, "n": 2, "logprobs": 1}
	alone := ts.complete(t, req)
	steps0, tokens0 := ts.metric(t, "gpt2_forward_steps_total"), ts.metric(t, "gpt2_generated_tokens_total")
	var wg sync.WaitGroup
	results := make([]completion, 4)
	for i := range 12 {
		wg.Go(func() {
			if i%3 == 0 {
				results[i/3] = ts.complete(t, req)
				return
			}
			ts.complete(t, map[string]any{"prompt": fmt.Sprintf("Other prompt %d", i), "max_tokens": 30 + i, "top_p": 0.9})
		})
	}
	wg.Wait()
	// The requests did share steps.
	steps, tokens := ts.metric(t, "gpt2_forward_steps_total")-steps0, ts.metric(t, "gpt2_generated_tokens_total")-tokens0
	if 2*steps > tokens {
		t.Errorf("%g steps for %g tokens: the requests were hardly batched", steps, tokens)
	}
	for _, r := range results {
		for i := range 2 {
			if r.Choices[i].Text != alone.Choices[i].Text || !slices.Equal(r.Choices[i].Logprobs.Tokens, alone.Choices[i].Logprobs.Tokens) {
				t.Errorf("choice %d batched: %q, alone: %q", i, r.Choices[i].Text, alone.Choices[i].Text)
			}
		}
	}
	if alone.Choices[0].Text == alone.Choices[1].Text {
		t.Errorf("choices 0 and 1 are the same: %q", alone.Choices[0].Text)
	}
}

func TestStreaming(t *testing.T) {
	ts := start(t, nil, 0)
	req := map[string]any{"prompt": "The meaning of life is", "max_tokens": 12, "seed": 7, "n": 2, "logprobs": 2, "echo": true}
	whole := ts.complete(t, req)
	req["stream"] = true
	req["stream_options"] = map[string]bool{"include_usage": true}
	chunks, errEv, done := ts.stream(t, req).readAll(t)
	if !done || errEv != nil {
		t.Fatalf("stream ended without [DONE] (error %v)", errEv)
	}
	text := make([]string, 2)
	tokens := make([][]string, 2)
	finish := make([]string, 2)
	var u *usage
	for _, c := range chunks {
		if c.ID != chunks[0].ID || c.Object != "text_completion" || c.Model != "tiny-real-vocab" {
			t.Errorf("chunk header %+v", c)
		}
		if c.Usage != nil {
			u = c.Usage
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk has choices")
			}
			continue
		}
		if len(c.Choices) != 1 {
			t.Fatalf("chunk with %d choices", len(c.Choices))
		}
		ch := c.Choices[0]
		if finish[ch.Index] != "" {
			t.Errorf("choice %d: chunk after its finish", ch.Index)
		}
		text[ch.Index] += ch.Text
		if ch.Logprobs != nil {
			tokens[ch.Index] = append(tokens[ch.Index], ch.Logprobs.Tokens...)
		}
		if ch.FinishReason != nil {
			finish[ch.Index] = *ch.FinishReason
		}
	}
	for i := range 2 {
		w := whole.Choices[i]
		if text[i] != w.Text || finish[i] != *w.FinishReason || !slices.Equal(tokens[i], w.Logprobs.Tokens) {
			t.Errorf("choice %d streamed %q %v %s, whole %q %v %s", i, text[i], tokens[i], finish[i], w.Text, w.Logprobs.Tokens, *w.FinishReason)
		}
	}
	if u == nil || *u != *whole.Usage {
		t.Errorf("streamed usage %v, want %v", u, whole.Usage)
	}
}

func TestBadInput(t *testing.T) {
	ts := start(t, func(c *Config) { c.MaxBody = 4096 }, 0)
	long := make([]int, 120)
	for _, tc := range []struct {
		body  string
		param string // "" = any
		want  string // in the message
	}{
		{`{"prompt": "hi"`, "", "not valid JSON"},
		{`not json`, "", "not valid JSON"},
		{`[1, 2]`, "", "JSON object"},
		{`null`, "", "JSON object"},
		{``, "", "not valid JSON"},
		{`{"prompt": "hi"} {}`, "", "after the object"},
		{`{"prompt": 5}`, "prompt", "prompt must be"},
		{`{"prompt": ["a", 1]}`, "prompt", "mixture"},
		{`{"prompt": [[1], "a"]}`, "prompt", "mixture"},
		{`{"prompt": [1, 2.5]}`, "prompt", "integer"},
		{`{"prompt": [50257]}`, "prompt", "50257"},
		{`{"prompt": [[1, -1]]}`, "prompt", "-1"},
		{`{"prompt": "hi", "max_tokens": "many"}`, "max_tokens", "integer"},
		{`{"prompt": "hi", "max_tokens": -1}`, "max_tokens", ">= 0"},
		{`{"prompt": "hi", "max_tokens": 1.5}`, "max_tokens", "integer"},
		{mustJSON(t, map[string]any{"prompt": long, "max_tokens": 16}), "max_tokens", "128 tokens, however you requested 136 tokens (120 in your prompt; 16 for the completion)"},
		{`{"prompt": "hi", "max_tokens": 200}`, "max_tokens", "128"},
		{`{"prompt": "hi", "temperature": -0.5}`, "temperature", ">= 0"},
		{`{"prompt": "hi", "temperature": "hot"}`, "temperature", "number"},
		{`{"prompt": "hi", "top_p": 0}`, "top_p", "(0, 1]"},
		{`{"prompt": "hi", "top_p": 1.5}`, "top_p", "(0, 1]"},
		{`{"prompt": "hi", "top_k": -5}`, "top_k", ""},
		{`{"prompt": "hi", "n": 0}`, "n", "between 1 and 128"},
		{`{"prompt": "hi", "n": 1000}`, "n", "128"},
		{`{"prompt": ["a", "b"], "n": 9223372036854775807}`, "n", "128"},
		{`{"prompt": ["a", "b", "c"], "n": 50}`, "n", "150 completions"},
		{`{"prompt": "hi", "max_tokens": 9223372036854775807}`, "max_tokens", "128"},
		{`{"prompt": "hi", "n": true}`, "n", "integer"},
		{`{"prompt": "hi", "stop": 3}`, "stop", "string"},
		{`{"prompt": "hi", "stop": ["a","b","c","d","e"]}`, "stop", "at most 4"},
		{`{"prompt": "hi", "stop": [""]}`, "stop", "empty"},
		{`{"prompt": "hi", "seed": "x"}`, "seed", "integer"},
		{`{"prompt": "hi", "seed": 1.5}`, "seed", "integer"},
		{`{"prompt": "hi", "logprobs": 50}`, "logprobs", "between 0 and 20"},
		{`{"prompt": "hi", "logprobs": true}`, "logprobs", "integer"},
		{`{"prompt": "hi", "echo": "yes"}`, "echo", "boolean"},
		{`{"prompt": "hi", "stream": 1}`, "stream", "boolean"},
		{`{"prompt": "hi", "presence_penalty": 3}`, "presence_penalty", "[-2, 2]"},
		{`{"prompt": "hi", "frequency_penalty": -2.5}`, "frequency_penalty", "[-2, 2]"},
		{`{"prompt": "hi", "logit_bias": {"abc": 1}}`, "logit_bias", "abc"},
		{`{"prompt": "hi", "logit_bias": {"99999": 1}}`, "logit_bias", "99999"},
		{`{"prompt": "hi", "logit_bias": {"5": 101}}`, "logit_bias", "[-100, 100]"},
		{`{"prompt": "hi", "logit_bias": [1]}`, "logit_bias", "object"},
		{`{"prompt": "hi", "best_of": 3}`, "best_of", "not supported"},
		{`{"prompt": "hi", "suffix": "x"}`, "suffix", "not supported"},
		{`{"prompt": "hi", "stream_options": 1}`, "stream_options", "object"},
		{`{"prompt": "hi", "model": 5}`, "model", "string"},
	} {
		code, _, body := ts.do(t, "POST", "/v1/completions", tc.body)
		if code != 400 {
			t.Errorf("%s: %d %s, want 400", tc.body, code, body)
			continue
		}
		e := apiErrorOf(t, body)
		if e.Type != "invalid_request_error" || tc.param != "" && (e.Param == nil || *e.Param != tc.param) || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %s, want param %q and a message with %q", tc.body, body, tc.param, tc.want)
		}
	}

	// Unknown fields are ignored; a null is the default.
	c := ts.complete(t, `{"prompt": "hi", "max_tokens": 2, "temperature": 0, "frobnicate": {"x": [1]}, "user": "me", "top_p": null, "stop": null}`)
	if c.Usage.CompletionTokens != 2 {
		t.Errorf("unknown fields: %+v", c)
	}

	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/completions", `{"prompt": "` + strings.Repeat("x", 5000) + `"}`, 413},
		{"POST", "/tokenize", `{"prompt": "` + strings.Repeat("x", 5000) + `"}`, 413},
		{"GET", "/v1/completions", "", 405},
		{"DELETE", "/v1/models", "", 405},
		{"POST", "/health", "{}", 405},
		{"GET", "/v2/whatever", "", 404},
		{"POST", "/v1/completions/x", "{}", 404},
		{"POST", "/v1/chat/completions", "{}", 404},
		{"POST", "/v1/completions", `{"prompt": "hi", "model": "gpt-3.5-turbo-instruct"}`, 404},
		{"POST", "/tokenize", `{"prompt": 1}`, 400},
		{"POST", "/detokenize", `{"tokens": [1, 99999]}`, 400},
		{"POST", "/detokenize", `{"tokens": "abc"}`, 400},
		{"POST", "/detokenize", `{}`, 400},
	} {
		code, hdr, body := ts.do(t, tc.method, tc.path, tc.body)
		if code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
			continue
		}
		apiErrorOf(t, body)
		if code == 405 && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	// Chunked bodies have no Content-Length; the limit still holds.
	req, _ := http.NewRequest("POST", ts.url+"/v1/completions", struct{ *strings.Reader }{strings.NewReader(`{"prompt": "` + strings.Repeat("x", 5000) + `"}`)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked large body: %d, want 413", resp.StatusCode)
	}
	// None of it disturbed the server.
	if c := ts.complete(t, map[string]any{"prompt": "hi", "max_tokens": 2}); c.Usage.CompletionTokens != 2 {
		t.Errorf("after bad input: %+v", c)
	}
}

func TestAPIKey(t *testing.T) {
	ts := start(t, func(c *Config) { c.APIKey = "s3cret" }, 0)
	body := `{"prompt": "hi", "max_tokens": 1}`
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}} {
		code, _, b := ts.do(t, "POST", "/v1/completions", body, h...)
		if code != 401 || apiErrorOf(t, b).Type != "authentication_error" {
			t.Errorf("key %v: %d %s, want 401", h, code, b)
		}
	}
	if code, _, b := ts.do(t, "GET", "/v1/models", ""); code != 401 {
		t.Errorf("/v1/models without key: %d %s", code, b)
	}
	if code, _, b := ts.do(t, "POST", "/v1/completions", body, "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("right key: %d %s", code, b)
	}
	for _, p := range []string{"/health", "/", "/metrics"} {
		if code, _, _ := ts.do(t, "GET", p, ""); code != 200 {
			t.Errorf("%s with a key set: %d, want 200 (open)", p, code)
		}
	}
}

// slowRequest is long enough, with a step delay, to be caught mid-way.
var slowRequest = map[string]any{"prompt": "Tell me a story", "max_tokens": 100, "stream": true}

func TestOverload(t *testing.T) {
	ts := start(t, func(c *Config) { c.MaxBatch, c.MaxQueue = 1, 1 }, 20*time.Millisecond)
	running := ts.stream(t, slowRequest)
	defer running.close()
	if _, err := running.next(); err != nil { // it is in the batch
		t.Fatal(err)
	}
	// The next one waits in the queue...
	queued := make(chan int, 1)
	go func() {
		code, _, _ := ts.do(t, "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 2}`)
		queued <- code
	}()
	waitFor(t, "a queued request", func() bool { return ts.metric(t, "gpt2_queue_depth") == 1 })
	// ...and the one after is refused.
	code, hdr, body := ts.do(t, "POST", "/v1/completions", `{"prompt": "y", "max_tokens": 2}`)
	if code != 429 || hdr.Get("Retry-After") == "" || apiErrorOf(t, body).Type != "rate_limit_error" {
		t.Errorf("overload: %d %v %s, want 429 with Retry-After", code, hdr, body)
	}
	running.close()
	if code := <-queued; code != 200 {
		t.Errorf("queued request: %d", code)
	}

	// Requests that fit in the batch do not count against the queue, even
	// when they all come during one step.
	ts = start(t, func(c *Config) { c.MaxBatch, c.MaxQueue = 4, 1 }, 20*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if code, _, body := ts.do(t, "POST", "/v1/completions", fmt.Sprintf(`{"prompt": "%d", "max_tokens": 3}`, i)); code != 200 {
				t.Errorf("request %d of 4 with 4 places: %d %s", i, code, body)
			}
		})
	}
	wg.Wait()
}

func TestCancelOnDisconnect(t *testing.T) {
	ts := start(t, nil, 10*time.Millisecond)
	st := ts.stream(t, slowRequest)
	for range 3 {
		if _, err := st.next(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the sequence in the batch", func() bool { return ts.metric(t, "gpt2_batch_size") == 1 })
	st.close()
	waitFor(t, "the sequence to leave the batch", func() bool {
		return ts.metric(t, `gpt2_sequences_finished_total{reason="cancelled"}`) == 1
	})
	if b := ts.metric(t, "gpt2_batch_size"); b != 0 {
		t.Errorf("batch size %g after the client left", b)
	}
	gen := ts.metric(t, "gpt2_generated_tokens_total")
	time.Sleep(50 * time.Millisecond)
	if again := ts.metric(t, "gpt2_generated_tokens_total"); again != gen || gen >= 100 {
		t.Errorf("generated %g then %g tokens; want it stopped early, below 100", gen, again)
	}
	// Its cache went back to the pool: the next request reuses it.
	ts.complete(t, map[string]any{"prompt": "x", "max_tokens": 2})
	if c := ts.metric(t, "gpt2_kv_caches"); c != 1 {
		t.Errorf("%g caches allocated, want 1 reused", c)
	}
}

func TestTimeout(t *testing.T) {
	ts := start(t, func(c *Config) { c.Timeout = 150 * time.Millisecond }, 10*time.Millisecond)
	code, _, body := ts.do(t, "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 100}`)
	if e := apiErrorOf(t, body); code != 504 || e.Type != "timeout_error" {
		t.Errorf("timeout: %d %s, want 504", code, body)
	}
	// A stream that has begun ends with an error event and no [DONE].
	req := map[string]any{"prompt": "x", "max_tokens": 100, "stream": true}
	chunks, errEv, done := ts.stream(t, req).readAll(t)
	if done || errEv == nil || errEv.Type != "timeout_error" || len(chunks) == 0 {
		t.Errorf("streamed timeout: %d chunks, error %v, [DONE] %v", len(chunks), errEv, done)
	}
	// The error reaches the client just before the scheduler counts the
	// sequence's end.
	waitFor(t, "2 sequences counted as timed out", func() bool {
		return ts.metric(t, `gpt2_sequences_finished_total{reason="timeout"}`) == 2
	})
	// Short requests are unaffected.
	ts.complete(t, map[string]any{"prompt": "x", "max_tokens": 3})
}

func TestGracefulShutdown(t *testing.T) {
	ts := start(t, nil, 5*time.Millisecond)
	st := ts.stream(t, map[string]any{"prompt": "x", "max_tokens": 40, "stream": true, "temperature": 0})
	first, err := st.next()
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	// New connections are refused...
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ts.addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...while the request in flight runs to its end.
	chunks, errEv, done := st.readAll(t)
	var c completion
	json.Unmarshal([]byte(first), &c)
	chunks = append([]completion{c}, chunks...)
	last := chunks[len(chunks)-1].Choices
	if !done || errEv != nil || len(last) != 1 || last[0].FinishReason == nil || *last[0].FinishReason != "length" {
		t.Errorf("in-flight request: %d chunks, [DONE] %v, error %v", len(chunks), done, errEv)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := ts.metric2(t); n != 40 {
		t.Errorf("%g tokens generated, want 40", n)
	}
	// The scheduler is stopped too.
	if e := ts.sched.submit(newJob(context.Background(), &completionRequest{N: 1, Prompts: [][]int{{1}}})); e == nil || e.Status != 503 {
		t.Errorf("submit after shutdown: %v", e)
	}
}

// metric2 reads the generated-token count without HTTP (the server is
// shut down).
func (ts *testServer) metric2(t *testing.T) float64 {
	mfs, err := ts.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gpt2_generated_tokens_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
