package train

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ValPoint is a validation loss measured before the update of Step.
type ValPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// History is a run's losses, kept for the loss curve.
type History struct {
	Train []float64  `json:"train"` // Train[k] is step k's loss
	Val   []ValPoint `json:"val"`
}

// PlotLoss writes the training and validation loss curves as a PNG at
// path, atomically.
func PlotLoss(path string, h History) error {
	p := plot.New()
	p.Title.Text = "GPT-2 training loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats/token)"
	p.Add(plotter.NewGrid())
	if len(h.Train) > 0 {
		pts := make(plotter.XYs, len(h.Train))
		for i, l := range h.Train {
			pts[i] = plotter.XY{X: float64(i), Y: l}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot loss: %w", err)
		}
		line.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
		p.Add(line)
		p.Legend.Add("train", line)
	}
	if len(h.Val) > 0 {
		pts := make(plotter.XYs, len(h.Val))
		for i, v := range h.Val {
			pts[i] = plotter.XY{X: float64(v.Step), Y: v.Loss}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot loss: %w", err)
		}
		line.Color = color.RGBA{R: 255, G: 127, B: 14, A: 255}
		points.Color = line.Color
		p.Add(line, points)
		p.Legend.Add("val", line, points)
	}
	p.Legend.Top = true
	w, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot loss: %w", err)
	}
	return writeFileAtomic(path, func(f *os.File) error {
		_, err := w.WriteTo(f)
		return err
	})
}

// writeFileAtomic writes path through a temporary file in the same
// directory, synced before it is renamed into place.
func writeFileAtomic(path string, write func(f *os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o644) // CreateTemp makes files private; these are for sharing
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes renames in dir durable. Some systems cannot sync
// directories; that is not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	d.Sync()
	return nil
}
