package client

import (
	"reflect"
	"testing"

	"github.com/slotrouter/slotrouter/internal/redistest"
	"github.com/slotrouter/slotrouter/router"
)

// Client.Router used to hand out the live router, so any caller could
// Close it, mark nodes suspect or change its refresh interval. The view it
// returns now only reads.
func TestRouterViewIsReadOnly(t *testing.T) {
	typ := reflect.TypeOf(RouterView{})
	for _, m := range []string{"Close", "MarkSuspect", "ClearSuspect", "SetRefreshInterval", "Refresh", "TriggerRefresh", "ObserveLatency", "OnReply", "OnFailure", "Wait"} {
		if _, ok := typ.MethodByName(m); ok {
			t.Errorf("RouterView has %s", m)
		}
	}
	cl := startCluster(t, redistest.ClusterOptions{Masters: 3})
	c := newTestClient(t, cl, Options{})
	v := c.Router()
	addr, err := v.Target(&router.Attempt{Slot: 100, HasSlot: true})
	if err != nil || addr != cl.MasterOf(100).Addr {
		t.Fatalf("Target(100) = %q %v, want %s", addr, err, cl.MasterOf(100).Addr)
	}
	if v.Snapshot() == nil || v.IsSuspect(addr) {
		t.Fatal("view: no snapshot, or a healthy node suspect")
	}
}
