package replyconv

import "strings"

// Info returns the field:value lines of an INFO reply (CRLF or LF lines; section headers
// skipped), or false when v is not text.
func Info(v any) (map[string]string, bool) {
	s, ok := String(v)
	if !ok {
		return nil, false
	}
	f := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if k, val, found := strings.Cut(line, ":"); found && !strings.HasPrefix(line, "#") {
			f[k] = val
		}
	}
	return f, true
}

// noReplID is the master_replid2 of a node that was never promoted.
const noReplID = "0000000000000000000000000000000000000000"

// ReplIDs returns master_replid and master_replid2 from INFO replication fields, "" for
// absent or all-zero ones. They record replication lineage: REPLICAOF NO ONE gives the
// promoted node a new master_replid and keeps its old master's as master_replid2, so a node
// whose master_replid2 is another's master_replid was promoted out of that one's history.
func ReplIDs(info map[string]string) (id, id2 string) {
	id, id2 = info["master_replid"], info["master_replid2"]
	if id == noReplID {
		id = ""
	}
	if id2 == noReplID {
		id2 = ""
	}
	return id, id2
}
