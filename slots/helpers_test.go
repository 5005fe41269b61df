package slots

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// readLines returns the non-comment, non-blank lines of a testdata file.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "# ") || line == "#" {
			continue
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// splitArgs splits a corpus line into arguments: space separated, with
// Go-quoted tokens for arguments that contain spaces or are empty.
func splitArgs(t testing.TB, line string) [][]byte {
	t.Helper()
	var args [][]byte
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == '"' {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			s, _ := strconv.Unquote(q)
			args = append(args, []byte(s))
			rest = rest[len(q):]
			continue
		}
		tok, after, _ := strings.Cut(rest, " ")
		args = append(args, []byte(tok))
		rest = after
	}
	return args
}

type knownSlot struct {
	key  []byte
	slot Slot
}

// knownSlots reads the CLUSTER KEYSLOT answers recorded from a real server.
func knownSlots(t testing.TB) []knownSlot {
	t.Helper()
	var out []knownSlot
	for _, line := range readLines(t, "../testdata/commands/keyslots.txt") {
		q, err := strconv.QuotedPrefix(line)
		if err != nil {
			t.Fatalf("keyslots.txt %q: %v", line, err)
		}
		key, _ := strconv.Unquote(q)
		n, err := strconv.Atoi(strings.TrimSpace(line[len(q):]))
		if err != nil {
			t.Fatalf("keyslots.txt %q: %v", line, err)
		}
		out = append(out, knownSlot{[]byte(key), Slot(n)})
	}
	return out
}

func corpus(t testing.TB) [][][]byte {
	t.Helper()
	var out [][][]byte
	for _, line := range readLines(t, "../testdata/commands/getkeys_corpus.txt") {
		out = append(out, splitArgs(t, line))
	}
	return out
}
