package client

import (
	"errors"
	"strconv"

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
	// ErrClosed is returned by calls on a closed Client, and by calls in
	// flight when it was closed. It is the router's own ErrClosed too.
	ErrClosed = router.ErrClosed
	// ErrNoOwner means no reachable node served the command's slot before
	// the caller's context (or the retry budget) ran out.
	ErrNoOwner = router.ErrNoOwner
	// ErrNoReplica is returned under ReplicaOnly when a shard has no
	// healthy replica.
	ErrNoReplica = router.ErrNoReplica
)

// RedirectError is returned when a command was redirected more often than
// Options.MaxRedirects allows; Chain names every hop.
type RedirectError = router.RedirectError

// Redirect is one MOVED or ASK hop.
type Redirect = router.Redirect

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
