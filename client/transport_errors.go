package client

import (
	"errors"
	"os"
	"strconv"
)

// ArgError reports a command argument of a type the encoder does not accept
// (nil, structs, maps, ...). Index is the argument's position (0 is the
// command name); -1 means the command was empty.
type ArgError struct {
	Index int
	Type  string
}

func (e *ArgError) Error() string {
	if e.Index < 0 {
		return "slotrouter: " + e.Type
	}
	return "slotrouter: argument " + strconv.Itoa(e.Index) + " has unsupported type " + e.Type
}

// ProtocolError means the server sent bytes that are not valid RESP, or a
// length beyond the sanity caps. The connection is closed: after a framing
// error nothing later on the stream can be trusted.
type ProtocolError struct {
	Reason string
}

func (e *ProtocolError) Error() string { return "slotrouter: protocol error: " + e.Reason }

// ConnError is a failure of the connection to Addr rather than a reply.
//
// Sent tells whether the command may have reached the server. Sent == false
// guarantees it was not executed (the dial failed, or its bytes never left
// the process), so even a write can be retried on another node. Sent == true
// means it may or may not have run.
type ConnError struct {
	Addr string
	Op   string // "dial", "setup", "write", "read", "health", "closed", "drain" (node or address retired)
	Sent bool
	Err  error
}

func (e *ConnError) Error() string {
	s := "slotrouter: " + e.Op + " " + e.Addr
	if e.Sent {
		s += " (command may have been sent)"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ConnError) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a deadline (health or I/O).
func (e *ConnError) Timeout() bool { return errors.Is(e.Err, os.ErrDeadlineExceeded) }

// ReplyTypeError is returned by Result accessors when the reply's kind cannot
// be converted, e.g. Int64 on an array or a non-numeric string.
type ReplyTypeError struct {
	Want string // what the accessor converts to
	Got  Kind
	Text string // the offending text, for strings that did not parse
}

func (e *ReplyTypeError) Error() string {
	s := "slotrouter: cannot read " + e.Got.String() + " reply as " + e.Want
	if e.Text != "" {
		s += ": " + strconv.Quote(e.Text)
	}
	return s
}

// healthError is the cause inside a ConnError when a pipe got no reply within
// HealthTimeout. It matches os.ErrDeadlineExceeded so the usual timeout checks
// work.
type healthError struct{ after string }

func (e *healthError) Error() string        { return "no reply within " + e.after }
func (e *healthError) Is(target error) bool { return target == os.ErrDeadlineExceeded }
func (e *healthError) Timeout() bool        { return true }
