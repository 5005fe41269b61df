package router

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

// RedirectKind tells MOVED from ASK.
type RedirectKind uint8

const (
	Moved RedirectKind = iota + 1
	Ask
)

func (k RedirectKind) String() string {
	if k == Ask {
		return "ASK"
	}
	return "MOVED"
}

// Redirect is one MOVED or ASK reply: the slot and where it now lives.
type Redirect struct {
	Kind RedirectKind
	Slot slots.Slot
	Addr string // host:port, with an empty or "?" host already replaced
	From string // the node that sent it
}

func (r Redirect) String() string {
	return fmt.Sprintf("%s %d %s (from %s)", r.Kind, r.Slot, r.Addr, r.From)
}

// ErrMalformedRedirect is wrapped by ParseRedirect's errors.
var ErrMalformedRedirect = errors.New("slotrouter: malformed redirect")

// ParseRedirect parses the text of a MOVED or ASK error reply ("MOVED 3999
// 127.0.0.1:6381"). from is the address of the node that replied: Redis 7
// sends ":port" under cluster-preferred-endpoint-type unknown-endpoint and
// "?:port" for a hostname-preferring cluster whose target has no hostname,
// and both mean "the host you are talking to, this port". The host is split
// from the port at the last colon because IPv6 addresses come unbracketed.
func ParseRedirect(msg, from string) (Redirect, error) {
	var r Redirect
	rest, ok := strings.CutPrefix(msg, "MOVED ")
	if ok {
		r.Kind = Moved
	} else if rest, ok = strings.CutPrefix(msg, "ASK "); ok {
		r.Kind = Ask
	} else {
		return r, fmt.Errorf("%w: %q", ErrMalformedRedirect, msg)
	}
	slotText, endpoint, ok := strings.Cut(rest, " ")
	if !ok {
		return r, fmt.Errorf("%w: no endpoint in %q", ErrMalformedRedirect, msg)
	}
	n, err := strconv.ParseUint(slotText, 10, 16)
	if err != nil || n >= slots.Count {
		return r, fmt.Errorf("%w: bad slot in %q", ErrMalformedRedirect, msg)
	}
	r.Slot = slots.Slot(n)
	i := strings.LastIndexByte(endpoint, ':')
	if i < 0 {
		return r, fmt.Errorf("%w: no port in %q", ErrMalformedRedirect, msg)
	}
	host, port := endpoint[:i], endpoint[i+1:]
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return r, fmt.Errorf("%w: bad port in %q", ErrMalformedRedirect, msg)
	}
	if host == "" || host == "?" {
		h, _, err := net.SplitHostPort(from)
		if err != nil {
			return r, fmt.Errorf("%w: %q needs the sender's host, and %q has none", ErrMalformedRedirect, msg, from)
		}
		host = h
	}
	r.Addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
	r.From = from
	return r, nil
}

// RedirectError reports a command that was redirected more often than the
// budget allows, usually a sign of nodes that disagree about a slot.
type RedirectError struct {
	Chain []Redirect
}

func (e *RedirectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slotrouter: too many redirects (%d):", len(e.Chain))
	for i, r := range e.Chain {
		if i > 0 {
			b.WriteString(" ->")
		}
		fmt.Fprintf(&b, " %s %d %s", r.Kind, r.Slot, r.Addr)
	}
	return b.String()
}
