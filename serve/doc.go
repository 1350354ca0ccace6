// Package serve is an HTTP server for a GPT-2 model with OpenAI's legacy
// completions API, continuous batching, Prometheus metrics and a browser
// playground.
//
// # Endpoints
//
//	POST /v1/completions   OpenAI's completion request and response (below)
//	GET  /v1/models        the loaded model: {"object": "list", "data": [{"id", "object": "model", ...}]}
//	GET  /v1/models/{id}   the same model object
//	POST /tokenize         {"prompt": "text"} → {"tokens": [ids], "count", "max_model_len"}
//	POST /detokenize       {"tokens": [ids]} → {"prompt": "text"}
//	GET  /health           {"status": "ok"}
//	GET  /metrics          Prometheus metrics (names start with gpt2_)
//	GET  /                 the playground
//
// Errors have OpenAI's shape, {"error": {"message", "type", "param",
// "code"}}, with 400 for a bad request, 401 for a missing or wrong API key,
// 404 for an unknown path or model, 405 for a wrong method, 413 for a body
// over the limit, 429 (with Retry-After) when the queue is full, 503 while
// shutting down and 504 when a request runs past the time limit. An API
// key, when set, guards /v1/..., /tokenize and /detokenize.
//
// # Completions
//
// The request fields are OpenAI's: model (optional; if given, the loaded
// model's id), prompt (a string, an array of strings, an array of token
// ids, or an array of arrays of token ids; empty or missing means starting
// a new document from <|endoftext|>), max_tokens (default 16), temperature
// (default 1; 0 is greedy decoding), top_p, n (at most 128 choices per
// request, counting every prompt), stop (a string or up to 4), seed,
// stream, stream_options.include_usage, logprobs (0 to 20 alternatives per
// token), echo, presence_penalty, frequency_penalty and logit_bias (token
// id → bias in [-100, 100]); also top_k and repetition_penalty, as vLLM
// has them. Unknown fields are ignored; best_of other than n and suffix
// are refused. A prompt plus max_tokens must fit the model's context.
//
// Choice i of a prompt samples with seed+i, the rule `gpt2 generate
// --seed S --num-samples N` follows, and its tokens do not depend on which
// other requests share its batch, so a seeded request is reproducible. The
// choices of prompt p have indexes p*n to p*n+n-1. Without a seed, each
// request draws a random one.
//
// With logprobs k, each choice has OpenAI's {tokens, token_logprobs,
// top_logprobs, text_offset}: per token its log-probability under the
// model (before temperature, penalties and truncation), and the k most
// likely tokens with theirs (plus the chosen one). Tokens whose bytes are
// not valid UTF-8 alone are written "bytes:\xNN...". text_offset counts
// bytes of the choice's text. With echo, the prompt's tokens come first,
// the first with a null log-probability; echo with logprobs and max_tokens
// 0 therefore scores a text, the loglikelihood query of evaluation
// harnesses.
//
// With stream, the response is server-sent events: "data: {chunk}" with
// the response's shape and one choice, as tokens are generated, then
// "data: [DONE]". A chunk with the usage and no choices comes before
// [DONE] with stream_options.include_usage. An error after the stream has
// begun is sent as "data: {"error": ...}" and ends the stream.
//
// # Scheduling
//
// One goroutine owns the model. Every step it runs one forward pass over
// the running batch: one token for each sequence that is decoding, and up
// to a budget of prompt tokens (the prefill chunk) for those whose prompt
// is not in yet. Sequences join between steps, oldest request first, as
// key/value caches free up (at most MaxBatch, allocated as needed and
// reused), and leave when they finish. Requests that find no cache wait in
// a queue of at most MaxQueue; beyond that they get 429.
//
// A request whose client disconnects leaves the batch at the next step. A
// request still running after Timeout (counted from its arrival, waiting
// included) is ended at the next step with a 504 timeout error, rather
// than answered with a truncated completion that would look complete; in a
// stream that has begun, the error is the last event. Shutdown stops
// accepting connections and lets the requests in progress finish.
package serve
