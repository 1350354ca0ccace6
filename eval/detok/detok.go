// Package detok undoes the tokenization of language-modelling benchmarks, so
// that a model trained on raw web text is scored on text in the form it saw
// in training. The GPT-2 paper calls these "invertible de-tokenizers": they
// only move whitespace and undo escapes, so the log-probability of the
// detokenized text is still a fair score for the benchmark.
//
// Every benchmark here stores text as space-separated tokens, one sentence
// or paragraph per line. The rules, applied line by line to the tokens of a
// line (leading and trailing spaces of a line are dropped, line breaks kept):
//
//   - No space before , . : ; ! ? ... ) ] } % or a contraction
//     ('s 't 're 've 'm 'll 'd n't, any case): "don 't" and "do n't" become
//     "don't", "Teddy 's" becomes "Teddy's".
//   - No space after ( [ { $ #: "$ N" becomes "$N".
//   - WikiText's number separators @-@ @,@ @.@ become - , . with no space on
//     either side: "1 @,@ 000" becomes "1,000".
//   - Double quotes pair up within a line: the opening one sticks to the
//     next token, the closing one to the previous. CBT writes them as a
//     doubled backquote (opening) and a doubled apostrophe (closing).
//   - A lone ' closes an open single quote; otherwise after a word ending in
//     s it is a plural possessive ("Jones '" becomes "Jones'"); otherwise it
//     opens a single quote.
//   - Penn Treebank escapes \/ and \* become / and *.
//
// PTB's N (numbers) and <unk> stay as literal text, as in the paper.
package detok

import (
	"strings"
)

// WikiText detokenizes a WikiText file (wiki.test.tokens): the rules above,
// plus headings " = = History = = " become "== History ==".
func WikiText(s string) string {
	return lines(s, func(toks []string) string {
		if h, ok := heading(toks); ok {
			return h
		}
		out, _ := Join(toks)
		return out
	})
}

// PTB detokenizes Mikolov's Penn Treebank files (ptb.test.txt).
func PTB(s string) string { return Plain(s) }

// OneBW detokenizes One Billion Word Benchmark files
// (news.en.heldout-00000-of-00050).
func OneBW(s string) string { return Plain(s) }

// Plain applies the rules in the package comment to each line of s.
func Plain(s string) string {
	return lines(s, func(toks []string) string {
		out, _ := Join(toks)
		return out
	})
}

// Lambada is OpenAI's preprocessing of its LAMBADA test set, as described by
// its authors (openai/gpt-2 issue #131): curly double quotes become straight
// ones, surrounding whitespace is trimmed, and a newline is put in front.
func Lambada(s string) string {
	s = strings.NewReplacer("\u201c", `"`, "\u201d", `"`).Replace(s)
	return "\n" + strings.TrimSpace(s)
}

// lines applies fn to the tokens of each line of s and joins the results
// with the original line breaks.
func lines(s string, fn func([]string) string) string {
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = fn(strings.Fields(l))
	}
	return strings.Join(ls, "\n")
}

// heading recognises a WikiText heading line, "= = Title = =", and returns
// it in wiki markup, "== Title ==".
func heading(toks []string) (string, bool) {
	k := 0
	for k < len(toks) && toks[k] == "=" {
		k++
	}
	if k == 0 || len(toks) <= 2*k {
		return "", false
	}
	for _, t := range toks[len(toks)-k:] {
		if t != "=" {
			return "", false
		}
	}
	if toks[len(toks)-k-1] == "=" { // more "=" at the end than at the start
		return "", false
	}
	mid, _ := Join(toks[k : len(toks)-k])
	eq := strings.Repeat("=", k)
	return eq + " " + mid + " " + eq, true
}

// Spacing classes of a token.
const (
	spaced      = iota
	attachLeft  // no space before
	attachRight // no space after
	attachBoth  // neither
)

var leftPunct = map[string]bool{
	",": true, ".": true, ":": true, ";": true, "!": true, "?": true,
	"...": true, ")": true, "]": true, "}": true, "%": true,
}

var rightPunct = map[string]bool{"(": true, "[": true, "{": true, "$": true, "#": true}

var contractions = map[string]bool{
	"'s": true, "'t": true, "'re": true, "'ve": true, "'m": true, "'ll": true, "'d": true, "n't": true,
}

var markers = map[string]string{"@-@": "-", "@,@": ",", "@.@": "."}

var escapes = strings.NewReplacer(`\/`, "/", `\*`, "*")

// Join joins the tokens of one line into text by the rules in the package
// comment. It also returns the byte offset in the text at which each token's
// rendering starts, so that callers can split the text at a token.
func Join(toks []string) (string, []int) {
	var b strings.Builder
	starts := make([]int, len(toks))
	noSpace := true // at the start of the line, or after an opening token
	inDouble, inSingle := false, false
	for i, t := range toks {
		text, class := t, spaced
		switch {
		case markers[t] != "":
			text, class = markers[t], attachBoth
		case t == `"` || t == "``" || t == "''":
			text = `"`
			// `` always opens and '' always closes; a plain " alternates.
			open := t == "``" || (t == `"` && !inDouble)
			if open {
				class, inDouble = attachRight, true
			} else {
				class, inDouble = attachLeft, false
			}
		case t == "'":
			switch {
			case inSingle:
				class, inSingle = attachLeft, false
			case i > 0 && strings.HasSuffix(strings.ToLower(toks[i-1]), "s"):
				class = attachLeft
			default:
				class, inSingle = attachRight, true
			}
		case leftPunct[t] || contractions[strings.ToLower(t)]:
			class = attachLeft
		case rightPunct[t]:
			class = attachRight
		default:
			text = escapes.Replace(t)
		}
		if !noSpace && class != attachLeft && class != attachBoth {
			b.WriteByte(' ')
		}
		starts[i] = b.Len()
		b.WriteString(text)
		noSpace = class == attachRight || class == attachBoth
	}
	return b.String(), starts
}
