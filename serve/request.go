package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/gpt2go/gpt2/sample"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Request limits that do not depend on the model.
const (
	maxChoices  = 128 // prompts × n, as OpenAI caps n
	maxLogprobs = 20  // OpenAI allows 5; evaluation harnesses sometimes want more
	maxStops    = 4   // as OpenAI
	maxStopLen  = 256 // bytes; stop strings are matched on every token
)

// limits are what a request is checked against.
type limits struct {
	vocab int // usable token ids: [0, vocab)
	nctx  int // the model's context
}

// completionRequest is a checked /v1/completions request.
type completionRequest struct {
	Model        string
	Prompts      [][]int // token ids of each prompt; empty means start from <|endoftext|>
	N            int     // choices per prompt
	MaxTokens    int
	Params       sample.Params // Seed is that of choice 0 of each prompt
	Stop         []string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage
	Logprobs     int  // alternatives per token; -1 means no logprobs
	Echo         bool
}

// choices is the number of sequences the request generates.
func (r *completionRequest) choices() int { return len(r.Prompts) * r.N }

// fields are a request's top-level JSON fields. Its methods decode one,
// reporting a wrong type as a 400 that names it.
type fields map[string]json.RawMessage

// has reports whether key is present and not null.
func (f fields) has(key string) bool {
	v, ok := f[key]
	return ok && !isNull(v)
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func (f fields) number(key string) (float64, bool, *apiError) {
	if !f.has(key) {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(f[key], &n); err != nil {
		return 0, false, invalid(key, "%s must be a number", key)
	}
	x, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, false, invalid(key, "%s is out of range (%s)", key, n)
	}
	return x, true, nil
}

func (f fields) integer(key string) (int, bool, *apiError) {
	if !f.has(key) {
		return 0, false, nil
	}
	i, err := parseInt(f[key])
	if err != nil {
		return 0, false, invalid(key, "%s must be an integer: %v", key, err)
	}
	return i, true, nil
}

func (f fields) boolean(key string) (bool, *apiError) {
	if !f.has(key) {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(f[key], &b); err != nil {
		return false, invalid(key, "%s must be a boolean", key)
	}
	return b, nil
}

// parseInt reads a JSON integer that fits an int. A number with a zero
// fractional part (16.0) counts as an integer, as JSON does not tell them
// apart.
func parseInt(v json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, errors.New("not a number")
	}
	if i, err := strconv.ParseInt(string(n), 10, 0); err == nil {
		return int(i), nil
	}
	x, err := strconv.ParseFloat(string(n), 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return 0, fmt.Errorf("%s is not an integer in range", n)
	}
	return int(x), nil
}

// parseCompletion decodes and checks a completion request body. It returns
// either a request that can run or a 4xx error in OpenAI's shape. Fields it
// does not know are ignored, as OpenAI does.
func parseCompletion(body []byte, tok *tokenizer.Tokenizer, lim limits) (*completionRequest, *apiError) {
	f, e := decodeObject(body)
	if e != nil {
		return nil, e
	}
	r := &completionRequest{N: 1, MaxTokens: 16, Logprobs: -1}
	r.Params.Temperature = 1

	if f.has("model") {
		if err := json.Unmarshal(f["model"], &r.Model); err != nil {
			return nil, invalid("model", "model must be a string")
		}
	}
	if r.Prompts, e = parsePrompt(f, tok, lim); e != nil {
		return nil, e
	}
	if n, ok, e := f.integer("n"); e != nil {
		return nil, e
	} else if ok {
		if n < 1 || n > maxChoices {
			return nil, invalid("n", "n must be between 1 and %d (got %d)", maxChoices, n)
		}
		r.N = n
	}
	if r.choices() > maxChoices {
		return nil, invalid("n", "%d prompts × n %d is %d completions, more than the %d a request may ask for",
			len(r.Prompts), r.N, r.choices(), maxChoices)
	}
	if b, ok, e := f.integer("best_of"); e != nil {
		return nil, e
	} else if ok && b != r.N {
		return nil, invalid("best_of", "best_of is not supported (it must equal n when given)")
	}
	if f.has("suffix") {
		return nil, invalid("suffix", "suffix is not supported")
	}

	if m, ok, e := f.integer("max_tokens"); e != nil {
		return nil, e
	} else if ok {
		if m < 0 {
			return nil, invalid("max_tokens", "max_tokens must be >= 0 (got %d)", m)
		}
		r.MaxTokens = m
	}
	for _, p := range r.Prompts {
		n := max(len(p), 1)           // an empty prompt is fed as <|endoftext|>
		if r.MaxTokens > lim.nctx-n { // not n+MaxTokens, which can overflow
			return nil, invalid("max_tokens",
				"this model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; %d for the completion); reduce the prompt or max_tokens",
				lim.nctx, uint(n)+uint(r.MaxTokens), n, r.MaxTokens)
		}
	}

	p := &r.Params
	if x, ok, e := f.number("temperature"); e != nil {
		return nil, e
	} else if ok {
		if x < 0 {
			return nil, invalid("temperature", "temperature must be >= 0 (got %g)", x)
		}
		p.Temperature = x
	}
	if x, ok, e := f.number("top_p"); e != nil {
		return nil, e
	} else if ok {
		if !(x > 0 && x <= 1) {
			return nil, invalid("top_p", "top_p must be in (0, 1] (got %g)", x)
		}
		p.TopP = x
	}
	if k, ok, e := f.integer("top_k"); e != nil {
		return nil, e
	} else if ok {
		if k < -1 {
			return nil, invalid("top_k", "top_k must be >= 0, or -1 for all tokens (got %d)", k)
		}
		p.TopK = max(k, 0)
	}
	for _, pen := range []struct {
		key string
		dst *float64
	}{{"presence_penalty", &p.PresencePenalty}, {"frequency_penalty", &p.FrequencyPenalty}} {
		x, ok, e := f.number(pen.key)
		if e != nil {
			return nil, e
		}
		if ok && !(x >= -2 && x <= 2) {
			return nil, invalid(pen.key, "%s must be in [-2, 2] (got %g)", pen.key, x)
		}
		*pen.dst = x
	}
	if x, ok, e := f.number("repetition_penalty"); e != nil {
		return nil, e
	} else if ok {
		if !(x > 0) {
			return nil, invalid("repetition_penalty", "repetition_penalty must be > 0 (got %g)", x)
		}
		p.RepetitionPenalty = x
	}
	if p.LogitBias, e = parseLogitBias(f, lim.vocab); e != nil {
		return nil, e
	}
	if p.Seed, e = parseSeed(f); e != nil {
		return nil, e
	}
	if r.Stop, e = parseStop(f); e != nil {
		return nil, e
	}

	if k, ok, e := f.integer("logprobs"); e != nil {
		// OpenAI's chat API takes a boolean here; say what this one wants.
		return nil, invalid("logprobs", "logprobs must be an integer: the number of most likely alternatives to return per token (0 to %d)", maxLogprobs)
	} else if ok {
		if k < 0 || k > maxLogprobs {
			return nil, invalid("logprobs", "logprobs must be between 0 and %d (got %d)", maxLogprobs, k)
		}
		r.Logprobs = k
	}
	if r.Echo, e = f.boolean("echo"); e != nil {
		return nil, e
	}
	if r.Stream, e = f.boolean("stream"); e != nil {
		return nil, e
	}
	if f.has("stream_options") {
		var so fields
		if err := json.Unmarshal(f["stream_options"], &so); err != nil || so == nil {
			return nil, invalid("stream_options", "stream_options must be an object")
		}
		if r.IncludeUsage, e = so.boolean("include_usage"); e != nil {
			e.Param = ptr("stream_options.include_usage")
			return nil, e
		}
	}
	// The sampler checks the rest (and everything again).
	if err := r.Params.Validate(lim.vocab); err != nil {
		return nil, invalid("", "%v", err)
	}
	return r, nil
}

// decodeObject decodes a body that must be one JSON object.
func decodeObject(body []byte) (fields, *apiError) {
	var f fields
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&f); err != nil || f == nil {
		if err == nil || isJSONTypeError(err) {
			return nil, invalid("", "the request body must be a JSON object")
		}
		return nil, invalid("", "the request body is not valid JSON: %v", err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, invalid("", "the request body is not valid JSON: data after the object")
	}
	return f, nil
}

func isJSONTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// parsePrompt reads prompt: a string, an array of strings, an array of
// token ids, or an array of arrays of token ids. A missing prompt is an
// empty one.
func parsePrompt(f fields, tok *tokenizer.Tokenizer, lim limits) ([][]int, *apiError) {
	if !f.has("prompt") {
		return [][]int{nil}, nil
	}
	raw := f["prompt"]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return [][]int{tok.Encode(s)}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("prompt", "prompt must be a string, an array of strings, an array of token ids, or an array of arrays of token ids")
	}
	if len(items) == 0 {
		return [][]int{nil}, nil
	}
	mixed := invalid("prompt", "prompt must be a string, an array of strings, an array of token ids, or an array of arrays of token ids (not a mixture)")
	switch first := bytes.TrimSpace(items[0]); {
	case len(first) > 0 && first[0] == '"':
		if len(items) > maxChoices {
			return nil, invalid("prompt", "%d prompts is more than the %d a request may have", len(items), maxChoices)
		}
		out := make([][]int, len(items))
		for i, it := range items {
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, mixed
			}
			out[i] = tok.Encode(s)
		}
		return out, nil
	case len(first) > 0 && first[0] == '[':
		if len(items) > maxChoices {
			return nil, invalid("prompt", "%d prompts is more than the %d a request may have", len(items), maxChoices)
		}
		out := make([][]int, len(items))
		for i, it := range items {
			var ids []json.RawMessage
			if err := json.Unmarshal(it, &ids); err != nil {
				return nil, mixed
			}
			p, e := parseIDs(ids, lim, fmt.Sprintf("prompt %d ", i))
			if e != nil {
				return nil, e
			}
			out[i] = p
		}
		return out, nil
	default:
		p, e := parseIDs(items, lim, "")
		if e != nil {
			return nil, e
		}
		return [][]int{p}, nil
	}
}

// parseIDs reads token ids, which must lie in the vocabulary and fit the
// context (a longer prompt could never run).
func parseIDs(items []json.RawMessage, lim limits, which string) ([]int, *apiError) {
	if len(items) > lim.nctx {
		return nil, invalid("prompt", "%sis %d tokens, longer than this model's maximum context length of %d tokens", orPrompt(which), len(items), lim.nctx)
	}
	ids := make([]int, len(items))
	for i, it := range items {
		id, err := parseInt(it)
		if err != nil {
			return nil, invalid("prompt", "%stoken %d: %v; token ids are integers", which, i, err)
		}
		if id < 0 || id >= lim.vocab {
			return nil, invalid("prompt", "%stoken %d is %d, outside the vocabulary of %d tokens", which, i, id, lim.vocab)
		}
		ids[i] = id
	}
	return ids, nil
}

func orPrompt(which string) string {
	if which == "" {
		return "prompt "
	}
	return which
}

// parseStop reads stop: a string or an array of up to maxStops strings.
func parseStop(f fields) ([]string, *apiError) {
	if !f.has("stop") {
		return nil, nil
	}
	var stops []string
	var s string
	if json.Unmarshal(f["stop"], &s) == nil {
		stops = []string{s}
	} else if err := json.Unmarshal(f["stop"], &stops); err != nil {
		return nil, invalid("stop", "stop must be a string or an array of strings")
	}
	if len(stops) > maxStops {
		return nil, invalid("stop", "stop may have at most %d strings (got %d)", maxStops, len(stops))
	}
	for _, s := range stops {
		if s == "" {
			return nil, invalid("stop", "stop strings must not be empty")
		}
		if len(s) > maxStopLen {
			return nil, invalid("stop", "stop strings must be at most %d bytes (got %d)", maxStopLen, len(s))
		}
	}
	return stops, nil
}

// parseLogitBias reads logit_bias: token ids (as strings) to biases in
// [-100, 100].
func parseLogitBias(f fields, vocab int) (map[int]float32, *apiError) {
	if !f.has("logit_bias") {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f["logit_bias"], &raw); err != nil {
		return nil, invalid("logit_bias", "logit_bias must be an object mapping token ids to biases")
	}
	bias := make(map[int]float32, len(raw))
	for k, v := range raw {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 || id >= vocab {
			return nil, invalid("logit_bias", "logit_bias key %q is not a token id in the vocabulary of %d tokens", k, vocab)
		}
		var b float64
		if err := json.Unmarshal(v, &b); err != nil || !(b >= -100 && b <= 100) {
			return nil, invalid("logit_bias", "logit_bias for token %d must be a number in [-100, 100]", id)
		}
		bias[id] = float32(b)
	}
	return bias, nil
}

// parseSeed reads seed, any integer in int64 or uint64 range (a negative
// seed is taken modulo 2^64). Without one, the seed is random.
func parseSeed(f fields) (uint64, *apiError) {
	if !f.has("seed") {
		return rand.Uint64(), nil
	}
	var n json.Number
	if err := json.Unmarshal(f["seed"], &n); err != nil {
		return 0, invalid("seed", "seed must be an integer")
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, nil
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return uint64(i), nil
	}
	return 0, invalid("seed", "seed must be an integer in the 64-bit range (got %s)", n)
}
