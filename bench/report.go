package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
)

const self = "slotrouter"

// cell is the median of several rounds of one client on one row.
type cell struct {
	sample
	ok bool
}

// results holds everything one run measured.
type results struct {
	header     []string // machine, versions, settings
	clients    []string
	workloads  []string
	goroutines []int
	cells      map[string]map[string]cell // row key -> client -> median
	ceilings   []ceiling
	proxy      []proxyResult
	failover   []failoverResult
	setup      map[string]string // client -> connection summary
}

func rowKey(w string, g int) string { return fmt.Sprintf("%s/%d", w, g) }

// median of each field independently across rounds.
func medianSample(ss []sample) sample {
	pick := func(f func(sample) float64) float64 {
		v := make([]float64, 0, len(ss))
		for _, s := range ss {
			v = append(v, f(s))
		}
		return median(v)
	}
	out := sample{
		ops:       pick(func(s sample) float64 { return s.ops }),
		p50:       time.Duration(pick(func(s sample) float64 { return float64(s.p50) })),
		p99:       time.Duration(pick(func(s sample) float64 { return float64(s.p99) })),
		p999:      time.Duration(pick(func(s sample) float64 { return float64(s.p999) })),
		allocs:    pick(func(s sample) float64 { return s.allocs }),
		bytes:     pick(func(s sample) float64 { return s.bytes }),
		rssMiB:    pick(func(s sample) float64 { return s.rssMiB }),
		connsOpen: int64(pick(func(s sample) float64 { return float64(s.connsOpen) })),
	}
	for _, s := range ss {
		out.errors += s.errors
		if out.firstError == "" {
			out.firstError = s.firstError
		}
	}
	return out
}

// bestPeer is the highest throughput among the other clients of a row.
func (r *results) bestPeer(row string) (string, float64) {
	name, best := "", 0.0
	for _, c := range r.clients {
		if c == self {
			continue
		}
		if x := r.cells[row][c]; x.ok && x.ops > best {
			name, best = c, x.ops
		}
	}
	return name, best
}

func kops(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# slotrouter vs rueidis vs go-redis\n\n")
	for _, h := range r.header {
		w("- %s\n", h)
	}
	w("\n## Throughput (commands/s; in parentheses: ratio to the best peer of the row)\n\n")
	w("PIPE100 counts commands (100 per pipeline); MGET100 counts keys (slotrouter: one MGET of 100 keys over all slots; the peers: their batch of 100 GETs, as neither splits a cross-slot MGET); go-redis-auto has neither row (it batches implicitly).\n\n")
	w("| workload | goroutines |")
	for _, c := range r.clients {
		w(" %s |", c)
	}
	w(" best peer | redis-benchmark |\n|---|---|")
	for range r.clients {
		w("---|")
	}
	w("---|---|\n")
	for _, wl := range r.workloads {
		for _, g := range r.goroutines {
			row := rowKey(wl, g)
			peer, best := r.bestPeer(row)
			w("| %s | %d |", wl, g)
			for _, c := range r.clients {
				x := r.cells[row][c]
				if !x.ok {
					w(" n/a |")
					continue
				}
				ratio := ""
				if best > 0 {
					ratio = fmt.Sprintf(" (%.2fx)", x.ops/best)
				}
				if c == self {
					w(" **%s%s** |", kops(x.ops), ratio)
				} else {
					w(" %s%s |", kops(x.ops), ratio)
				}
			}
			w(" %s | %s |\n", peer, r.ceilingFor(wl, g))
		}
	}
	w("\n## Latency per call (p50 / p99 / p99.9)\n\n")
	r.perClient(w, func(x cell) string {
		return fmt.Sprintf("%s / %s / %s", dur(x.p50), dur(x.p99), dur(x.p999))
	})
	w("\n## Cost per command (allocs/op, bytes/op; connections opened during the run; process RSS after it)\n\n")
	w("Allocations are runtime.MemStats deltas over the measured window divided by commands, so they include the\n")
	w("client's background goroutines. RSS is the whole benchmark process (all clients live in it).\n\n")
	r.perClient(w, func(x cell) string {
		e := ""
		if x.errors > 0 {
			e = fmt.Sprintf(", **%d errors**", x.errors)
		}
		return fmt.Sprintf("%.2f / %.0f B, %d conns, %.0f MiB%s", x.allocs, x.bytes, x.connsOpen, x.rssMiB, e)
	})
	if len(r.setup) > 0 {
		w("\nConnections at start-up (accepted by the servers while the client connected and filled):\n\n")
		for _, c := range r.clients {
			if s, ok := r.setup[c]; ok {
				w("- %s: %s\n", c, s)
			}
		}
	}
	if len(r.ceilings) > 0 {
		w("\n## Ceiling: redis-benchmark --cluster (C, 16-byte values)\n\n| test | connections | pipeline | ops/s | p50 | p99 |\n|---|---|---|---|---|---|\n")
		for _, c := range r.ceilings {
			w("| %s | %d | %d | %s | %s | %s |\n", c.test, c.clients, c.pipeline, kops(c.ops), dur(c.p50), dur(c.p99))
		}
	}
	if len(r.proxy) > 0 {
		w("\n## slotrouter's proxy: redis-benchmark through it (50 connections) and against the cluster directly\n\n%s", proxyTable(r.proxy))
	}
	if len(r.failover) > 0 {
		w("\n## Failover: SIGKILL of one master under %d writers per shard (fresh cluster per client)\n\n", writersPerShard)
		w("| client | first write on failed shard after kill | errors surfaced | longest gap on other shards | acked keys | acked writes missing | errors seen |\n|---|---|---|---|---|---|---|\n")
		for _, f := range r.failover {
			if f.err != nil {
				w("| %s | round failed: %s | | | | | |\n", f.client, html.EscapeString(f.err.Error()))
				continue
			}
			resume := "not within the window"
			if f.resumed {
				resume = dur(f.resume)
			}
			w("| %s | %s | %d | %s | %d | %d | %s |\n", f.client, resume, f.errors, dur(f.maxGapOther), f.acked, f.missing,
				html.EscapeString(strings.Join(f.errorKinds, "; ")))
		}
	}
	return b.String()
}

func (r *results) ceilingFor(wl string, g int) string {
	test := wl
	if wl != "GET" && wl != "SET" {
		return "-"
	}
	for _, c := range r.ceilings {
		if c.test == test && c.clients == g && c.pipeline == 1 {
			return kops(c.ops)
		}
	}
	return "-"
}

var palette = map[string]string{
	"slotrouter":    "#d62728",
	"rueidis":       "#1f77b4",
	"go-redis":      "#2ca02c",
	"go-redis-auto": "#9467bd",

	"rueidis-20us":        "#17becf",
	"rueidis-100us":       "#aec7e8",
	"go-redis-pool":       "#98df8a",
	"go-redis-auto-100us": "#c5b0d5",
}

// svg draws throughput against goroutines, one panel per workload, one line
// per client; x is evenly spaced over the goroutine levels.
func (r *results) svg(title string) string {
	const pw, ph, pad, top = 300.0, 220.0, 50.0, 60.0
	n := len(r.workloads)
	width := pad + float64(n)*(pw+pad)
	height := top + ph + 90
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", pad, html.EscapeString(title))
	for i, wl := range r.workloads {
		x0 := pad + float64(i)*(pw+pad)
		maxV := 0.0
		for _, g := range r.goroutines {
			for _, c := range r.clients {
				if x := r.cells[rowKey(wl, g)][c]; x.ok {
					maxV = math.Max(maxV, x.ops)
				}
			}
		}
		if maxV == 0 {
			continue
		}
		maxV = niceCeil(maxV)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", x0, top-10, html.EscapeString(wl))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", x0, top, pw, ph)
		for t := 0; t <= 4; t++ {
			v := maxV * float64(t) / 4
			y := top + ph - ph*float64(t)/4
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+pw, y)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" font-size="10">%s</text>`+"\n", x0-4, y+3, kops(v))
		}
		xs := func(j int) float64 {
			if len(r.goroutines) == 1 {
				return x0 + pw/2
			}
			return x0 + 20 + (pw-40)*float64(j)/float64(len(r.goroutines)-1)
		}
		for j, g := range r.goroutines {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" font-size="10">%d</text>`+"\n", xs(j), top+ph+14, g)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-size="10">goroutines</text>`+"\n", x0+pw/2, top+ph+28)
		for _, c := range r.clients {
			var pts []string
			for j, g := range r.goroutines {
				if x := r.cells[rowKey(wl, g)][c]; x.ok {
					y := top + ph - ph*x.ops/maxV
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(j), y))
				}
			}
			if len(pts) == 0 {
				continue
			}
			col := palette[c]
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], col)
			}
		}
	}
	ly := top + ph + 55
	for i, c := range r.clients {
		x := pad + float64(i)*150
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="14" height="4" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			x, ly-4, palette[c], x+20, ly, html.EscapeString(c))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="#555">commands/s (median of rounds); PIPE100 counts each of the 100 commands</text>`+"\n", pad, ly+20)
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// perClient writes one table with a row per workload and goroutine count
// and a column per client, each cell formatted by cellText.
func (r *results) perClient(w func(string, ...any), cellText func(cell) string) {
	w("| workload | goroutines |")
	for _, c := range r.clients {
		w(" %s |", c)
	}
	w("\n|---|---|")
	for range r.clients {
		w("---|")
	}
	w("\n")
	for _, wl := range r.workloads {
		for _, g := range r.goroutines {
			row := rowKey(wl, g)
			w("| %s | %d |", wl, g)
			for _, c := range r.clients {
				x := r.cells[row][c]
				if !x.ok {
					w(" n/a |")
					continue
				}
				w(" %s |", cellText(x))
			}
			w("\n")
		}
	}
}

// tableHead writes a Markdown table's head: the lead columns, the per
// columns once for each name ("{}" standing for it), then the tail ones.
func tableHead(b *strings.Builder, lead, names, per, tail []string) {
	cols := slices.Clone(lead)
	for _, n := range names {
		for _, p := range per {
			cols = append(cols, strings.ReplaceAll(p, "{}", n))
		}
	}
	cols = append(cols, tail...)
	b.WriteString("| " + strings.Join(cols, " | ") + " |\n|" + strings.Repeat("---|", len(cols)) + "\n")
}
