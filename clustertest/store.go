package clustertest

import (
	"sort"

	"github.com/slotrouter/slotrouter/slots"
)

// Value kinds, named as TYPE prints them.
const (
	kindString = "string"
	kindHash   = "hash"
	kindList   = "list"
	kindSet    = "set"
)

// entry is one key's value. Exactly one of the payload fields is used,
// chosen by kind. expireAt is Unix milliseconds; 0 means no TTL.
type entry struct {
	kind     string
	str      []byte
	hash     *hashValue
	list     *listValue
	set      map[string]struct{}
	expireAt int64
}

// clone deep-copies e so that a replica never shares mutable state with its
// master (replication applies copies from another goroutine).
func (e *entry) clone() *entry {
	c := &entry{kind: e.kind, expireAt: e.expireAt}
	switch e.kind {
	case kindString:
		c.str = append([]byte(nil), e.str...)
	case kindHash:
		c.hash = e.hash.clone()
	case kindList:
		c.list = &listValue{items: append([][]byte(nil), e.list.items[e.list.head:]...)}
	case kindSet:
		c.set = make(map[string]struct{}, len(e.set))
		for k := range e.set {
			c.set[k] = struct{}{}
		}
	}
	return c
}

// hashValue keeps insertion order because a small Redis hash is a listpack,
// and HGETALL/HKEYS on a real server answer in insertion order. Matching
// that makes replies byte-comparable with redis-server.
type hashValue struct {
	fields []string
	values map[string][]byte
}

func newHash() *hashValue { return &hashValue{values: map[string][]byte{}} }

func (h *hashValue) clone() *hashValue {
	c := &hashValue{fields: append([]string(nil), h.fields...), values: make(map[string][]byte, len(h.values))}
	for k, v := range h.values {
		c.values[k] = append([]byte(nil), v...)
	}
	return c
}

// set reports whether field is new.
func (h *hashValue) set(field string, v []byte) bool {
	_, ok := h.values[field]
	if !ok {
		h.fields = append(h.fields, field)
	}
	h.values[field] = v
	return !ok
}

func (h *hashValue) del(field string) bool {
	if _, ok := h.values[field]; !ok {
		return false
	}
	delete(h.values, field)
	for i, f := range h.fields {
		if f == field {
			h.fields = append(h.fields[:i], h.fields[i+1:]...)
			break
		}
	}
	return true
}

// listValue is a deque: items live in items[head:], so LPUSH is amortised
// O(1) instead of shifting the whole list.
type listValue struct {
	items [][]byte
	head  int
}

func (l *listValue) len() int          { return len(l.items) - l.head }
func (l *listValue) at(i int) []byte   { return l.items[l.head+i] }
func (l *listValue) pushBack(v []byte) { l.items = append(l.items, v) }

func (l *listValue) pushFront(v []byte) {
	if l.head == 0 {
		n := l.len()
		room := n + 8
		grown := make([][]byte, room+n)
		copy(grown[room:], l.items[l.head:])
		l.items, l.head = grown, room
	}
	l.head--
	l.items[l.head] = v
}

func (l *listValue) popFront() []byte {
	v := l.items[l.head]
	l.items[l.head] = nil
	l.head++
	return v
}

func (l *listValue) popBack() []byte {
	v := l.items[len(l.items)-1]
	l.items[len(l.items)-1] = nil
	l.items = l.items[:len(l.items)-1]
	return v
}

// db is one node's keyspace. It is guarded by the owning Node's mu.
//
// A master records which keys each command touched; after the command the
// node ships a copy of those keys (or their deletion) to its replicas. That
// "replicate the effect" approach sidesteps the command rewriting real Redis
// does (relative TTLs, INCRBYFLOAT) while giving the same replica state.
type db struct {
	keys    map[string]*entry
	bySlot  map[slots.Slot]map[string]struct{}
	record  bool
	touched map[string]struct{}
	flushed bool
	// watchers are the connections WATCHing each key (multi.go).
	watchers map[string]map[*watchState]struct{}
}

func newDB() *db {
	return &db{keys: map[string]*entry{}, bySlot: map[slots.Slot]map[string]struct{}{}, touched: map[string]struct{}{}}
}

// get returns the live entry for key. Expired keys are deleted when this
// node records (is a master) and merely hidden on a replica, which is what
// Redis does: replicas wait for the master's DEL.
func (d *db) get(key string, now int64) *entry {
	e := d.keys[key]
	if e == nil {
		return nil
	}
	if e.expireAt != 0 && e.expireAt <= now {
		if d.record {
			d.del(key)
		}
		return nil
	}
	return e
}

func (d *db) put(key string, e *entry) {
	if _, ok := d.keys[key]; !ok {
		s := slots.Of(key)
		m := d.bySlot[s]
		if m == nil {
			m = map[string]struct{}{}
			d.bySlot[s] = m
		}
		m[key] = struct{}{}
	}
	d.keys[key] = e
	d.touch(key)
}

func (d *db) del(key string) bool {
	if _, ok := d.keys[key]; !ok {
		return false
	}
	delete(d.keys, key)
	s := slots.Of(key)
	if m := d.bySlot[s]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(d.bySlot, s)
		}
	}
	d.touch(key)
	return true
}

func (d *db) touch(key string) {
	d.touchWatchers(key, false)
	if d.record {
		d.touched[key] = struct{}{}
	}
}

func (d *db) flush() {
	d.touchWatchers("", true)
	d.keys = map[string]*entry{}
	d.bySlot = map[slots.Slot]map[string]struct{}{}
	if d.record {
		d.flushed = true
		clear(d.touched)
	}
}

// slotKeys lists the keys stored in slot, sorted so that GETKEYSINSLOT and
// MoveKeys are deterministic.
func (d *db) slotKeys(s slots.Slot, limit int) []string {
	m := d.bySlot[s]
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// sortedKeys returns every key, expired ones not yet collected included, in
// a stable order so that SCAN cursors can be plain indexes.
func (d *db) sortedKeys() []string {
	out := make([]string, 0, len(d.keys))
	for k := range d.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (d *db) clone() *db {
	c := newDB()
	for k, e := range d.keys {
		c.put(k, e.clone())
	}
	return c
}
