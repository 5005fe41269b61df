package client

import (
	"errors"

	"github.com/slotrouter/slotrouter/router"
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
	ErrCrossSlot   = errors.New("slotrouter: CROSSSLOT")
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
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("slotrouter: client closed")
	// ErrNoOwner means no reachable node served the command's slot before
	// the caller's context (or the retry budget) ran out.
	ErrNoOwner = router.ErrNoOwner
	// ErrNoReplica is returned under ReplicaOnly when a shard has no
	// healthy replica.
	ErrNoReplica = router.ErrNoReplica
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
	ErrReplyMode = errors.New("slotrouter: CLIENT REPLY OFF/SKIP is not supported on shared connections")
	// ErrForeignSeeds means the seeds belong to different clusters (no node
	// ID in common); *ForeignSeedsError names them.
	ErrForeignSeeds = topology.ErrForeignSeeds
	// ErrBadRedirect means a node answered a command with a MOVED or ASK
	// for a slot other than the command's: a protocol error of that node.
	// Nothing is patched or followed.
	ErrBadRedirect = router.ErrBadRedirect
)

// RedirectError is returned when a command was redirected more often than
// Options.MaxRedirects allows; Chain names every hop.
type RedirectError = router.RedirectError

// Redirect is one MOVED or ASK hop.
type Redirect = router.Redirect

// ForeignSeedsError is returned by New when the seeds answer as members of
// different clusters; Groups lists the seed addresses of each.
type ForeignSeedsError = topology.ForeignSeedsError
