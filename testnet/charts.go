package testnet

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	colSpacepanda = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colBaseline   = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colFault      = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// Charts writes the run's charts into dir, each as PNG and SVG: the
// latency CDF (with the baseline's), deliveries over time with the faults
// marked, and the convergence time after each fault.
func Charts(dir string, rep *Report, recs []Record) error {
	charts := []struct {
		name string
		make func(*Report, []Record) (*plot.Plot, error)
	}{
		{"latency-cdf", latencyCDF},
		{"delivery", deliveryOverTime},
		{"convergence", convergenceBars},
	}
	for _, c := range charts {
		p, err := c.make(rep, recs)
		if err != nil {
			return fmt.Errorf("testnet: chart %s: %w", c.name, err)
		}
		if p == nil {
			continue
		}
		for _, ext := range []string{"png", "svg"} {
			if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, c.name+"."+ext)); err != nil {
				return fmt.Errorf("testnet: chart %s: %w", c.name, err)
			}
		}
	}
	return nil
}

func runDeliveries(recs []Record, run string) []delivery {
	return firstDeliveries(recs, run, sentOf(recs, run), map[string]int{})
}

func loadStart(recs []Record, run string) int64 {
	for _, r := range recs {
		if r.Ev == EvPhase && r.Kind == "load" && r.Run == run {
			return r.T
		}
	}
	return 0
}

func latencyCDF(rep *Report, recs []Record) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: end-to-end latency (CDF)", rep.Scenario)
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of deliveries"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.TickerFunc(logTicks)
	p.Legend.Top = false
	p.Legend.Left = false
	drawn := false
	for _, run := range []struct {
		name, label string
		col         color.Color
	}{{RunSpacepanda, "spacepanda", colSpacepanda}, {RunBaseline, "raw gossipsub", colBaseline}} {
		ds := runDeliveries(recs, run.name)
		if len(ds) == 0 {
			continue
		}
		lat := make([]float64, len(ds))
		for i, d := range ds {
			lat[i] = math.Max(d.ms, 0.01)
		}
		sort.Float64s(lat)
		xys := make(plotter.XYs, 0, min(len(lat), 2000)+1)
		step := max(1, len(lat)/2000)
		for i := 0; i < len(lat); i += step {
			xys = append(xys, plotter.XY{X: lat[i], Y: float64(i+1) / float64(len(lat))})
		}
		xys = append(xys, plotter.XY{X: lat[len(lat)-1], Y: 1})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = run.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(run.label, l)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	return p, nil
}

func deliveryOverTime(rep *Report, recs []Record) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: deliveries over time, faults marked", rep.Scenario)
	p.X.Label.Text = "seconds since the load started"
	p.Y.Label.Text = "messages delivered (cumulative)"
	p.Legend.Top = true
	p.Legend.Left = true
	ymax := 0.0
	drawn := false
	for _, run := range []struct {
		name, label string
		col         color.Color
	}{{RunSpacepanda, "spacepanda", colSpacepanda}, {RunBaseline, "raw gossipsub", colBaseline}} {
		ds := runDeliveries(recs, run.name)
		if len(ds) == 0 {
			continue
		}
		t0 := loadStart(recs, run.name)
		sort.Slice(ds, func(i, j int) bool { return ds[i].t < ds[j].t })
		xys := plotter.XYs{{X: 0, Y: 0}}
		step := max(1, len(ds)/2000)
		for i := 0; i < len(ds); i += step {
			xys = append(xys, plotter.XY{X: float64(ds[i].t-t0) / 1e9, Y: float64(i + 1)})
		}
		xys = append(xys, plotter.XY{X: float64(ds[len(ds)-1].t-t0) / 1e9, Y: float64(len(ds))})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = run.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(run.label, l)
		ymax = math.Max(ymax, float64(len(ds)))
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	if len(rep.Faults) > 0 {
		var labels plotter.XYLabels
		for _, f := range rep.Faults {
			x := f.AtMs / 1000
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax}})
			if err != nil {
				return nil, err
			}
			l.Color = colFault
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			labels.XYs = append(labels.XYs, plotter.XY{X: x, Y: ymax * (0.95 - 0.07*float64(f.Index%4))})
			labels.Labels = append(labels.Labels, " "+f.Kind)
		}
		lb, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Color = colFault
		}
		p.Add(lb)
	}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p, nil
}

func convergenceBars(rep *Report, _ []Record) (*plot.Plot, error) {
	if len(rep.Convergence) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: time to converge after each fault (one epoch, one authenticator)", rep.Scenario)
	p.Y.Label.Text = "seconds (red: gave up waiting)"
	p.Y.Min = 0
	var ok, bad plotter.Values
	var names []string
	for _, c := range rep.Convergence {
		name := c.Channel + " end"
		if c.Fault >= 0 {
			name = fmt.Sprintf("%s #%d %s", c.Channel, c.Fault, c.Kind)
		}
		names = append(names, name)
		if c.Converged {
			ok, bad = append(ok, c.Ms/1000), append(bad, 0)
		} else {
			ok, bad = append(ok, 0), append(bad, c.Ms/1000)
		}
	}
	w := vg.Points(math.Max(4, math.Min(30, 400/float64(len(names)))))
	b1, err := plotter.NewBarChart(ok, w)
	if err != nil {
		return nil, err
	}
	b1.Color = colSpacepanda
	b1.LineStyle.Width = 0
	b2, err := plotter.NewBarChart(bad, w)
	if err != nil {
		return nil, err
	}
	b2.Color = colFault
	b2.LineStyle.Width = 0
	p.Add(b1, b2)
	if len(names) <= 24 {
		p.NominalX(names...)
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = -1
	}
	return p, nil
}

// logTicks labels a log axis at 1, 2 and 5 times each power of ten: the
// powers alone leave a latency range such as 10..60 ms unlabelled.
func logTicks(lo, hi float64) []plot.Tick {
	if hi < 4*lo {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	marks := []float64{1, 2, 5}
	if hi < 30*lo {
		marks = []float64{1, 1.5, 2, 3, 5, 7}
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(math.Max(lo, 1e-3))); math.Pow(10, e) <= hi; e++ {
		for _, m := range marks {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}
