package tokenizer_test

import (
	"fmt"
	"strings"

	"github.com/gpt2go/gpt2/tokenizer"
)

func Example() {
	tok := tokenizer.Default()
	ids := tok.Encode("Hello world, it's GPT-2.")
	fmt.Println(ids)
	text, err := tok.Decode(ids)
	fmt.Printf("%q %v\n", text, err)
	// Output:
	// [15496 995 11 340 338 402 11571 12 17 13]
	// "Hello world, it's GPT-2." <nil>
}

func ExampleTokenizer_EncodeSpecial() {
	tok := tokenizer.Default()
	fmt.Println(tok.Encode("<|endoftext|>"))
	fmt.Println(tok.EncodeSpecial("<|endoftext|>"))
	// Output:
	// [27 91 437 1659 5239 91 29]
	// [50256]
}

func ExampleStreamDecoder() {
	tok := tokenizer.Default()
	ids := tok.Encode("ok 🤗")
	d := tok.NewStreamDecoder()
	var parts []string
	for _, id := range ids {
		s, err := d.Add(id)
		if err != nil {
			panic(err)
		}
		parts = append(parts, s)
	}
	parts = append(parts, d.Flush())
	fmt.Printf("%q\n", strings.Join(parts, "|"))
	// Output:
	// "ok| ||🤗|"
}
