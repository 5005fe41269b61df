package proxy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parseAll reads every request of in, feeding the reader chunk bytes at a
// time, and returns them and the error that ended the stream.
func parseAll(in []byte, chunk int, authed bool) ([][]string, error) {
	q := newRequestReader(&chunkReader{b: in, n: chunk})
	q.authed = authed
	var out [][]string
	for range 100000 {
		_, args, err := q.next(nil, nil, true)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
		req := make([]string, len(args))
		for i, a := range args {
			req[i] = string(a)
		}
		out = append(out, req)
	}
	return out, errors.New("too many requests")
}

type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestRequestReader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
		err  string
	}{
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}, ""},
		{"*1\r\n$0\r\n\r\n*0\r\n*-1\r\nPING\r\n", [][]string{{""}, {"PING"}}, ""},
		{"SET k \"a\\tb\\x41\\\"\" 'it\\'s'\r\n\r\n  \r\nGET k\n", [][]string{{"SET", "k", "a\tbA\"", "it's"}, {"GET", "k"}}, ""},
		{"SET \"a\"b\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"SET 'a\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"*2\r\n$3\r\nGET\r\n+k\r\n", nil, "Protocol error: expected '$', got '+'"},
		{"*1\r\n$3\r\nGETXX\r\n", nil, "Protocol error: bulk not terminated by CRLF"},
		{"*1\r\n$-1\r\n", nil, "Protocol error: invalid bulk length"},
		{"*1\r\n$1x\r\n", nil, "Protocol error: invalid bulk length"},
		{"*-2x\r\n", nil, "Protocol error: invalid multibulk length"},
		{"*1\n", nil, "Protocol error: line not terminated by CRLF"},
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			got, err := parseAll([]byte(tc.in), chunk, true)
			if tc.err != "" {
				require.EqualError(t, err, tc.err, "%q chunk %d", tc.in, chunk)
				continue
			}
			require.NoError(t, err, "%q chunk %d", tc.in, chunk)
			require.Equal(t, tc.want, got, "%q chunk %d", tc.in, chunk)
		}
	}
	// Before AUTH: Redis's small limits.
	_, err := parseAll([]byte("*11\r\n"), 1<<20, false)
	require.EqualError(t, err, "Protocol error: unauthenticated multibulk length")
	_, err = parseAll([]byte("*1\r\n$16385\r\n"), 1<<20, false)
	require.EqualError(t, err, "Protocol error: unauthenticated bulk length")
	// A request bigger than the buffer arrives in pieces.
	big := strings.Repeat("x", 300000)
	got, err := parseAll([]byte(encode("SET", "k", big)), 7000, true)
	require.NoError(t, err)
	require.Equal(t, [][]string{{"SET", "k", big}}, got)
}

// TestRequestReaderSeeds parses the captured client traffic.
func TestRequestReaderSeeds(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.bin")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		got, err := parseAll(b, 1<<20, true)
		require.NoError(t, err, f)
		require.NotEmpty(t, got, f)
		one, err := parseAll(b, 1, true)
		require.NoError(t, err, f)
		require.Equal(t, got, one, "%s: byte-at-a-time parse differs", f)
	}
}

// FuzzRequestReader: no input panics; a parse is the same however the
// bytes are split; every request parsed re-encodes to bytes that parse to
// the same request.
func FuzzRequestReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.bin")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b, uint8(7))
		}
	}
	f.Add([]byte("*1\r\n$536870912\r\nab"), uint8(1))
	f.Add([]byte("SET \"a\\x4"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole, werr := parseAll(in, 1<<20, true)
		split, serr := parseAll(in, int(chunk)%16+1, true)
		require.Equal(t, whole, split)
		require.Equal(t, werr == nil, serr == nil)
		var re bytes.Buffer
		for _, req := range whole {
			re.WriteString(encode(req...))
		}
		again, err := parseAll(re.Bytes(), 1<<20, true)
		require.NoError(t, err)
		require.Equal(t, whole, again)
	})
}
