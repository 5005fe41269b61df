package live

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/topology"
)

// Flags are the load flags every single-shard example takes.
type Flags struct {
	Rate     int
	Duration time.Duration
	Timeout  time.Duration
}

// RegisterFlags defines -rate, -duration and -timeout on fs with the
// examples' defaults (200/s, 60s, 2s).
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.IntVar(&f.Rate, "rate", 200, "writes per second")
	fs.DurationVar(&f.Duration, "duration", 60*time.Second, "how long to run (0: until interrupted)")
	fs.DurationVar(&f.Timeout, "timeout", 2*time.Second, "deadline of each write")
	return f
}

// Context ends on SIGINT or SIGTERM, or after d when d > 0. The returned
// stop releases both.
func Context(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stop() }
}

// Stamp is the time prefix of every printed line.
func Stamp(t time.Time) string { return t.Format("15:04:05.000") }

// PrintChanges is an OnTopologyChange hook that prints each change as it is
// seen, so failovers show up between the once-a-second lines.
func PrintChanges(changes []topology.Change) {
	for _, ch := range changes {
		fmt.Printf("%s  topology: %s\n", Stamp(time.Now()), ch.String())
	}
}

// FirstMaster names the master of the only shard of a master/replica set
// and how many replicas it has, or "none".
func FirstMaster(c *client.Client) string {
	if snap := c.Topology(); snap != nil && len(snap.Shards()) > 0 && snap.Shards()[0].Master != nil {
		sh := snap.Shards()[0]
		return fmt.Sprintf("%s (+%d replicas)", sh.Master.Addr, len(sh.Replicas))
	}
	return "none"
}

// Config says what Run connects to and how it reports.
type Config struct {
	Client client.Options
	// Rate is writes per second; below 1 means 1.
	Rate int
	// Timeout is the deadline of each write; zero or less means 2 s.
	Timeout time.Duration
	// KeyPrefix starts every written key ("roleprobe:" + counter).
	KeyPrefix string
	// Connected, when set, adds to the "connected" line (e.g. "; sentinels [...]").
	Connected func(*client.Client) string
	// Master names the master in use on each status line; nil means FirstMaster.
	Master func(*client.Client) string
	// Detail, when set, is appended to each status line after the counts.
	Detail func(*client.Client) string
}

// Run connects (within 10 s), writes cfg.Rate SETs a second until ctx ends
// and prints once a second the master in use and how many writes succeeded
// and failed in that second, with the last error if any.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	master := cfg.Master
	if master == nil {
		master = FirstMaster
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(cctx, cfg.Client)
	if err != nil {
		return err
	}
	defer c.Close()
	connected := ""
	if cfg.Connected != nil {
		connected = cfg.Connected(c)
	}
	fmt.Printf("%s  connected%s\n", Stamp(time.Now()), connected)
	var st counts
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeLoop(ctx, c, cfg.Rate, cfg.Timeout, cfg.KeyPrefix, &st)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case now := <-tick.C:
			line := fmt.Sprintf("%s  master %s  ok %d  fail %d", Stamp(now), master(c), st.ok.Swap(0), st.fail.Swap(0))
			if cfg.Detail != nil {
				line += cfg.Detail(c)
			}
			fmt.Println(st.withLastError(line))
		}
	}
}

// counts are one second's write outcomes, reset by each status line.
type counts struct {
	ok, fail atomic.Int64
	last     atomic.Pointer[string] // text of the last failure this second
}

func (s *counts) record(err error) {
	if err != nil {
		s.fail.Add(1)
		msg := err.Error()
		s.last.Store(&msg)
		return
	}
	s.ok.Add(1)
}

func (s *counts) withLastError(line string) string {
	if e := s.last.Swap(nil); e != nil {
		line += "  last error: " + *e
	}
	return line
}

// writeLoop starts a write every 1/rate s (open loop), each with its own
// deadline, so a stalled master shows up as failures, not as a lower rate.
func writeLoop(ctx context.Context, c *client.Client, rate int, timeout time.Duration, prefix string, st *counts) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := time.Second / time.Duration(max(rate, 1))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fresh context: the run's own end must not count as a
			// failed write, and SET of a fixed value is safe to repeat.
			wctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			st.record(c.Do(client.Idempotent(wctx), "SET", prefix+strconv.Itoa(i), i).Err())
		}()
	}
}
