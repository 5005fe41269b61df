package client

// The tracking side of the cache: one RESP3 connection per node with CLIENT
// TRACKING on, whose reader applies invalidation pushes as it meets them.

// node returns addr's tracking connection manager, creating it on first use.
func (k *cache) node(addr string) *node {
	k.nodesMu.Lock()
	defer k.nodesMu.Unlock()
	n := k.nodes[addr]
	if n == nil {
		n = newNode(addr, &k.cfg)
		if k.c.closed.Load() {
			n.close()
		}
		k.nodes[addr] = n
	}
	return n
}

// dropNode closes addr's tracking connection (the node left the view or
// was replaced): what it tracked is invalid from now on.
func (k *cache) dropNode(addr string) {
	k.nodesMu.Lock()
	n := k.nodes[addr]
	delete(k.nodes, addr)
	k.nodesMu.Unlock()
	if n != nil {
		n.close()
	}
}

func (k *cache) close() {
	close(k.stop)
	k.nodesMu.Lock()
	nodes := k.nodes
	k.nodes = map[string]*node{}
	k.nodesMu.Unlock()
	for _, n := range nodes {
		n.close()
	}
}

// onPush runs on p's reader, before it reads the next reply: an
// invalidation is thus applied before any later reply of p is handed out.
// ["invalidate", [key...]] drops those keys' entries read over p;
// ["invalidate", nil] (a flush) drops everything read over p.
func (k *cache) onPush(p *pipe, push Result) {
	kind, _ := push.at(0)
	keys, _ := push.at(1)
	if push.Len() != 2 || kind.kind != KindBulk && kind.kind != KindString || kind.str != "invalidate" {
		return
	}
	if keys.kind == KindNil {
		k.invals.Add(1)
	} else {
		k.invals.Add(int64(keys.Len()))
	}
	for i := range k.shards {
		k.shards[i].invalidate(p, keys)
	}
}

func (sh *cacheShard) invalidate(p *pipe, keys Result) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if keys.kind == KindNil {
		for _, e := range sh.entries {
			if e.p == p {
				sh.removeLocked(e)
			}
		}
		return
	}
	for _, key := range keys.All() {
		pk := pipeKey{p, key.str}
		for list := sh.index[pk]; len(list) > 0; list = sh.index[pk] {
			sh.removeLocked(list[0])
		}
	}
}
