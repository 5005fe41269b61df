package live_test

import (
	"fmt"
	"time"

	"github.com/slotrouter/slotrouter/examples/internal/live"
)

func ExampleStamp() {
	fmt.Println(live.Stamp(time.Date(2026, 11, 22, 22, 10, 29, 695_000_000, time.UTC)) + "  connected")
	// Output: 22:10:29.695  connected
}
