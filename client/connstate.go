package client

import (
	"fmt"
	"strings"

	"github.com/slotrouter/slotrouter/slots"
)

// Connection-state commands change or read the state of the connection they
// run on: a transaction in progress, watched keys, the database, the
// protocol, subscriptions, the reply mode, tracking, the replication offset
// WAIT counts from. Every caller shares a node's connections, so on a shared
// connection such a command would change what other callers get (another
// caller's GET answered "QUEUED", maps instead of arrays) or answer about
// writes that are not the caller's (WAIT). Do, DoOn and Pipeline refuse
// them with ErrConnState; the API named in the error does the job on a
// connection of its own, or at dial time on every connection.
//
// The classification is the server's COMMAND flags where they say it
// (pubsub + noscript is exactly the SUBSCRIBE family: PUBLISH and SPUBLISH
// may run in scripts) and this list for the rest, which no flag marks.
var connStateUses = map[string]string{
	"multi":           "Client.TxPipeline or Client.Watch",
	"exec":            "Client.TxPipeline or Client.Watch",
	"discard":         "Client.TxPipeline or Client.Watch",
	"watch":           "Client.Watch",
	"unwatch":         "Client.Watch",
	"select":          "Options.DB (a non-cluster deployment; Redis Cluster has only database 0)",
	"hello":           "Options.Protocol, Options.Username/Password and Options.ClientName",
	"auth":            "Options.Username and Options.Password",
	"client|setname":  "Options.ClientName",
	"client|tracking": "a Client.Conn session (with Options.Protocol 3, Conn.Receive returns the invalidations)",
	"client|caching":  "a Client.Conn session",
	"client|reply":    "a Client.Conn session",
	"client|no-evict": "a Client.Conn session",
	"client|no-touch": "a Client.Conn session",
	"readonly":        "Options.ReadPolicy",
	"readwrite":       "Options.ReadPolicy",
	"asking":          "nothing: the client sends ASKING itself after an ASK redirect",
	"reset":           "a Client.Conn session",
	"monitor":         "a Client.Conn session and Conn.Receive",
	"quit":            "Client.Close",
	"wait":            "a Client.Conn session, after the writes WAIT should count",
	"waitaof":         "a Client.Conn session, after the writes WAITAOF should count",
}

const subscribeUse = "Client.Subscribe/PSubscribe/SSubscribe"

// connStateUse returns the API to use instead of sending info's command on
// a shared connection, or "" for an ordinary command.
func connStateUse(info *slots.Command) string {
	// Hot-path filter: every command of the list is either noscript or
	// neither a read nor a write, so GET, SET and friends stop here.
	if info.Flags&slots.Noscript == 0 && info.Flags&(slots.Readonly|slots.Write) != 0 {
		return ""
	}
	if info.Flags&(slots.Pubsub|slots.Noscript) == slots.Pubsub|slots.Noscript {
		return subscribeUse
	}
	return connStateUses[info.Name]
}

// connStateError is the ErrConnState a caller gets for info's command.
func connStateError(info *slots.Command, use string) error {
	name := strings.ToUpper(strings.ReplaceAll(info.Name, "|", " "))
	return fmt.Errorf("%w: %s would change the connection other callers share; use %s", ErrConnState, name, use)
}
