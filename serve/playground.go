package serve

import (
	"embed"
	"html"
	"io/fs"
	"net/http"
	"strings"
)

// The playground is one page and its script and style sheet, built into
// the binary, so it works offline and loads nothing from elsewhere.
//
//go:embed static
var staticFiles embed.FS

// playgroundCSP lets the page load only from this server.
const playgroundCSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func playgroundFiles() http.Handler {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", playgroundCSP)
		files.ServeHTTP(w, r)
	})
}

func (s *Server) playground(w http.ResponseWriter, r *http.Request) {
	page, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", playgroundCSP)
	h.Set("Cache-Control", "no-cache")
	w.Write([]byte(strings.Replace(string(page), "{{MODEL}}", html.EscapeString(s.cfg.ModelID), 1)))
}
