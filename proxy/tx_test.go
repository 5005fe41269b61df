package proxy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/slots"
)

// TestTxGoRedis: go-redis's TxPipelined and Watch, through the session's
// MULTI/EXEC/WATCH protocol.
func TestTxGoRedis(t *testing.T) {
	srv := newServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, proto := range []int{2, 3} {
		rdb := goRedis(t, srv, proto)
		key := fmt.Sprintf("tx%d:{k}", proto)
		cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "1", 0)
			p.Incr(ctx, key)
			p.Get(ctx, key)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, "2", cmds[2].(*redis.StringCmd).Val())

		// Watch, no interference: the transaction runs.
		err = rdb.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Get(ctx, key).Int()
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, n*10, 0)
				return nil
			})
			return err
		}, key)
		require.NoError(t, err)
		require.Equal(t, "20", rdb.Get(ctx, key).Val())

		// Watch, the key changes under it: EXEC fails, nothing runs.
		other := goRedis(t, srv, proto)
		err = rdb.Watch(ctx, func(tx *redis.Tx) error {
			if err := other.Set(ctx, key, "changed", 0).Err(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, "mine", 0)
				return nil
			})
			return err
		}, key)
		require.ErrorIs(t, err, redis.TxFailedErr)
		require.Equal(t, "changed", rdb.Get(ctx, key).Val())
	}
}

// TestTxProtocol: the session's transaction replies, byte for byte as
// redis-server 7.0.15 sends them.
func TestTxProtocol(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, listen(t, srv))
	require.Equal(t, "-ERR EXEC without MULTI\r\n", r.do("EXEC"))
	require.Equal(t, "-ERR DISCARD without MULTI\r\n", r.do("DISCARD"))

	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "-ERR MULTI calls can not be nested\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("SET txp:{a} 1"))
	require.Equal(t, "+QUEUED\r\n", r.do("INCR txp:{a}"))
	require.Equal(t, "+QUEUED\r\n", r.do("PING"))
	require.Equal(t, "-ERR WATCH inside MULTI is not allowed\r\n", r.do("WATCH x"))
	require.Equal(t, "*3\r\n+OK\r\n:2\r\n+PONG\r\n", r.do("EXEC"))

	// A queueing error dooms the transaction.
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("SET txp:{a} 5"))
	require.Equal(t, "-ERR unknown command 'FOO', with args beginning with: 'x' \r\n", r.do("FOO x"))
	require.Equal(t, "-ERR wrong number of arguments for 'get' command\r\n", r.do("GET a b"))
	require.Equal(t, "-ERR Command not allowed inside a transaction\r\n", r.do("SUBSCRIBE ch"))
	require.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", r.do("EXEC"))
	require.Equal(t, "$1\r\n2\r\n", r.do("GET txp:{a}"), "an aborted transaction must not run")

	// DISCARD drops the queue.
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("SET txp:{a} 9"))
	require.Equal(t, "+OK\r\n", r.do("DISCARD"))
	require.Equal(t, "$1\r\n2\r\n", r.do("GET txp:{a}"))

	// A failed WATCH answers EXEC with a null array; RESP3 with _.
	other := dialRaw(t, listen(t, srv))
	for _, tc := range []struct{ hello, null string }{{"HELLO 2", "*-1\r\n"}, {"HELLO 3", "_\r\n"}} {
		r.do(tc.hello)
		require.Equal(t, "+OK\r\n", r.do("WATCH txp:{a}"))
		require.Equal(t, "+OK\r\n", r.do("WATCH txp:{a}x"))                // a second WATCH adds keys
		require.Equal(t, "+OK\r\n", other.do("SET txp:{a}x "+tc.null[:1])) // a new value each round
		require.Equal(t, "+OK\r\n", r.do("MULTI"))
		require.Equal(t, "+QUEUED\r\n", r.do("SET txp:{a} lost"))
		require.Equal(t, tc.null, r.do("EXEC"))
		require.Equal(t, "$1\r\n2\r\n", r.do("GET txp:{a}"))
	}
	// UNWATCH forgets the keys.
	require.Equal(t, "+OK\r\n", r.do("WATCH txp:{a}"))
	require.Equal(t, "+OK\r\n", other.do("SET txp:{a} 3"))
	require.Equal(t, "+OK\r\n", r.do("UNWATCH"))
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("INCR txp:{a}"))
	require.Equal(t, "*1\r\n:4\r\n", r.do("EXEC"))

	// WATCH ... EXEC in one pipelined write, as go-redis sends it.
	r.send("WATCH txp:{a}\r\nGET txp:{a}\r\nMULTI\r\nINCR txp:{a}\r\nEXEC\r\nPING\r\n")
	var got strings.Builder
	for range 6 {
		got.WriteString(r.reply())
	}
	require.Equal(t, "+OK\r\n$1\r\n4\r\n+OK\r\n+QUEUED\r\n*1\r\n:5\r\n+PONG\r\n", got.String())
}

// TestTxWatchConcurrent: go-redis's optimistic-locking loop through the
// proxy is exact: 20 sessions increment one key 10 times each with
// WATCH/GET/MULTI/SET/EXEC, retrying on TxFailedErr, and the key ends at 200.
func TestTxWatchConcurrent(t *testing.T) {
	srv := newServer(t, Options{})
	rdb := goRedis(t, srv, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := fmt.Sprintf("txc:%d", time.Now().UnixNano())
	incr := func() (conflicts int, err error) {
		for range 1000 {
			err := rdb.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, key).Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, key, n+1, 0)
					return nil
				})
				return err
			}, key)
			if !errors.Is(err, redis.TxFailedErr) {
				return conflicts, err
			}
			conflicts++
		}
		return conflicts, fmt.Errorf("1000 conflicts in a row")
	}
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	errc := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				n, err := incr()
				conflicts.Add(int64(n))
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	require.Equal(t, "200", rdb.Get(ctx, key).Val())
	t.Logf("200 increments, %d EXECs refused for a changed key and run again", conflicts.Load())
}

// TestTxWatchSlotMoves: a session's watch whose slot moves to another
// master between WATCH and EXEC. The read in between still answers (from
// the new owner), EXEC answers null as for a changed key and runs nothing,
// and the client's next round commits on the new owner.
func TestTxWatchSlotMoves(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	srv := New(newClient(t, cl, client.Options{}), Options{})
	t.Cleanup(func() { srv.Close() })
	r := dialRaw(t, listen(t, srv))
	key := "wm:{moves}"
	slot := int(slots.Of(key))
	src := cl.MasterOf(slot)
	var dst *redistest.Server
	for _, m := range cl.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	require.Equal(t, "+OK\r\n", r.do("SET "+key+" 1"))
	require.Equal(t, "+OK\r\n", r.do("WATCH "+key))
	cl.MigrateSlot(slot, src, dst)
	require.Equal(t, "$1\r\n1\r\n", r.do("GET "+key))
	require.Equal(t, "+OK\r\n", r.do("WATCH "+key+" other:{moves}"))
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("SET "+key+" lost"))
	require.Equal(t, "*-1\r\n", r.do("EXEC"))
	require.Equal(t, "$1\r\n1\r\n", r.do("GET "+key))

	// The next round runs on the new owner.
	require.Equal(t, "+OK\r\n", r.do("WATCH "+key))
	require.Equal(t, "$1\r\n1\r\n", r.do("GET "+key))
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("INCR "+key))
	require.Equal(t, "*1\r\n:2\r\n", r.do("EXEC"))
	v, err := dst.Do(context.Background(), "GET", key)
	require.NoError(t, err)
	require.Equal(t, "2", v)
}

// TestTxWatchMasterKilled: a session's watch whose master is killed (-9)
// between WATCH and EXEC. The read in between is answered by the promoted
// replica, EXEC answers null as for a changed key and runs nothing, and the
// next round commits on the new master.
func TestTxWatchMasterKilled(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	srv := New(newClient(t, cl, client.Options{}), Options{})
	t.Cleanup(func() { srv.Close() })
	r := dialRaw(t, listen(t, srv))
	key := "wk:{killed}"
	victim := cl.MasterOf(int(slots.Of(key)))
	require.Equal(t, "+OK\r\n", r.do("SET "+key+" 1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitReplicated(ctx, t, victim, cl.ReplicasOf(victim)[0])
	require.Equal(t, "+OK\r\n", r.do("WATCH "+key))
	victim.Kill()
	promoted, _ := cl.WaitPromoted(ctx, victim)
	require.Equal(t, "$1\r\n1\r\n", r.do("GET "+key))
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("SET "+key+" lost"))
	require.Equal(t, "*-1\r\n", r.do("EXEC"))

	require.Equal(t, "+OK\r\n", r.do("WATCH "+key))
	require.Equal(t, "$1\r\n1\r\n", r.do("GET "+key))
	require.Equal(t, "+OK\r\n", r.do("MULTI"))
	require.Equal(t, "+QUEUED\r\n", r.do("INCR "+key))
	require.Equal(t, "*1\r\n:2\r\n", r.do("EXEC"))
	v, err := promoted.Do(ctx, "GET", key)
	require.NoError(t, err)
	require.Equal(t, "2", v)
}

// waitReplicated waits until replica has everything master wrote.
func waitReplicated(ctx context.Context, t *testing.T, master, replica *redistest.Server) {
	t.Helper()
	offset := func(s *redistest.Server, field string) int64 {
		v, err := s.Do(ctx, "INFO", "replication")
		require.NoError(t, err)
		m := regexp.MustCompile(field + `:(\d+)`).FindStringSubmatch(fmt.Sprint(v))
		require.NotNil(t, m, "INFO replication of %s has no %s", s.Addr, field)
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	want := offset(master, "master_repl_offset")
	for offset(replica, "slave_repl_offset") < want {
		require.NoError(t, ctx.Err(), "replica never caught up")
		time.Sleep(10 * time.Millisecond)
	}
}
