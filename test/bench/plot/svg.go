package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// Chart geometry, in pixels.
const (
	width, height = 760, 460
	left, right   = 78, 560 // the plot area's x range; the legend is right of it
	top, bottom   = 62, 400 // its y range
	legendX       = 580
)

// A style is a series' colour and dashes ("" for a solid line).
type style struct{ color, dash string }

// A chart is one picture: lines of series over two axes.
type chart struct {
	title, subtitle string
	x, y            *axis
	series          []series
	styles          map[string]style // by series key
}

// fallback colours for series without a style, in order.
var fallback = []string{"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

func (c *chart) style(i int) style {
	if s, ok := c.styles[c.series[i].key]; ok {
		return s
	}
	return style{color: fallback[i%len(fallback)]}
}

// svg draws c. The output depends only on c: numbers are written with
// fixed precision and everything is drawn in series and tick order.
func (c *chart) svg() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	p(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(c.title))
	p(`<text x="%d" y="44" fill="#555">%s</text>`+"\n", left, esc(c.subtitle))

	// Grid and ticks.
	p(`<g stroke="#ddd" stroke-width="1">` + "\n")
	for _, t := range c.x.ticks {
		x := c.x.pos(t.v)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", x, top, x, bottom)
	}
	for _, t := range c.y.ticks {
		y := c.y.pos(t.v)
		if t.label == "" {
			p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", left, y, right, y)
		} else {
			p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`+"\n", left, y, right, y)
		}
	}
	p("</g>\n")
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, right-left, bottom-top)
	p(`<g text-anchor="middle">` + "\n")
	for _, t := range c.x.ticks {
		if t.label != "" {
			p(`<text x="%.1f" y="%d">%s</text>`+"\n", c.x.pos(t.v), bottom+18, esc(t.label))
		}
	}
	p(`<text x="%d" y="%d">%s</text>`+"\n", (left+right)/2, bottom+42, esc(c.x.label))
	p("</g>\n")
	p(`<g text-anchor="end">` + "\n")
	for _, t := range c.y.ticks {
		if t.label != "" {
			p(`<text x="%d" y="%.1f">%s</text>`+"\n", left-6, c.y.pos(t.v)+4, esc(t.label))
		}
	}
	p("</g>\n")
	p(`<text transform="translate(%d %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", 22, (top+bottom)/2, esc(c.y.label))

	// One path per series, then its markers, then the legend.
	for i, s := range c.series {
		st := c.style(i)
		var d strings.Builder
		for j, pt := range s.points {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, c.x.pos(pt.x), c.y.pos(pt.y))
		}
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		p(`<path d="%s" fill="none" stroke="%s" stroke-width="2"%s><title>%s</title></path>`+"\n", strings.TrimSpace(d.String()), st.color, dash, esc(s.name))
		p(`<g fill="%s">`, st.color)
		for _, pt := range s.points {
			p(`<circle cx="%.1f" cy="%.1f" r="2.5"/>`, c.x.pos(pt.x), c.y.pos(pt.y))
		}
		p("</g>\n")
		y := top + 10 + 22*i
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", legendX, y, legendX+28, y, st.color, dash)
		p(`<text x="%d" y="%d">%s</text>`+"\n", legendX+36, y+4, esc(s.name))
	}
	p("</svg>\n")
	return b.Bytes()
}

// esc escapes s for XML text and attributes.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
