package serve

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/gpt2go/gpt2/tokenizer"
)

var testLimits = limits{vocab: 50257, nctx: 128}

func TestParseCompletion(t *testing.T) {
	tok := tokenizer.Default()
	r, e := parseCompletion([]byte(`{"prompt": "Hello world", "unknown": [1, {"x": null}]}`), tok, testLimits)
	if e != nil {
		t.Fatal(e)
	}
	// OpenAI's defaults.
	if r.N != 1 || r.MaxTokens != 16 || r.Params.Temperature != 1 || r.Params.TopP != 0 || r.Logprobs != -1 || r.Echo || r.Stream ||
		len(r.Prompts) != 1 || !slices.Equal(r.Prompts[0], tok.Encode("Hello world")) {
		t.Errorf("defaults: %+v", r)
	}
	r, e = parseCompletion([]byte(`{"prompt": [[1, 2], [3]], "n": 2, "max_tokens": 16.0, "temperature": 0, "top_p": 0.5, "top_k": -1,
		"stop": "\n", "seed": -1, "logprobs": 3, "echo": true, "stream": true, "stream_options": {"include_usage": true},
		"presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.2, "logit_bias": {"50256": -100}, "best_of": 2}`), tok, testLimits)
	if e != nil {
		t.Fatal(e)
	}
	p := r.Params
	if len(r.Prompts) != 2 || !slices.Equal(r.Prompts[1], []int{3}) || r.N != 2 || r.choices() != 4 || r.MaxTokens != 16 ||
		p.Temperature != 0 || p.TopP != 0.5 || p.TopK != 0 || !slices.Equal(r.Stop, []string{"\n"}) || p.Seed != 1<<64-1 ||
		r.Logprobs != 3 || !r.Echo || !r.Stream || !r.IncludeUsage || p.PresencePenalty != 0.5 || p.FrequencyPenalty != -0.5 ||
		p.RepetitionPenalty != 1.2 || p.LogitBias[50256] != -100 {
		t.Errorf("all fields: %+v", r)
	}
	// Without a seed, each request gets its own.
	a, _ := parseCompletion([]byte(`{}`), tok, testLimits)
	b, _ := parseCompletion([]byte(`{}`), tok, testLimits)
	if a.Params.Seed == b.Params.Seed {
		t.Errorf("two requests without a seed both got seed %d", a.Params.Seed)
	}
	// The prompt and the completion together fill the context exactly.
	if _, e := parseCompletion([]byte(`{"prompt": [1, 2, 3], "max_tokens": 125}`), tok, testLimits); e != nil {
		t.Errorf("3 + 125 tokens in a context of 128: %v", e)
	}
	if _, e := parseCompletion([]byte(`{"prompt": [1, 2, 3], "max_tokens": 126}`), tok, testLimits); e == nil {
		t.Errorf("3 + 126 tokens in a context of 128: accepted")
	}
}

// FuzzCompletionRequest checks that any body yields either a request that
// can run or a 4xx error in OpenAI's shape, and never a panic.
func FuzzCompletionRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt": "Hello", "max_tokens": 5}`,
		`{"prompt": ["a", "b"], "n": 3, "stop": ["x", "y"], "logprobs": 2, "echo": true}`,
		`{"prompt": [1, 2, 3], "temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 18446744073709551615}`,
		`{"prompt": [[50256], []], "logit_bias": {"11": 5.5}, "presence_penalty": -2, "frequency_penalty": 2}`,
		`{"prompt": null, "max_tokens": null, "stream": true, "stream_options": {"include_usage": false}}`,
		`{"prompt": "x", "max_tokens": 1e400}`,
		`{"prompt": [1e3, -0]}`,
		`{"n": 129}`, `{"n": 9223372036854775807, "prompt": ["a", "b"]}`, `{"max_tokens": 9223372036854775807}`, `[]`, `null`, `{`, ``, `{"prompt": "\ud800"}`, `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(s))
	}
	tok := tokenizer.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		r, e := parseCompletion(body, tok, testLimits)
		if (r == nil) == (e == nil) {
			t.Fatalf("request %v and error %v", r, e)
		}
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Message == "" || e.Type == "" {
				t.Fatalf("error %+v: not a 4xx with a message and type", e)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := r.Params.Validate(testLimits.vocab); err != nil {
			t.Fatalf("invalid parameters accepted: %v", err)
		}
		switch {
		case r.N < 1 || r.choices() > maxChoices || len(r.Prompts) == 0:
			t.Fatalf("%d prompts × n %d accepted", len(r.Prompts), r.N)
		case r.MaxTokens < 0:
			t.Fatalf("max_tokens %d accepted", r.MaxTokens)
		case r.Logprobs < -1 || r.Logprobs > maxLogprobs:
			t.Fatalf("logprobs %d accepted", r.Logprobs)
		case len(r.Stop) > maxStops:
			t.Fatalf("%d stop strings accepted", len(r.Stop))
		case r.Params.TopP < 0 || r.Params.TopP > 1 || r.Params.Temperature < 0:
			t.Fatalf("parameters %+v accepted", r.Params)
		}
		for _, s := range r.Stop {
			if s == "" {
				t.Fatal("empty stop string accepted")
			}
		}
		for _, p := range r.Prompts {
			if r.MaxTokens > testLimits.nctx-max(len(p), 1) {
				t.Fatalf("prompt of %d + %d tokens accepted", len(p), r.MaxTokens)
			}
			for _, id := range p {
				if id < 0 || id >= testLimits.vocab {
					t.Fatalf("token %d accepted", id)
				}
			}
		}
	})
}
