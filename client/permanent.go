package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Permanent failures: no retry can cure them, so New and calls return them
// at once instead of retrying until the deadline (a wrong password or a
// certificate that does not verify stays wrong however often it is tried).
// They keep their own types, so errors.Is(err, ErrWrongPass) and
// errors.As(err, &certErr) work on what the caller gets.

// permanent reports whether err (anywhere in its tree) is a failure that
// retrying cannot fix.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrWrongPass) || errors.Is(err, ErrNoAuth) || errors.Is(err, ErrNoPerm) ||
		errors.Is(err, ErrProtocolMismatch) || errors.Is(err, ErrSetupRefused) {
		return true
	}
	var (
		cve   *tls.CertificateVerificationError
		host  x509.HostnameError
		ua    x509.UnknownAuthorityError
		ci    x509.CertificateInvalidError
		rh    tls.RecordHeaderError
		alert tls.AlertError
	)
	return errors.As(err, &cve) || errors.As(err, &host) || errors.As(err, &ua) ||
		errors.As(err, &ci) || errors.As(err, &rh) || errors.As(err, &alert)
}

// tlsSniffAfter is how long a TLS handshake may go unanswered before the
// client checks, on a second connection, whether the port speaks plain RESP
// (a plaintext Redis waits for a newline the ClientHello may never contain,
// so the handshake would otherwise only end at DialTimeout).
const tlsSniffAfter = 100 * time.Millisecond

// handshake runs the TLS handshake on conn. When the server stays silent
// for tlsSniffAfter, a plaintext PING on another connection tells a
// plaintext port (it answers RESP: ErrProtocolMismatch at once) from a slow
// or hung one (the handshake goes on until ctx ends).
func handshake(ctx context.Context, tconn *tls.Conn, addr string, cfg *connConfig) error {
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sniff := time.AfterFunc(tlsSniffAfter, func() {
		if speaksPlainRESP(hctx, addr, cfg) {
			cancel(ErrProtocolMismatch)
		}
	})
	defer sniff.Stop()
	err := tconn.HandshakeContext(hctx)
	if err != nil && errors.Is(context.Cause(hctx), ErrProtocolMismatch) {
		return errors.Join(ErrProtocolMismatch, errors.New("the server answered plaintext RESP to a TLS client"))
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		// The first bytes back were no TLS record: a plaintext server.
		return errors.Join(ErrProtocolMismatch, err)
	}
	return err
}

// speaksPlainRESP reports whether addr answers a plaintext PING with RESP.
func speaksPlainRESP(ctx context.Context, addr string, cfg *connConfig) bool {
	conn, err := dialResolved(ctx, cfg.dialer(), addr, cfg.Resolve)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return false
	}
	return b[0] == '+' || b[0] == '-'
}

// speaksTLS reports whether addr completes (or answers with an alert) a TLS
// handshake: asked after a plaintext connection was closed or reset before
// its first reply, to tell a TLS port from a flaky one.
func speaksTLS(ctx context.Context, addr string, cfg *connConfig) bool {
	conn, err := dialResolved(ctx, cfg.dialer(), addr, cfg.Resolve)
	if err != nil {
		return false
	}
	defer conn.Close()
	host, _, _ := net.SplitHostPort(addr)
	tconn := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: host}) //nolint:gosec // a probe: nothing is sent over it
	err = tconn.HandshakeContext(ctx)
	var alert tls.AlertError
	return err == nil || errors.As(err, &alert)
}

// closedBeforeReply reports a connection that the server closed or reset
// without sending a byte: what a TLS port does to a plaintext request.
func closedBeforeReply(err error, rd *respReader) bool {
	if rd.started {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// checkContext is the nil-context guard for the API's entry points: a nil
// ctx would otherwise panic in a background goroutine (singleflight,
// refresh), where the caller cannot recover it.
func checkContext(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	return nil
}

// deadlineOf is ctx's deadline, zero for none (or a nil ctx, which process
// then refuses).
func deadlineOf(ctx context.Context) time.Time {
	if ctx == nil {
		return time.Time{}
	}
	dl, _ := ctx.Deadline()
	return dl
}
