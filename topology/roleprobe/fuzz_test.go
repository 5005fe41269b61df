package roleprobe

import (
	"strings"
	"testing"
)

// Seeds are INFO replication replies captured from redis-server 7.0.15 (a master with one
// replica in wait_bgsave, and that replica before its link came up).
var infoSeeds = []string{
	"# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=17773,state=wait_bgsave,offset=0,lag=0\r\n" +
		"master_failover_state:no-failover\r\nmaster_replid:eca899d035bdc973fcb88f189b161c2a976f87a0\r\n" +
		"master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\n" +
		"repl_backlog_active:1\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:0\r\n",
	"# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:17772\r\nmaster_link_status:down\r\n" +
		"master_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:1\r\nslave_repl_offset:1\r\n" +
		"master_link_down_since_seconds:-1\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n" +
		"connected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:343f9954b56d212604fb2a6a55a759541fc4cc51\r\n" +
		"master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\n" +
		"repl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
}

func FuzzParseInfo(f *testing.F) {
	for _, s := range infoSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var st NodeStatus
		err := parseInfo(text, &st)
		if err != nil {
			return
		}
		switch st.Role {
		case "master", "active-replica":
			if !st.Writable {
				t.Fatalf("role %q not writable", st.Role)
			}
		case "slave":
			if st.Writable {
				t.Fatal("slave writable")
			}
		default:
			t.Fatalf("accepted unknown role %q", st.Role)
		}
		if st.MasterAddr != "" && !strings.Contains(st.MasterAddr, ":") {
			t.Fatalf("master address %q without port", st.MasterAddr)
		}
	})
}

func TestInfoSeeds(t *testing.T) {
	var m, r NodeStatus
	if err := parseInfo(infoSeeds[0], &m); err != nil || !m.Writable || m.ReplID != "eca899d035bdc973fcb88f189b161c2a976f87a0" || m.ReplID2 != "" {
		t.Fatalf("master seed: %+v %v", m, err)
	}
	if err := parseInfo(infoSeeds[1], &r); err != nil || r.MasterAddr != "127.0.0.1:17772" || r.LinkUp || r.Offset != 1 {
		t.Fatalf("replica seed: %+v %v", r, err)
	}
}
