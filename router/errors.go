package router

import (
	"errors"
	"fmt"

	"github.com/slotrouter/slotrouter/slots"
)

var (
	// ErrNoOwner means no routable node serves the slot (its master failed
	// and no replica has been promoted yet, or discovery never saw an owner).
	ErrNoOwner = errors.New("slotrouter: no node serves this slot")
	// ErrNoReplica is returned under ReplicaOnly when the shard has no
	// healthy replica.
	ErrNoReplica = errors.New("slotrouter: no healthy replica")
	// ErrNoTopology means no discovery round has succeeded yet.
	ErrNoTopology = errors.New("slotrouter: no topology known")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("slotrouter: router closed")
	// ErrRetryBudget: a call without a deadline retried for the whole
	// RetryBudget and gave up.
	ErrRetryBudget = errRetryBudget
	// ErrBadRedirect means a node answered a command with a MOVED or ASK
	// for a slot other than the command's (see Router.OnReply).
	ErrBadRedirect = errors.New("slotrouter: redirect names another slot than the command's")
)

// SlotError adds the slot to an error about routing it.
type SlotError struct {
	Slot slots.Slot
	Err  error
}

func (e *SlotError) Error() string { return fmt.Sprintf("slot %d: %v", e.Slot, e.Err) }
func (e *SlotError) Unwrap() error { return e.Err }

// NodeError adds the node to an error that happened talking to it.
type NodeError struct {
	Addr string
	Slot slots.Slot
	Err  error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %s (slot %d): %v", e.Addr, e.Slot, e.Err)
}
func (e *NodeError) Unwrap() error { return e.Err }
