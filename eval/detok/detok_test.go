package detok

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
)

func TestWikiText(t *testing.T) {
	cases := []struct{ in, want string }{
		{" = Robert <unk> = \n", "= Robert <unk> =\n"},
		{" = = Career = = \n", "== Career ==\n"},
		{" = = = 2000 – 2005 = = = \n", "=== 2000 – 2005 ===\n"},
		{" \n", "\n"},
		{" He had a guest @-@ starring role , in 2000 . \n", "He had a guest-starring role, in 2000.\n"},
		{" 1 @,@ 000 people and 2 @.@ 5 m ; ok : yes ! no ? \n", "1,000 people and 2.5 m; ok: yes! no?\n"},
		{` role as " Craig " in the episode " Teddy 's Story " of `, `role as "Craig" in the episode "Teddy's Story" of`},
		{" it ( the film ) was [ 1 ] { x } 50 % \n", "it (the film) was [1] {x} 50%\n"},
		{" I don 't know , they 're here and we 've seen I 'm sure \n", "I don't know, they're here and we've seen I'm sure\n"},
		{" the Jones ' house and ' Kiss ' by the band \n", "the Jones' house and 'Kiss' by the band\n"},
		{" cost US $ 2 @.@ 5 million \n", "cost US $2.5 million\n"},
		{" = not a heading = = \n", "= not a heading = =\n"},
	}
	for _, c := range cases {
		if got := WikiText(c.in); got != c.want {
			t.Errorf("WikiText(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestPTB(t *testing.T) {
	in := " no it was n't black monday \n the company 's $ N million unit \n mgm\\/ua and <unk> investors ' shares \n"
	want := "no it wasn't black monday\nthe company's $N million unit\nmgm/ua and <unk> investors' shares\n"
	if got := PTB(in); got != want {
		t.Errorf("PTB:\n got %q\nwant %q", got, want)
	}
}

func TestOneBWAndCBTQuotes(t *testing.T) {
	in := `He said " it 's fine . " Then `
	if got, want := OneBW(in), `He said "it's fine." Then`; got != want {
		t.Errorf("OneBW: got %q, want %q", got, want)
	}
	in = "`` Oh , dear , '' said the king ."
	if got, want := Plain(in), `"Oh, dear," said the king.`; got != want {
		t.Errorf("Plain: got %q, want %q", got, want)
	}
}

func TestJoinOffsets(t *testing.T) {
	toks := []string{"``", "Oh", ",", "king", ",", "''", "said", "he", "."}
	out, starts := Join(toks)
	if out != `"Oh, king," said he.` {
		t.Fatalf("Join = %q", out)
	}
	for i, tok := range toks {
		r := strings.NewReplacer("``", `"`, "''", `"`).Replace(tok)
		if !strings.HasPrefix(out[starts[i]:], r) {
			t.Errorf("token %d %q: text at offset %d is %q", i, tok, starts[i], out[starts[i]:])
		}
	}
}

func TestLambada(t *testing.T) {
	in := "\u201cHe said,\u201d she said. \u2018Fine\u2019 "
	if got, want := Lambada(in), "\n\"He said,\" she said. \u2018Fine\u2019"; got != want {
		t.Errorf("Lambada: got %q, want %q", got, want)
	}
}

// TestRealFiles checks properties that must hold on the whole benchmark
// files: no WikiText markers survive, line count is kept, and only
// whitespace and escapes change (the non-space characters are the same,
// apart from the markers' @ and the escapes' backslashes).
func TestRealFiles(t *testing.T) {
	for _, f := range []struct {
		rel   []string
		detok func(string) string
	}{
		{[]string{"data", "wikitext", "wikitext-2.wiki.test.tokens"}, WikiText},
		{[]string{"data", "ptb", "ptb.test.txt"}, PTB},
	} {
		path := fixture.Path(t, f.rel...)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		in := string(raw)
		out := f.detok(in)
		name := filepath.Base(path)
		if strings.Count(out, "\n") != strings.Count(in, "\n") {
			t.Errorf("%s: %d lines in, %d out", name, strings.Count(in, "\n"), strings.Count(out, "\n"))
		}
		for _, m := range []string{"@-@", "@,@", "@.@", " , ", " n't ", `\/`} {
			if strings.Contains(out, m) {
				t.Errorf("%s: %q left in the output", name, m)
			}
		}
		strip := func(s string) string {
			s = strings.NewReplacer("@-@", "-", "@,@", ",", "@.@", ".", `\/`, "/", `\*`, "*").Replace(s)
			return strings.Join(strings.Fields(s), "")
		}
		if strip(in) != strip(out) {
			t.Errorf("%s: detokenizing changed more than whitespace", name)
		}
	}
}
