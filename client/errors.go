package client

// Every error a caller of this package can meet, in one place. Each matches
// a sentinel here with errors.Is or a type here with errors.As (the README
// has the table):
//
//   - a Redis error reply: *Error, matching its kind (ErrMoved ... ErrNoScript);
//   - a connection failure: *ConnError (Sent says whether it may have run),
//     with the cause inside (*ProtocolError, *ReplyTooLargeError, a dial or
//     TLS error, a deadline);
//   - a routing failure: *NodeError (node and slot around the cause),
//     ErrNoOwner, ErrNoReplica, ErrNoTopology, ErrCrossSlot;
//   - giving up: *RetryError, matching both why (the ctx's error or
//     ErrRetryBudget) and the last failure; ErrClosed after Close;
//   - a caller's mistake: *ArgError; a reply read as the wrong type:
//     *ReplyTypeError, ErrNil.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/slotrouter/slotrouter/router"
	"github.com/slotrouter/slotrouter/slots"
	"github.com/slotrouter/slotrouter/topology"
)

// Kinds of Redis error replies. A *Error matches its kind with errors.Is, so
// callers can write errors.Is(err, client.ErrClusterDown) whatever the rest of
// the server's text says.
var (
	ErrMoved       = errors.New("slotrouter: MOVED")
	ErrAsk         = errors.New("slotrouter: ASK")
	ErrTryAgain    = errors.New("slotrouter: TRYAGAIN")
	ErrClusterDown = errors.New("slotrouter: CLUSTERDOWN")
	ErrLoading     = errors.New("slotrouter: LOADING")
	ErrMasterDown  = errors.New("slotrouter: MASTERDOWN")
	ErrReadOnly    = errors.New("slotrouter: READONLY")
	ErrCrossSlot   = slots.ErrCrossSlot // also what the client says before sending keys of several slots
	ErrNoAuth      = errors.New("slotrouter: NOAUTH")
	ErrWrongPass   = errors.New("slotrouter: WRONGPASS")
	ErrWrongType   = errors.New("slotrouter: WRONGTYPE")
	ErrBusy        = errors.New("slotrouter: BUSY")
	ErrExecAbort   = errors.New("slotrouter: EXECABORT")
	ErrNoScript    = errors.New("slotrouter: NOSCRIPT")
	ErrNoPerm      = errors.New("slotrouter: NOPERM")
)

// errorKinds maps the first word of a Redis error reply to its kind.
var errorKinds = map[string]error{
	"MOVED":       ErrMoved,
	"ASK":         ErrAsk,
	"TRYAGAIN":    ErrTryAgain,
	"CLUSTERDOWN": ErrClusterDown,
	"LOADING":     ErrLoading,
	"MASTERDOWN":  ErrMasterDown,
	"READONLY":    ErrReadOnly,
	"CROSSSLOT":   ErrCrossSlot,
	"NOAUTH":      ErrNoAuth,
	"WRONGPASS":   ErrWrongPass,
	"WRONGTYPE":   ErrWrongType,
	"BUSY":        ErrBusy,
	"EXECABORT":   ErrExecAbort,
	"NOSCRIPT":    ErrNoScript,
	"NOPERM":      ErrNoPerm,
}

// Errors the client itself produces.
var (
	// ErrClosed is returned by calls on a closed Client, and by calls in
	// flight when it was closed. It is the router's own ErrClosed too.
	ErrClosed = router.ErrClosed
	// ErrNoOwner means no reachable node served the command's slot before
	// the caller's context (or the retry budget) ran out.
	ErrNoOwner = router.ErrNoOwner
	// ErrNoReplica is returned under ReplicaOnly when a shard has no
	// healthy replica.
	ErrNoReplica = router.ErrNoReplica
	// ErrConnState is returned by Do, DoOn and Pipeline for a command that
	// changes or depends on the state of the connection it runs on (MULTI,
	// WATCH, SELECT, SUBSCRIBE, WAIT, ...): those connections are shared by
	// every caller. The error's text names the API that does the job.
	ErrConnState = errors.New("slotrouter: connection-state command on a shared connection")
	// ErrTxFailed is returned when EXEC was refused because a WATCHed key
	// changed: nothing in the transaction ran; run it again.
	ErrTxFailed = errors.New("slotrouter: transaction aborted: a watched key changed")
	// ErrScanUnstable ends a Scan whose keys kept moving between nodes
	// through every one of its bounded rounds of walks.
	ErrScanUnstable = errors.New("slotrouter: scan: keys kept moving between nodes")
	// ErrNotCacheable is returned by DoCache for a command it cannot cache
	// (not read-only, not exactly one key) or when Options.Cache is unset.
	ErrNotCacheable = errors.New("slotrouter: not cacheable")

	// ErrNoTopology means no discovery round has succeeded yet.
	ErrNoTopology = router.ErrNoTopology
	// ErrRetryBudget is why a call without a deadline stopped retrying
	// after Options.RetryBudget (inside a *RetryError).
	ErrRetryBudget = router.ErrRetryBudget

	// ErrSetupRefused means a node refused a connection setting Options
	// asked for (Options.DB on a cluster node, Options.Protocol 3 on a
	// server without HELLO, ...). It is permanent: every dial would fail
	// the same way, so New and calls return it at once.
	ErrSetupRefused = errors.New("slotrouter: the server refused a connection setting from Options")
	// ErrNilContext is returned by New, Do and Pipeline.Exec given a nil
	// context, in the caller's goroutine.
	ErrNilContext = errors.New("slotrouter: nil Context")
	// ErrProtocolMismatch means the node speaks TLS and the client does not,
	// or the other way round (Options.TLS disagrees with the server). It is
	// permanent: New and calls return it at once, without retrying.
	ErrProtocolMismatch = errors.New("slotrouter: TLS/plaintext mismatch with the server")
	// ErrDesync means a connection's replies fell out of step with its
	// requests (a reply no request asked for, or one of a type the command
	// cannot return). The connection is closed and its calls in flight fail
	// as possibly run (*ConnError with Sent true wrapping ErrDesync).
	ErrDesync = errors.New("slotrouter: replies out of step with requests")
	// ErrReplyMode is returned for CLIENT REPLY OFF|SKIP: a shared
	// connection matches replies to callers in order, which those modes break.
	// It is a connection-state refusal: it matches ErrConnState too.
	ErrReplyMode = fmt.Errorf("%w: CLIENT REPLY OFF/SKIP breaks the order replies are matched to callers in; use Client.Conn", ErrConnState)
	// ErrForeignSeeds means the seeds belong to different clusters (no node
	// ID in common); *ForeignSeedsError names them.
	ErrForeignSeeds = topology.ErrForeignSeeds
	// ErrBadRedirect means a node answered a command with a MOVED or ASK
	// for a slot other than the command's: a protocol error of that node.
	// Nothing is patched or followed.
	ErrBadRedirect = router.ErrBadRedirect
)

// NodeError wraps a failure with the node and slot it concerned; it
// matches its cause (a *ConnError, the ctx's error, ...) with errors.Is/As.
type NodeError = router.NodeError

// SlotError wraps a routing failure with its slot.
type SlotError = router.SlotError

// RedirectError is returned when a command was redirected more often than
// Options.MaxRedirects allows; Chain names every hop.
type RedirectError = router.RedirectError

// Redirect is one MOVED or ASK hop.
type Redirect = router.Redirect

// Errors of subscriptions (Subscribe, PSubscribe, SSubscribe).
var (
	// ErrSubscriptionClosed is returned by Receive and the methods of a
	// closed Subscription.
	ErrSubscriptionClosed = errors.New("slotrouter: subscription closed")
	// ErrSlowReader is the Cause of a Gap whose messages were dropped
	// because the subscription's buffer was full.
	ErrSlowReader = errors.New("slotrouter: subscription buffer full: messages dropped")
	// ErrSubscriptionMoved is the Cause of a Gap opened because the node
	// stopped serving the channels (it sent sunsubscribe when it lost the
	// slot, or a new view routes them elsewhere) while it was still up.
	ErrSubscriptionMoved = errors.New("slotrouter: subscription moved: the node no longer serves these channels")
)

// FanoutError is returned when a command sent to several nodes (a fan-out by
// the server's request policy, a multi-key command split by slot, DoMasters,
// DoNodes, a ForEachMaster callback) failed on some of them. Failed names every
// node that failed and why; Succeeded carries the replies of the others, so a
// caller can still use them. It matches each failure with errors.Is/As, e.g.
// errors.Is(err, context.DeadlineExceeded).
type FanoutError struct {
	Command   string // the command's name as sent
	Failed    []NodeResult
	Succeeded []NodeResult
}

func (e *FanoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slotrouter: %s failed on %d of %d parts", e.Command, len(e.Failed), len(e.Failed)+len(e.Succeeded))
	named := map[string]bool{} // one line per node: a split sends a node several parts
	for _, f := range e.Failed {
		if named[f.Addr] {
			continue
		}
		named[f.Addr] = true
		fmt.Fprintf(&b, "; %s: %v", f.Addr, f.Result.Err())
	}
	return b.String()
}

// Unwrap returns the failed legs' errors.
func (e *FanoutError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, f := range e.Failed {
		out = append(out, f.Result.Err())
	}
	return out
}

// ErrReplyTooLarge matches a *ReplyTooLargeError.
var ErrReplyTooLarge = errors.New("slotrouter: reply over Options.MaxReplyBytes")

// ReplyTooLargeError: a reply would have held more than Limit bytes in
// memory (payloads plus a Result per element). The connection it arrived on
// is closed: the rest of the reply is never read.
type ReplyTooLargeError struct{ Limit int64 }

func (e *ReplyTooLargeError) Error() string {
	return "slotrouter: reply over Options.MaxReplyBytes (" + strconv.FormatInt(e.Limit, 10) + " bytes)"
}

func (e *ReplyTooLargeError) Is(target error) bool { return target == ErrReplyTooLarge }

// RetryError is returned when a call ran out of time or retries while the
// deployment was recovering. It matches both causes with errors.Is: the
// context's error (or the budget) and the last failure seen, e.g.
// errors.Is(err, context.DeadlineExceeded) and errors.Is(err, ErrClusterDown).
type RetryError struct {
	Attempts int
	Err      error // why retrying stopped
	Last     error // the last failure
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("slotrouter: gave up after %d attempts: %v (last: %v)", e.Attempts, e.Err, e.Last)
}

func (e *RetryError) Unwrap() []error { return []error{e.Err, e.Last} }

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
	Op   string // "dial", "setup", "write", "read", "health", "closed", "drain"
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

// errDrained is the cause recorded on a pipe retired by drain. A caller that
// picked the pipe just before it was retired gets a *ConnError with Op
// "drain" and Sent false, which node.do retries on a fresh pipe.
var errDrained = errors.New("slotrouter: connection drained: its address left the DNS answer")

// errLeftView is the cause recorded on a node retired by retireAll.
var errLeftView = errors.New("slotrouter: connection drained: the node left the view")

// errOwnerChanged is the cause inside the *ConnError of a call abandoned on
// a suspect node because a new view routes its slot elsewhere.
var errOwnerChanged = errors.New("slotrouter: abandoned: the slot has a new owner")

// ForeignSeedsError is returned by New when the seeds answer as members of
// different clusters; Groups lists the seed addresses of each.
type ForeignSeedsError = topology.ForeignSeedsError
