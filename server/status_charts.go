package server

import (
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/topkeys"
)

// The status page's charts: decisions per second of each command and
// policy over the last minutes, drawn as inline SVG polylines on the
// server, so they need neither JavaScript nor a chart library.

// Chart geometry, in SVG user units.
const (
	chartWidth  = 320
	chartHeight = 90
	chartPad    = 4
)

// statusChart is one source's rates, one value per bucket that is over
// (oldest first): the bucket still filling is left out, its rate not yet
// known.
type statusChart struct {
	Title   string    `json:"title"` // "command throttle", "policy api", "all commands and policies"
	Allowed []float64 `json:"allowed_per_second"`
	Limited []float64 `json:"limited_per_second"`
	// For the SVG: the polylines' points and the y axis's top.
	AllowedPoints string  `json:"-"`
	LimitedPoints string  `json:"-"`
	Top           float64 `json:"-"`
	Width         int     `json:"-"`
	Height        int     `json:"-"`
	// The latest rates, for the caption.
	NowAllowed, NowLimited float64 `json:"-"`
}

// charts turns the recorder's per-bucket counts into rate charts: one for
// all sources together, then one per source, commands first.
func charts(r topkeys.Rates) []statusChart {
	if len(r.Series) == 0 {
		return nil
	}
	n := len(r.Series[0].Allowed) - 1 // without the current bucket
	width := r.Width.Seconds()
	perSecond := func(counts []uint64) []float64 {
		out := make([]float64, n)
		for i, c := range counts[:n] {
			out[i] = float64(c) / width
		}
		return out
	}
	all := statusChart{Title: "all commands and policies", Allowed: make([]float64, n), Limited: make([]float64, n)}
	var out []statusChart
	for _, s := range r.Series {
		c := statusChart{Title: s.Kind.String() + " " + s.Name, Allowed: perSecond(s.Allowed), Limited: perSecond(s.Limited)}
		for i := range n {
			all.Allowed[i] += c.Allowed[i]
			all.Limited[i] += c.Limited[i]
		}
		out = append(out, c)
	}
	out = append([]statusChart{all}, out...)
	for i := range out {
		out[i].draw()
	}
	return out
}

// draw computes the polylines, scaled so that the larger series fills the
// height.
func (c *statusChart) draw() {
	c.Width, c.Height = chartWidth, chartHeight
	c.Top = 1
	for i := range c.Allowed {
		c.Top = max(c.Top, c.Allowed[i], c.Limited[i])
	}
	c.AllowedPoints, c.LimitedPoints = c.points(c.Allowed), c.points(c.Limited)
	if n := len(c.Allowed); n > 0 {
		c.NowAllowed, c.NowLimited = c.Allowed[n-1], c.Limited[n-1]
	}
}

func (c *statusChart) points(v []float64) string {
	var b strings.Builder
	step := float64(chartWidth-2*chartPad) / float64(max(len(v)-1, 1))
	for i, y := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(chartPad+float64(i)*step, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(chartHeight-chartPad-y/c.Top*(chartHeight-2*chartPad), 'f', 1, 64))
	}
	return b.String()
}
