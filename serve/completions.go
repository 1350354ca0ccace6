package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// Response shapes, as OpenAI's legacy completions API has them.
type (
	completion struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   *usage   `json:"usage,omitempty"`
	}
	choice struct {
		Text         string        `json:"text"`
		Index        int           `json:"index"`
		Logprobs     *logprobsJSON `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	logprobsJSON struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []*float64           `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
	usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
)

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, e := parseCompletion(body, s.tok, s.lim)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Model != "" && req.Model != s.cfg.ModelID {
		writeError(w, s.unknownModel(req.Model))
		return
	}
	// The job's context ends when the client leaves, when the handler
	// returns for any reason, or at the time limit.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if s.cfg.Timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancelTimeout()
	}
	j := newJob(ctx, req)
	if e := s.sched.submit(j); e != nil {
		if e.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, e)
		return
	}
	out := &responder{
		s: s, req: req,
		head:    completion{ID: newID(), Object: "text_completion", Created: time.Now().Unix(), Model: s.cfg.ModelID},
		offsets: make([]int, req.choices()),
	}
	for _, p := range req.Prompts {
		out.usage.PromptTokens += max(len(p), 1)
	}
	if req.Stream {
		out.stream(r.Context(), w, j)
	} else {
		out.collect(r.Context(), w, j)
	}
	notef(w, "prompt_tokens=%d completion_tokens=%d", out.usage.PromptTokens, out.usage.CompletionTokens)
}

// responder turns a job's events into the response.
type responder struct {
	s       *Server
	req     *completionRequest
	head    completion
	usage   usage
	offsets []int // per choice: bytes of text so far, for text_offset
}

// collect waits for the whole job and sends one response.
func (o *responder) collect(ctx context.Context, w http.ResponseWriter, j *job) {
	choices := make([]choice, o.req.choices())
	for i := range choices {
		choices[i].Index = i
		if o.req.Logprobs >= 0 {
			choices[i].Logprobs = newLogprobs()
		}
	}
	text := make([]bytes.Buffer, len(choices))
	for {
		evs := j.wait(ctx)
		if evs == nil {
			return // the client left
		}
		for _, ev := range evs {
			switch {
			case ev.err != nil:
				writeError(w, ev.err)
				return
			case ev.done:
				for i := range choices {
					choices[i].Text = text[i].String()
				}
				u := o.usage
				u.TotalTokens = u.PromptTokens + u.CompletionTokens
				c := o.head
				c.Choices, c.Usage = choices, &u
				writeJSON(w, c)
				return
			}
			c := &choices[ev.choice]
			text[ev.choice].WriteString(ev.text)
			if ev.lp != nil {
				o.appendLogprobs(c.Logprobs, ev.choice, ev.lp)
			}
			if ev.finish != "" {
				c.FinishReason = ptr(ev.finish)
				o.usage.CompletionTokens += ev.tokens
			}
		}
	}
}

// stream sends the job's events as server-sent events as they come: one
// chunk per event, then "data: [DONE]". The headers go out with the first
// event, so a request that fails before then (a timeout while queued) gets
// a plain error response.
func (o *responder) stream(ctx context.Context, w http.ResponseWriter, j *job) {
	rc := http.NewResponseController(w)
	started := false
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	chunk := func(v any) {
		buf.WriteString("data: ")
		enc.Encode(v) // adds the first \n
		buf.WriteString("\n")
	}
	for {
		evs := j.wait(ctx)
		if evs == nil {
			return
		}
		if !started {
			if evs[0].err != nil {
				writeError(w, evs[0].err)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		end := false
		for _, ev := range evs {
			switch {
			case ev.err != nil:
				// Mid-stream errors are sent as an event in OpenAI's error
				// shape, and the stream ends without [DONE].
				chunk(struct {
					Error *apiError `json:"error"`
				}{ev.err})
				end = true
			case ev.done:
				if o.req.IncludeUsage {
					u := o.usage
					u.TotalTokens = u.PromptTokens + u.CompletionTokens
					c := o.head
					c.Choices, c.Usage = []choice{}, &u
					chunk(c)
				}
				buf.WriteString("data: [DONE]\n\n")
				end = true
			default:
				if ev.text == "" && ev.lp == nil && ev.finish == "" {
					continue
				}
				ch := choice{Text: ev.text, Index: ev.choice}
				if ev.lp != nil {
					ch.Logprobs = newLogprobs()
					o.appendLogprobs(ch.Logprobs, ev.choice, ev.lp)
				}
				if ev.finish != "" {
					ch.FinishReason = ptr(ev.finish)
					o.usage.CompletionTokens += ev.tokens
				}
				c := o.head
				c.Choices = []choice{ch}
				chunk(c)
			}
			if end {
				break
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client left; returning cancels the job
		}
		buf.Reset()
		rc.Flush()
		if end {
			return
		}
	}
}

func newLogprobs() *logprobsJSON {
	return &logprobsJSON{Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
}

// appendLogprobs adds entries for choice i's next tokens. text_offset is
// the byte offset of each token in the choice's text (the echoed prompt
// included); the token that completes a stop string, and <|endoftext|>,
// lie past the end of the text returned.
func (o *responder) appendLogprobs(lp *logprobsJSON, i int, entries []lpEntry) {
	for _, e := range entries {
		str, n := o.tokenString(e.token)
		lp.Tokens = append(lp.Tokens, str)
		lp.TextOffset = append(lp.TextOffset, o.offsets[i])
		o.offsets[i] += n
		if e.none {
			lp.TokenLogprobs = append(lp.TokenLogprobs, nil)
			lp.TopLogprobs = append(lp.TopLogprobs, nil)
			continue
		}
		v := e.logprob
		lp.TokenLogprobs = append(lp.TokenLogprobs, &v)
		top := make(map[string]float64, len(e.top)+1)
		for _, t := range e.top {
			s, _ := o.tokenString(t.ID)
			if _, dup := top[s]; !dup {
				top[s] = t.Logprob
			}
		}
		// As OpenAI does, the chosen token is always among them.
		if o.req.Logprobs > 0 {
			top[str] = e.logprob
		}
		lp.TopLogprobs = append(lp.TopLogprobs, top)
	}
}

// tokenString is how a token appears in logprobs: its text, or, when its
// bytes are not valid UTF-8 on their own, "bytes:" and their \xNN escapes,
// as OpenAI writes them. It also returns the token's length in bytes.
func (o *responder) tokenString(id int) (string, int) {
	b, err := o.s.tok.TokenBytes(id)
	if err != nil {
		return "", 0
	}
	if utf8.Valid(b) {
		return string(b), len(b)
	}
	s := []byte("bytes:")
	for _, c := range b {
		s = fmt.Appendf(s, `\x%02x`, c)
	}
	return string(s), len(b)
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "cmpl-" + hex.EncodeToString(b[:])
}
