package proxy

import (
	"math"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/respw"
)

// replyWriter appends replies in the session's protocol: RESP2 until the
// client says HELLO 3, then RESP3. The backend connections always speak
// RESP2; shape (shape.go) restores the RESP3 types a RESP3 client expects.
type replyWriter struct {
	b     []byte
	resp3 bool
}

func (w *replyWriter) simple(s string) { w.b = respw.Simple(w.b, s) }

// error writes an error reply; msg starts with its code ("ERR ...").
// Line breaks would end the reply early, so they become spaces.
func (w *replyWriter) error(msg string) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.b = respw.Error(w.b, msg)
}

func (w *replyWriter) int(n int64) { w.b = respw.Int(w.b, n) }

func (w *replyWriter) bulk(s string) { w.b = respw.Bulk(w.b, s) }

// null is a missing value: $-1 in RESP2.
func (w *replyWriter) null() {
	if w.resp3 {
		w.b = append(w.b, '_', '\r', '\n')
		return
	}
	w.b = append(w.b, '$', '-', '1', '\r', '\n')
}

// nullArray is a missing aggregate (EXEC that failed, BLPOP that timed
// out): *-1 in RESP2.
func (w *replyWriter) nullArray() {
	if w.resp3 {
		w.b = append(w.b, '_', '\r', '\n')
		return
	}
	w.b = append(w.b, '*', '-', '1', '\r', '\n')
}

func (w *replyWriter) header(c byte, n int) { w.b = respw.Header(w.b, c, n) }

func (w *replyWriter) array(n int) { w.header('*', n) }

// mapOf writes the header of n key-value pairs.
func (w *replyWriter) mapOf(n int) {
	if w.resp3 {
		w.header('%', n)
		return
	}
	w.header('*', 2*n)
}

func (w *replyWriter) setOf(n int) {
	if w.resp3 {
		w.header('~', n)
		return
	}
	w.header('*', n)
}

// push heads an out-of-band message (pub/sub): '>' in RESP3.
func (w *replyWriter) push(n int) {
	if w.resp3 {
		w.header('>', n)
		return
	}
	w.header('*', n)
}

func (w *replyWriter) double(f float64) {
	var s []byte
	switch {
	case math.IsInf(f, 1):
		s = []byte("inf")
	case math.IsInf(f, -1):
		s = []byte("-inf")
	case math.IsNaN(f):
		s = []byte("nan")
	default:
		s = strconv.AppendFloat(nil, f, 'g', 17, 64)
	}
	if w.resp3 {
		w.b = append(w.b, ',')
		w.b = append(w.b, s...)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.bulk(string(s))
}

// doubleText writes a score the backend sent as RESP2 text: RESP2 and
// RESP3 servers format it the same (%.17g), so the text passes through.
func (w *replyWriter) doubleText(s string) {
	if !w.resp3 {
		w.bulk(s)
		return
	}
	w.b = append(w.b, ',')
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

func (w *replyWriter) bool(v bool) {
	if w.resp3 {
		if v {
			w.b = append(w.b, "#t\r\n"...)
		} else {
			w.b = append(w.b, "#f\r\n"...)
		}
		return
	}
	if v {
		w.int(1)
	} else {
		w.int(0)
	}
}

// result writes a reply the client package returned, as it came. A call
// that got no reply at all (the deployment could not serve it before the
// retry budget ran out, the client is closed) becomes an ERR reply: the
// session's client sees a Redis error, never a dropped connection.
func (w *replyWriter) result(r client.Result) {
	switch r.Kind() {
	case client.KindString:
		s, _ := r.Text()
		w.simple(s)
	case client.KindError:
		w.error(r.Err().Error())
	case client.KindInt:
		n, _ := r.Int64()
		w.int(n)
	case client.KindBulk:
		s, _ := r.Text()
		w.bulk(s)
	case client.KindNil:
		w.null()
	case client.KindDouble:
		f, _ := r.Float64()
		w.double(f)
	case client.KindBool:
		v, _ := r.Bool()
		w.bool(v)
	case client.KindArray, client.KindMap, client.KindSet, client.KindPush:
		n := r.Len()
		switch r.Kind() {
		case client.KindMap:
			w.mapOf(n / 2)
		case client.KindSet:
			w.setOf(n)
		case client.KindPush:
			w.push(n)
		default:
			w.array(n)
		}
		for _, e := range r.All() {
			w.result(e)
		}
	default:
		w.failure(r.Err())
	}
}

// failure writes an error that is not a server's reply.
func (w *replyWriter) failure(err error) {
	if err == nil {
		err = errNoReply
	}
	w.error("ERR " + err.Error())
}
