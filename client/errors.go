package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slotrouter/slotrouter/router"
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
	ErrCrossSlot   = errors.New("slotrouter: CROSSSLOT")
	ErrNoAuth      = errors.New("slotrouter: NOAUTH")
	ErrWrongPass   = errors.New("slotrouter: WRONGPASS")
	ErrWrongType   = errors.New("slotrouter: WRONGTYPE")
	ErrBusy        = errors.New("slotrouter: BUSY")
	ErrExecAbort   = errors.New("slotrouter: EXECABORT")
	ErrNoScript    = errors.New("slotrouter: NOSCRIPT")
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
}

// Errors the client itself produces.
var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("slotrouter: client closed")
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
)

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
