package sentinel

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidOptions is wrapped by every error New returns for bad Options.
var ErrInvalidOptions = errors.New("sentinel: invalid options")

// ErrClosed is returned by Discover after Close.
var ErrClosed = errors.New("sentinel: source closed")

// ErrUnknownMaster is matched (errors.Is) by *UnknownMasterError.
var ErrUnknownMaster = errors.New("sentinel: unknown master name")

// ErrUnverified is matched (errors.Is) by *UnverifiedError.
var ErrUnverified = errors.New("sentinel: master not verified")

// UnknownMasterError says that every Sentinel that answered does not monitor the master name
// (get-master-addr-by-name returned a null array).
type UnknownMasterError struct {
	MasterName string
	Sentinels  []string // those that answered "unknown"
}

func (e *UnknownMasterError) Error() string {
	return fmt.Sprintf("sentinel: no sentinel knows master %q (asked %s)", e.MasterName,
		strings.Join(e.Sentinels, ", "))
}

func (e *UnknownMasterError) Is(target error) bool { return target == ErrUnknownMaster }

// UnverifiedError says that no Sentinel named a master whose ROLE confirmed it: a failover is
// probably in progress (the named node is down or still a replica). Attempts holds, per
// sentinel, what went wrong.
type UnverifiedError struct {
	MasterName string
	Attempts   []Attempt
}

// Attempt is one Sentinel's part in a failed Discover.
type Attempt struct {
	Sentinel string
	Master   string // address the sentinel named; "" if it did not answer
	Err      error
}

func (e *UnverifiedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sentinel: no verified master for %q", e.MasterName)
	for _, a := range e.Attempts {
		if a.Master != "" {
			fmt.Fprintf(&b, "; %s named %s: %v", a.Sentinel, a.Master, a.Err)
		} else {
			fmt.Fprintf(&b, "; %s: %v", a.Sentinel, a.Err)
		}
	}
	return b.String()
}

func (e *UnverifiedError) Is(target error) bool { return target == ErrUnverified }

// Unwrap exposes the per-sentinel errors (so errors.Is(err, context.DeadlineExceeded) works).
func (e *UnverifiedError) Unwrap() []error {
	out := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		if a.Err != nil {
			out = append(out, a.Err)
		}
	}
	return out
}

// NotMasterError says that the node a Sentinel named answered ROLE with another role.
type NotMasterError struct {
	Addr string
	Role string
}

func (e *NotMasterError) Error() string {
	return fmt.Sprintf("sentinel: %s reports role %q, not master (failover in progress?)", e.Addr, e.Role)
}

// ReplyError says that a reply did not have the documented shape.
type ReplyError struct {
	Command string
	Reason  string
}

func (e *ReplyError) Error() string {
	return "sentinel: unexpected " + e.Command + " reply: " + e.Reason
}

// SupersededError says that the master a Sentinel named was superseded: By, one of its
// replicas, says master and was promoted out of its history (By's master_replid2 is Addr's
// master_replid). The Sentinels are behind a failover, or someone promoted By by hand; until
// they name one master that nothing supersedes, no node takes writes.
type SupersededError struct {
	Addr string
	By   string
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("sentinel: %s claims master but %s was promoted out of its history (master_replid2)", e.Addr, e.By)
}
