package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/internal/redistest"
)

// TestShapesMatchServer sends the same commands to a real redis-server and
// to a proxy in front of it, in RESP2 and RESP3, and compares the bytes:
// the backend connections speak RESP2, so every RESP3 type and every RESP2
// *-1 the session sends comes from shape.go's table. Each side works on
// its own copy of the keys ("{s2}" for the server, "{p2}" for the proxy:
// same length, so the replies compare byte for byte after renaming; one
// hash tag, as the client wants one slot per command).
func TestShapesMatchServer(t *testing.T) {
	rs := redistest.StartServer(t, redistest.ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{Addrs: []string{rs.Addr}})
	require.NoError(t, err)
	defer c.Close()
	srv := New(c, Options{})
	t.Cleanup(func() { srv.Close() })
	direct := dialRaw(t, rs.Addr)
	proxied := dialRaw(t, listen(t, srv))

	setup := []string{
		"HSET {k}h f v g w", "SADD {k}s a b c", "SADD {k}t b c d",
		"ZADD {k}z 1 a 2.5 b 3 c 4 d 5 e 6 f 7 g", "RPUSH {k}l x y z", "XADD {k}x 1-1 k v",
		"HSET {k}h1 f v", "ZADD {k}z1 1.5 a", "SADD {k}u a", // one member: random picks are not random
	}
	cmds := []string{
		"HGETALL {k}h", "HGETALL {k}none", "CONFIG GET maxmemory", "SMEMBERS {k}s", "SINTER {k}s {k}t",
		"SUNION {k}s {k}t", "SDIFF {k}s {k}t", "ZSCORE {k}z b", "ZSCORE {k}z none", "ZMSCORE {k}z a none b",
		"ZINCRBY {k}z 0.5 a", "ZADD {k}z INCR 1 c", "ZRANGE {k}z 0 2 WITHSCORES", "ZRANGE {k}z 0 1",
		"ZRANGEBYSCORE {k}z 1 3 WITHSCORES", "ZREVRANGE {k}z 0 1 WITHSCORES", "ZREVRANGEBYSCORE {k}z 3 1 WITHSCORES",
		"ZUNION 1 {k}z WITHSCORES", "ZINTER 1 {k}z WITHSCORES", "ZDIFF 1 {k}z WITHSCORES",
		"ZPOPMIN {k}z", "ZPOPMAX {k}z 1", "ZPOPMIN {k}none", "BZPOPMIN {k}z 1", "BZPOPMAX {k}none 0.01",
		"ZMPOP 1 {k}z MIN", "ZMPOP 1 {k}none MIN", "BZMPOP 0.01 1 {k}none MAX",
		"HRANDFIELD {k}h1 -2 WITHVALUES", "ZRANDMEMBER {k}z1 -2 WITHSCORES",
		"XREAD STREAMS {k}x 0", "XREAD STREAMS {k}none 0", "XREAD BLOCK 10 STREAMS {k}x $",
		"BLPOP {k}none 0.01", "BRPOP {k}none 0.01", "LPOP {k}l 2", "LPOP {k}none 2", "RPOP {k}none",
		"BLMOVE {k}none {k}l LEFT LEFT 0.01", "LMPOP 1 {k}none LEFT", "SPOP {k}u 1", "GET {k}none",
	}
	for _, proto := range []string{"2", "3"} {
		for _, side := range []*rawConn{direct, proxied} {
			require.True(t, strings.HasPrefix(side.do("HELLO "+proto), map[string]string{"2": "*14", "3": "%7"}[proto]))
		}
		for _, pre := range []string{"{s" + proto + "}", "{p" + proto + "}"} {
			for _, cmd := range setup {
				r := direct.do(strings.ReplaceAll(cmd, "{k}", pre))
				require.False(t, strings.HasPrefix(r, "-"), "%s: %s", cmd, r)
			}
		}
		for _, cmd := range cmds {
			want := direct.do(strings.ReplaceAll(cmd, "{k}", "{s"+proto+"}"))
			got := proxied.do(strings.ReplaceAll(cmd, "{k}", "{p"+proto+"}"))
			got = strings.ReplaceAll(got, "{p"+proto+"}", "{s"+proto+"}")
			require.Equal(t, want, got, "RESP%s %s", proto, cmd)
		}
	}
}
