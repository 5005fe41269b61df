package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotrouter/slotrouter/internal/redistest"
)

// incrByWatch is the optimistic-locking loop of the acceptance check: read,
// MULTI, SET n+1, EXEC, again on ErrTxFailed. It returns how many runs of
// fn happened (aborted ones and reruns included).
func incrByWatch(ctx context.Context, c *Client, key string) (runs int, err error) {
	for {
		err := c.Watch(ctx, incrTx(ctx, key, func(*Tx) { runs++ }), key)
		if errors.Is(err, ErrTxFailed) {
			continue
		}
		return runs, err
	}
}

// incrTx is a Watch function that reads key and writes it back plus one;
// atRead, if set, runs after the read, before the write is queued.
func incrTx(ctx context.Context, key string, atRead func(*Tx)) func(*Tx) error {
	return func(tx *Tx) error {
		n, err := tx.Do(ctx, "GET", key).Int64()
		if err != nil && !errors.Is(err, ErrNil) {
			return err
		}
		if atRead != nil {
			atRead(tx)
		}
		_, err = tx.TxPipelined(ctx, func(p *Pipeline) error {
			p.Do("SET", key, n+1)
			return nil
		})
		return err
	}
}

// runCounter runs workers x each Watch increments of key and fails the test
// on any error other than ErrTxFailed. done counts finished increments.
func runCounter(t *testing.T, c *Client, key string, workers, each int, pace func(), done *atomic.Int64) (runs int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var total atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if pace != nil {
					pace()
				}
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				n, err := incrByWatch(cctx, c, key)
				ccancel()
				total.Add(int64(n))
				if err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment failed: %v", err)
	}
	return total.Load()
}

func TestWatchCounterExact(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	key := "counter:{plain}"
	var done atomic.Int64
	start := time.Now()
	runs := runCounter(t, c, key, 50, 20, nil, &done)
	ctx := context.Background()
	n, err := c.Do(ctx, "GET", key).Int64()
	if err != nil || n != 1000 {
		t.Fatalf("counter = %d, %v; want 1000", n, err)
	}
	t.Logf("50 x 20 increments through Watch: %d in %v, %d runs of fn (%d aborted by a concurrent commit)",
		n, time.Since(start).Round(time.Millisecond), runs, runs-1000)
}

// TxPipeline's commands run together: a reader using a transaction never
// sees one INCR of a pair without the other, and results come back per
// command.
func TestTxPipelineAtomic(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := c.TxPipeline()
	p.Do("SET", "{tx}a", 10)
	p.Do("INCR", "{tx}a")
	p.Do("GET", "{tx}a")
	p.Do("GET", "{tx}missing")
	res, err := p.Exec(ctx)
	if err != nil && !errors.Is(err, ErrNil) {
		t.Fatal(err)
	}
	if v, _ := res[1].Int64(); v != 11 {
		t.Fatalf("INCR in tx = %v", res[1])
	}
	if v, _ := res[2].Text(); v != "11" {
		t.Fatalf("GET in tx = %v", res[2])
	}
	if !res[3].IsNil() {
		t.Fatalf("GET missing in tx = %v", res[3])
	}

	// Pairs of INCRs against a transactional reader.
	if err := c.Do(ctx, "SET", "{tx}x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SET", "{tx}y", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var torn, reads atomic.Int64
	var readErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p := c.TxPipeline()
			p.Do("GET", "{tx}x")
			p.Do("GET", "{tx}y")
			res, err := p.Exec(ctx)
			if err != nil {
				readErr.CompareAndSwap(nil, err)
				return
			}
			x, _ := res[0].Int64()
			y, _ := res[1].Int64()
			reads.Add(1)
			if x != y {
				torn.Add(1)
			}
		}
	}()
	const writers, each = 8, 200
	var wwg sync.WaitGroup
	for range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for range each {
				p := c.TxPipeline()
				p.Do("INCR", "{tx}x")
				p.Do("INCR", "{tx}y")
				if _, err := p.Exec(ctx); err != nil {
					readErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wwg.Wait()
	close(stop)
	wg.Wait()
	if e := readErr.Load(); e != nil {
		t.Fatal(e)
	}
	x, _ := c.Do(ctx, "GET", "{tx}x").Int64()
	y, _ := c.Do(ctx, "GET", "{tx}y").Int64()
	if x != writers*each || y != writers*each {
		t.Fatalf("x=%d y=%d, want %d each", x, y, writers*each)
	}
	if torn.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d transactional reads saw x != y", torn.Load(), reads.Load())
	}
	t.Logf("%d transactional reads during %d paired INCR transactions, none torn", reads.Load(), writers*each)
}

// Refusals that happen before anything is sent.
func TestTxRefusedBeforeSending(t *testing.T) {
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := keyIn(1, "a"), keyIn(9000, "b")

	p := c.TxPipeline()
	p.Do("SET", a, 1)
	p.Do("SET", b, 1)
	if _, err := p.Exec(ctx); !errors.Is(err, ErrCrossSlot) {
		t.Fatalf("TxPipeline across slots: %v, want ErrCrossSlot", err)
	}
	p.Do("SET", a, 1)
	p.Do("MULTI")
	if _, err := p.Exec(ctx); !errors.Is(err, ErrConnState) {
		t.Fatalf("MULTI inside TxPipeline: %v, want ErrConnState", err)
	}
	if n, _ := c.Do(ctx, "EXISTS", a).Int64(); n != 0 {
		t.Fatal("a refused transaction wrote")
	}
	if err := c.Watch(ctx, func(*Tx) error { return nil }, a, b); !errors.Is(err, ErrCrossSlot) {
		t.Fatalf("Watch across slots: %v, want ErrCrossSlot", err)
	}
	ran := false
	err := c.Watch(ctx, func(tx *Tx) error {
		ran = true
		if err := tx.Do(ctx, "GET", b).Err(); !errors.Is(err, ErrCrossSlot) {
			return fmt.Errorf("tx.Do outside the slot: %v", err)
		}
		if err := tx.Do(ctx, "MULTI").Err(); !errors.Is(err, ErrConnState) {
			return fmt.Errorf("tx.Do MULTI: %v", err)
		}
		_, err := tx.TxPipelined(ctx, func(p *Pipeline) error {
			p.Do("SET", b, 1)
			return nil
		})
		if !errors.Is(err, ErrCrossSlot) {
			return fmt.Errorf("TxPipelined outside the slot: %v", err)
		}
		return nil
	}, a)
	if err != nil || !ran {
		t.Fatal(err)
	}
	// A command the server refuses at queue time aborts the transaction.
	p.Do("SET", a, 1)
	p.Do("INCR", a, "extra-arg")
	res, err := p.Exec(ctx)
	if !errors.Is(err, ErrExecAbort) || res[1].Kind() != KindError {
		t.Fatalf("EXECABORT: %v, %v", err, res)
	}
	if n, _ := c.Do(ctx, "EXISTS", a).Int64(); n != 0 {
		t.Fatal("an aborted transaction wrote")
	}
}
