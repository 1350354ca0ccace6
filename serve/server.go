package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Config configures a Server. Only Model and Tokenizer are required.
type Config struct {
	Model     *model.Model
	Tokenizer *tokenizer.Tokenizer
	// ModelID is the name /v1/models reports and requests may give as
	// "model" (default "gpt2").
	ModelID string
	// MaxBatch is the most sequences (choices) generated at once, each
	// with its own key/value cache (default 8).
	MaxBatch int
	// MaxQueue is the most completion requests that may wait for a place
	// in the batch; more are refused with 429 (default 64).
	MaxQueue int
	// PrefillChunk is the most prompt tokens fed in one forward step, so
	// that long prompts do not stall the sequences already decoding
	// (default 256).
	PrefillChunk int
	// APIKey, when set, must be given as "Authorization: Bearer KEY" to the
	// API endpoints (/v1/..., /tokenize, /detokenize). The playground,
	// /health and /metrics stay open.
	APIKey string
	// Timeout ends a completion request that has run (queued or
	// generating) for longer, with a 504 timeout error. 0 means no limit.
	Timeout time.Duration
	// MaxBody is the largest request body accepted, in bytes; larger ones
	// get 413 (default 1 MiB).
	MaxBody int64
	// Log receives one line per request; nil discards them.
	Log io.Writer
}

// A Server serves a model over HTTP. See the package documentation for the
// API.
type Server struct {
	cfg     Config
	tok     *tokenizer.Tokenizer
	lim     limits
	sched   *scheduler
	metrics *metrics
	log     *log.Logger
	handler http.Handler
	created int64

	mu   sync.Mutex
	http *http.Server
}

// New returns a server for cfg's model and starts its scheduler. Stop it
// with Shutdown or Close.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil || cfg.Tokenizer == nil {
		return nil, errors.New("serve: a model and a tokenizer are required")
	}
	if cfg.ModelID == "" {
		cfg.ModelID = "gpt2"
	}
	def := func(v *int, d int, name string) error {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			return fmt.Errorf("serve: %s must be positive (got %d)", name, *v)
		}
		return nil
	}
	if err := errors.Join(def(&cfg.MaxBatch, 8, "max batch"), def(&cfg.MaxQueue, 64, "max queue"), def(&cfg.PrefillChunk, 256, "prefill chunk")); err != nil {
		return nil, err
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxBody < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("serve: max body and timeout must not be negative (got %d, %s)", cfg.MaxBody, cfg.Timeout)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	mt := newMetrics()
	s := &Server{
		cfg:     cfg,
		tok:     cfg.Tokenizer,
		lim:     limits{vocab: min(cfg.Tokenizer.VocabSize(), cfg.Model.Config.VocabSize), nctx: cfg.Model.Config.NCtx},
		sched:   newScheduler(cfg.Model, cfg.Tokenizer, cfg.MaxBatch, cfg.MaxQueue, cfg.PrefillChunk, mt),
		metrics: mt,
		log:     log.New(cfg.Log, "", log.LstdFlags),
		created: time.Now().Unix(),
	}
	s.handler = s.routes()
	go s.sched.run()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until Shutdown or Close, and then
// returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.http == nil {
		s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: s.log}
	}
	hs := s.http
	s.mu.Unlock()
	return hs.Serve(ln)
}

// Shutdown stops accepting connections, lets the requests in progress
// finish (queued ones included), and stops the scheduler. If ctx ends
// first, the remaining requests are ended with an error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	var err error
	if hs != nil {
		if err = hs.Shutdown(ctx); err != nil {
			s.sched.stop()
			hs.Close()
			return err
		}
	}
	return s.sched.drain(ctx)
}

// Close ends every request at once and stops the server.
func (s *Server) Close() error {
	s.sched.stop()
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	if hs != nil {
		return hs.Close()
	}
	return nil
}

// route is one endpoint: its handler per method, and whether it needs the
// API key.
type route struct {
	methods map[string]http.HandlerFunc
	auth    bool
}

func (s *Server) routes() http.Handler {
	get := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h}
	}
	post := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodPost: h}
	}
	static := playgroundFiles()
	table := map[string]route{
		"/":                    {methods: get(s.playground)},
		"/static/":             {methods: get(static.ServeHTTP)},
		"/health":              {methods: get(s.health)},
		"/metrics":             {methods: get(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP)},
		"/v1/models":           {methods: get(s.models), auth: true},
		"/v1/models/{model}":   {methods: get(s.modelInfo), auth: true},
		"/v1/completions":      {methods: post(s.completions), auth: true},
		"/tokenize":            {methods: post(s.tokenize), auth: true},
		"/detokenize":          {methods: post(s.detokenize), auth: true},
		"/v1/tokenize":         {methods: post(s.tokenize), auth: true},
		"/v1/detokenize":       {methods: post(s.detokenize), auth: true},
		"/v1/chat/completions": {methods: post(s.noChat), auth: true},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := endpointOf(r.URL.Path, table)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			d := time.Since(start)
			code := strconv.Itoa(rec.status)
			s.metrics.requests.WithLabelValues(endpoint, code).Inc()
			s.metrics.latency.WithLabelValues(endpoint).Observe(d.Seconds())
			note := ""
			if rec.note != "" {
				note = " " + rec.note
			}
			s.log.Printf("%s %s %s %d %dB %s%s", r.RemoteAddr, r.Method, r.URL.RequestURI(), rec.status, rec.bytes, d.Round(time.Microsecond), note)
		}()
		rt, ok := table[endpoint]
		if !ok {
			writeError(rec, notFound("unknown path %s %s", r.Method, r.URL.Path))
			return
		}
		if rt.auth && !s.authorized(r) {
			writeError(rec, &apiError{Status: http.StatusUnauthorized, Type: typeAuthentication, Code: ptr("invalid_api_key"),
				Message: "a valid API key is required: send it as \"Authorization: Bearer KEY\""})
			return
		}
		h, ok := rt.methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = rt.methods[http.MethodGet]
		}
		if !ok {
			allow := slices.Sorted(maps.Keys(rt.methods))
			if slices.Contains(allow, http.MethodGet) {
				allow = append(allow, http.MethodHead)
			}
			rec.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(rec, &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest,
				Message: fmt.Sprintf("method %s is not allowed on %s (use %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		h(rec, r)
	})
}

// endpointOf names the route a path belongs to ("other" for none); it also
// labels the metrics, so that arbitrary paths cannot add labels.
func endpointOf(path string, table map[string]route) string {
	if _, ok := table[path]; ok && !strings.HasSuffix(path, "/") || path == "/" {
		return path
	}
	switch {
	case strings.HasPrefix(path, "/static/") && len(path) > len("/static/"):
		return "/static/"
	case strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/") && !strings.Contains(path[len("/v1/models/"):], "/"):
		return "/v1/models/{model}"
	}
	return "other"
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// readBody reads a request body of at most MaxBody bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest,
		Message: fmt.Sprintf("the request body is larger than the server's limit of %d bytes", s.cfg.MaxBody)}
	if r.ContentLength > s.cfg.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, invalid("", "read the request body: %v", err)
	}
	return body, nil
}

// recorder notes a response's status and size for the log and metrics.
// It passes Flush through, for streaming.
type recorder struct {
	http.ResponseWriter
	status, bytes int
	wrote         bool
	note          string // extra words for the log line
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	r.wrote = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// notef adds words to the request's log line.
func notef(w http.ResponseWriter, format string, args ...any) {
	if r, ok := w.(*recorder); ok {
		r.note = fmt.Sprintf(format, args...)
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// MaxModelLen is the context length, as vLLM reports it.
	MaxModelLen int `json:"max_model_len"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.cfg.ModelID, Object: "model", Created: s.created, OwnedBy: "gpt2", MaxModelLen: s.lim.nctx}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{s.modelObject()}})
}

func (s *Server) modelInfo(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	if id != s.cfg.ModelID {
		writeError(w, s.unknownModel(id))
		return
	}
	writeJSON(w, s.modelObject())
}

func (s *Server) unknownModel(id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Param: ptr("model"), Code: ptr("model_not_found"),
		Message: fmt.Sprintf("the model %q does not exist; this server has %q", id, s.cfg.ModelID)}
}

func (s *Server) noChat(w http.ResponseWriter, r *http.Request) {
	writeError(w, notFound("this server has no chat models: use /v1/completions"))
}

// tokenize answers {"prompt": "text"} with {"tokens": [...], "count": n,
// "max_model_len": n_ctx}. Special tokens are plain text, as in completion
// prompts.
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	f, e := decodeObject(body)
	if e != nil {
		writeError(w, e)
		return
	}
	var text string
	if !f.has("prompt") || json.Unmarshal(f["prompt"], &text) != nil {
		writeError(w, invalid("prompt", "prompt must be a string"))
		return
	}
	ids := s.tok.Encode(text)
	if ids == nil {
		ids = []int{}
	}
	writeJSON(w, struct {
		Tokens      []int `json:"tokens"`
		Count       int   `json:"count"`
		MaxModelLen int   `json:"max_model_len"`
	}{ids, len(ids), s.lim.nctx})
}

// detokenize answers {"tokens": [...]} with {"prompt": "text"}.
func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	f, e := decodeObject(body)
	if e != nil {
		writeError(w, e)
		return
	}
	var raw []json.RawMessage
	if !f.has("tokens") || json.Unmarshal(f["tokens"], &raw) != nil {
		writeError(w, invalid("tokens", "tokens must be an array of token ids"))
		return
	}
	ids := make([]int, len(raw))
	for i, v := range raw {
		id, err := parseInt(v)
		if err != nil {
			writeError(w, invalid("tokens", "token %d: %v; token ids are integers", i, err))
			return
		}
		if id < 0 || id >= s.lim.vocab {
			writeError(w, invalid("tokens", "token %d is %d, outside the vocabulary of %d tokens", i, id, s.lim.vocab))
			return
		}
		ids[i] = id
	}
	text, err := s.tok.Decode(ids)
	if err != nil {
		writeError(w, invalid("tokens", "%v", err))
		return
	}
	writeJSON(w, map[string]string{"prompt": text})
}
