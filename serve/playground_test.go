package serve

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// TestPlayground drives the playground in headless Chromium: it types a
// prompt, presses Generate, and waits for the streamed tokens, which must
// be coloured spans with their alternatives on hover, and the same text as
// the API gives for the same request.
func TestPlayground(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (%v): CI must install the Debian package chromium for the playground test", chromium, err)
		}
		t.Skipf("%s not found, so the playground is not tested in a browser (apt-get install chromium)", chromium)
	}
	ts := start(t, nil, 0)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	const prompt = "Once upon a time"
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.url+"/"),
		chromedp.WaitVisible(chromedp.ID("generate")),
		chromedp.SendKeys(chromedp.ID("prompt"), prompt),
		chromedp.SetValue(chromedp.ID("max_tokens"), "12"),
		chromedp.SetValue(chromedp.ID("seed"), "3"),
		chromedp.Click(chromedp.ID("generate")),
		chromedp.WaitVisible(chromedp.CSS("#output span.tok")),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.includes("finish reason")`,
			chromedp.WithPollingTimeout(20*time.Second)),
	)
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatalf("browser: %v (status %q)", err, status)
	}
	model := run(t, ctx, chromedp.Text(chromedp.ID("model")))
	spans := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#output span.tok").length`))
	coloured := run(t, ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#output span.tok")].every(s => s.style.background !== "")`))
	data := run(t, ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#output span.tok")].every(s => !isNaN(parseFloat(s.dataset.logprob)))`))
	title := run(t, ctx, chromedp.AttributeValue(chromedp.CSS("#output span.tok"), "title"))
	output := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("output").textContent`))

	if model != "tiny-real-vocab" {
		t.Errorf("page names model %q", model)
	}
	if spans == 0 || spans > 12 || !coloured || !data {
		t.Errorf("%d token spans (coloured %v, with logprobs %v), want 1 to 12", spans, coloured, data)
	}
	// The hover text: the token and 5 alternatives, each with a percentage.
	if !title.Exists || len(regexp.MustCompile(`\d%`).FindAllString(title.Value, -1)) < 6 {
		t.Errorf("hover text %q: want the token and 5 alternatives with probabilities", title.Value)
	}
	if !strings.Contains(status, "12 tokens") || !strings.Contains(status, "finish reason: length") {
		t.Errorf("status %q", status)
	}
	// The page's defaults: temperature 1, top-k 40, top-p 1.
	c := ts.complete(t, map[string]any{"prompt": prompt, "max_tokens": 12, "seed": 3, "temperature": 1, "top_k": 40, "top_p": 1})
	if want := prompt + c.Choices[0].Text; output != want {
		t.Errorf("page shows %q, the API gives %q", output, want)
	}
	// Everything the page loaded came from the server.
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			paths = append(paths, f[3]+" "+f[4])
		}
	}
	for _, want := range []string{"GET /", "GET /static/playground.js", "GET /static/playground.css", "POST /v1/completions"} {
		if !slices.Contains(paths, want) {
			t.Errorf("requests %q lack %q", paths, want)
		}
	}
}

// run runs a browser action that returns a value, failing the test on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}
