// Command proxy serves one ordinary Redis address in front of a Redis
// Cluster, a Sentinel-managed master, role-checked endpoints or DNS-named
// nodes: any Redis client (redis-cli, redis-benchmark, clients that know
// nothing of clusters) connects to -listen and slotrouter routes every
// command and rides out failovers behind it.
//
//	go run ./examples/proxy -listen 127.0.0.1:6380 -addrs 10.0.0.1:7000,10.0.0.2:7000
//	go run ./examples/proxy -listen 127.0.0.1:6380 -sentinel mymaster -addrs 10.0.0.5:26379
//	go run ./examples/proxy -listen 127.0.0.1:6380 -role-probe 500ms -addrs db1:6379,db2:6379
//	go run ./examples/proxy -listen 127.0.0.1:6380 -dns-ttl 10s -addrs node1.cluster.example:6379
//
// SIGTERM or SIGINT drains: no new connection is accepted, commands already
// read finish and get their replies, then sessions close (all of them after
// -drain at the latest).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/slotrouter/slotrouter/client"
	"github.com/slotrouter/slotrouter/proxy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:6380", "address to serve on")
	addrs := flag.String("addrs", "127.0.0.1:7000", "comma-separated backend nodes (host:port): cluster seeds, role-checked endpoints, or Sentinels with -sentinel")
	sentinel := flag.String("sentinel", "", "master name: -addrs are Sentinels watching it")
	sentinelPassword := flag.String("sentinel-password", "", "password of the Sentinels themselves")
	roleProbe := flag.Duration("role-probe", 0, "treat -addrs as one master and its replicas, probing ROLE at this interval")
	dnsTTL := flag.Duration("dns-ttl", 0, "re-resolve backend names at least this often (default 60s)")
	backendUser := flag.String("backend-user", "", "ACL user for the backend nodes")
	backendPassword := flag.String("backend-password", "", "password for the backend nodes")
	backendTLS := flag.Bool("backend-tls", false, "connect to the backend nodes with TLS")
	backendCA := flag.String("backend-ca", "", "PEM CA file to verify the backend nodes (default: system roots)")
	password := flag.String("password", "", "password clients must AUTH with (default: none)")
	tlsCert := flag.String("tls-cert", "", "PEM certificate: serve TLS on -listen (with -tls-key)")
	tlsKey := flag.String("tls-key", "", "PEM private key for -tls-cert")
	maxClients := flag.Int("max-clients", 10000, "maximum concurrent client connections")
	idempotent := flag.Bool("idempotent", false, "retry writes that may have run when their master died (only if your writes are idempotent)")
	drain := flag.Duration("drain", 10*time.Second, "on SIGTERM, how long sessions get to finish their commands")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	logJSON := flag.Bool("log-json", false, "log JSON lines instead of text")
	procs := flag.Int("procs", 0, "threads running Go code at once (GOMAXPROCS); 0: Go's default, the CPUs this process may use. 1 serves most when the proxy shares its CPUs with the servers or the load (README)")
	flag.Parse()
	if *procs > 0 {
		// Each batch hops between goroutines (session, node writer, node
		// reader); with idle Ps every hop wakes another thread, which on
		// shared CPUs costs more than the hop saves.
		runtime.GOMAXPROCS(*procs)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		handler = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(handler)

	copts := client.Options{
		Addrs:    strings.Split(*addrs, ","),
		Username: *backendUser,
		Password: *backendPassword,
		DNSTTL:   *dnsTTL,
		Logger:   log,
	}
	switch {
	case *sentinel != "":
		copts.Sentinel = &client.SentinelOptions{MasterName: *sentinel, Addrs: copts.Addrs, Password: *sentinelPassword}
	case *roleProbe > 0:
		copts.RoleProbe = &client.RoleProbeOptions{Interval: *roleProbe}
	}
	if *backendTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if *backendCA != "" {
			pem, err := os.ReadFile(*backendCA)
			if err != nil {
				return err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("no certificate in %s", *backendCA)
			}
		}
		copts.TLS = cfg
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c, err := client.New(ctx, copts)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	srv := proxy.New(c, proxy.Options{
		Password:   *password,
		MaxClients: *maxClients,
		Idempotent: *idempotent,
		Logger:     log,
	})
	log.Info("proxy: serving", "listen", l.Addr().String(), "backend", *addrs, "shards", len(c.Topology().Shards()), "procs", runtime.GOMAXPROCS(0))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case s := <-sig:
		log.Info("proxy: draining", "signal", s.String(), "sessions", srv.Sessions(), "within", *drain)
	}
	ctx, cancel = context.WithTimeout(context.Background(), *drain)
	defer cancel()
	err = srv.Shutdown(ctx)
	if err := <-served; !errors.Is(err, proxy.ErrServerClosed) {
		log.Warn("proxy: serve", "err", err)
	}
	if err != nil {
		log.Warn("proxy: sessions closed by force after the drain window", "err", err)
	}
	log.Info("proxy: stopped")
	return nil
}
