package defaultmodel_test

import (
	"testing"

	"github.com/gpt2go/gpt2/defaultmodel"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/sample"
)

// heldOut is from A Christmas Carol, one of the two books held out of the
// default model's training data.
const heldOut = `Marley was dead: to begin with. There is no doubt whatever about that. The register of his burial was signed by the clergyman, the clerk, the undertaker, and the chief mourner. Scrooge signed it: and Scrooge's name was good upon 'Change, for anything he chose to put his hand to.`

func TestLoad(t *testing.T) {
	m, tok, err := defaultmodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := model.Config{NLayer: 6, NHead: 8, NEmbd: 256, NCtx: 256, VocabSize: 50257, LayerNormEps: 1e-5}
	if m.Config != want {
		t.Fatalf("config %+v, want %+v", m.Config, want)
	}
	// The model must have learned English: its loss on held-out prose is
	// far below the uniform distribution's ln 50257 = 10.8 nats.
	ids := tok.Encode(heldOut)
	logits, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids, All: true}})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	var nll float64
	for i := 0; i+1 < len(ids); i++ {
		nll -= sample.Logprob(logits[0][i*V:(i+1)*V], ids[i+1])
	}
	mean := nll / float64(len(ids)-1)
	t.Logf("held-out loss %.3f nats/token over %d tokens", mean, len(ids)-1)
	if mean > maxHeldOutLoss {
		t.Errorf("held-out loss %.3f nats/token, want at most %.1f", mean, maxHeldOutLoss)
	}
}

// maxHeldOutLoss is a bound well above the shipped model's measured
// held-out loss (see TRAINING.md), and far below an untrained model's.
const maxHeldOutLoss = 6.5
