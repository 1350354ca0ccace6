// The gpt2 playground: streams a completion from /v1/completions and shows
// each generated token coloured by its probability, with the most likely
// alternatives on hover. Plain browser APIs only; nothing is loaded from
// elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let running = null; // the AbortController of the request in flight

const keyInput = $("api_key");
keyInput.value = localStorage.getItem("gpt2.apiKey") || "";
keyInput.addEventListener("change", () => localStorage.setItem("gpt2.apiKey", keyInput.value));

$("generate").addEventListener("click", generate);
$("cancel").addEventListener("click", () => running && running.abort());
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate();
});

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

// unescape turns \n, \t and \\ in a stop string into the characters.
function unescape(s) {
  return s.replace(/\\(n|t|\\)/g, (_, c) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
}

function number(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

function buildRequest() {
  const req = {
    prompt: $("prompt").value,
    max_tokens: number("max_tokens"),
    temperature: number("temperature"),
    top_k: number("top_k"),
    top_p: number("top_p"),
    seed: number("seed"),
    stream: true,
    logprobs: 5,
    stream_options: { include_usage: true },
  };
  const stops = $("stop").value.split("\n").filter((s) => s !== "").map(unescape);
  if (stops.length) req.stop = stops;
  return req;
}

// colour maps a log-probability to a background: red for unlikely tokens,
// green for likely ones, on a log scale (a probability of 1e-4 or less is
// fully red).
function colour(logprob) {
  const t = Math.max(0, Math.min(1, 1 + logprob / Math.log(1e4)));
  return `hsl(${Math.round(120 * t)}, ${Math.round(85 - 25 * t)}%, ${Math.round(82 - 2 * t)}%)`;
}

function percent(logprob) {
  const p = Math.exp(logprob) * 100;
  return p >= 0.1 ? p.toFixed(1) + "%" : p.toExponential(1) + "%";
}

// describe is the hover text of a span: each token it covers with its
// probability and the alternatives, most likely first.
function describe(entries) {
  return entries.map((e) => {
    const lines = [`${JSON.stringify(e.token)}  ${percent(e.logprob)}`, "most likely:"];
    const alts = Object.entries(e.top || {}).sort((a, b) => b[1] - a[1]);
    for (const [tok, lp] of alts) lines.push(`  ${JSON.stringify(tok)}  ${percent(lp)}`);
    return lines.join("\n");
  }).join("\n\n");
}

async function generate() {
  if (running) return;
  const out = $("output");
  out.textContent = "";
  const promptSpan = document.createElement("span");
  promptSpan.className = "prompt";
  promptSpan.textContent = $("prompt").value;
  out.appendChild(promptSpan);

  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers.Authorization = "Bearer " + keyInput.value;
  running = new AbortController();
  $("generate").disabled = true;
  $("cancel").disabled = false;
  setStatus("waiting…");
  const started = performance.now();
  let tokens = 0;
  let finish = "";
  let pending = []; // entries of tokens whose text has not come yet

  function onChunk(obj) {
    if (obj.error) throw new Error(obj.error.message);
    if (obj.usage) {
      tokens = obj.usage.completion_tokens;
      return;
    }
    for (const ch of obj.choices || []) {
      const lp = ch.logprobs;
      if (lp) {
        for (let i = 0; i < lp.tokens.length; i++) {
          pending.push({ token: lp.tokens[i], logprob: lp.token_logprobs[i], top: lp.top_logprobs[i] });
        }
      }
      if (ch.text) {
        const span = document.createElement("span");
        span.className = "tok";
        span.textContent = ch.text;
        if (pending.length) {
          span.title = describe(pending);
          span.style.background = colour(Math.min(...pending.map((e) => e.logprob)));
          span.dataset.logprob = String(pending[pending.length - 1].logprob);
        }
        pending = [];
        out.appendChild(span);
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    const secs = (performance.now() - started) / 1000;
    setStatus(`generating… ${out.querySelectorAll(".tok").length} tokens, ${secs.toFixed(1)} s`);
  }

  try {
    const resp = await fetch("/v1/completions", {
      method: "POST", headers, body: JSON.stringify(buildRequest()), signal: running.signal,
    });
    if (!resp.ok) {
      let msg = resp.status + " " + resp.statusText;
      try { msg = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let done = false;
    while (!done) {
      const r = await reader.read();
      if (r.done) break;
      buf += decoder.decode(r.value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") { done = true; break; }
          onChunk(JSON.parse(data));
        }
      }
    }
    const secs = (performance.now() - started) / 1000;
    setStatus(`${tokens} tokens in ${secs.toFixed(2)} s (${(tokens / secs).toFixed(1)} tokens/s), finish reason: ${finish || "none"}`);
  } catch (err) {
    if (err.name === "AbortError") setStatus("stopped");
    else setStatus("error: " + err.message, true);
  } finally {
    running = null;
    $("generate").disabled = false;
    $("cancel").disabled = true;
  }
}
