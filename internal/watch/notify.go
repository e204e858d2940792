package watch

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// SystemdNotifier speaks systemd's notify protocol (sd_notify): datagrams
// to the unix socket $NOTIFY_SOCKET. READY=1 after the first look,
// WATCHDOG=1 from the loop.
type SystemdNotifier struct {
	addr     string
	watchdog time.Duration
}

// NewSystemdNotifier returns the notifier that the environment asks for,
// nil when the service manager does not listen (NOTIFY_SOCKET unset).
func NewSystemdNotifier(getenv func(string) string) *SystemdNotifier {
	addr := getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	n := &SystemdNotifier{addr: addr}
	if usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
		// systemd's advice: ping at half the timeout.
		n.watchdog = time.Duration(usec) * time.Microsecond / 2
	}
	return n
}

// Send sends one notification, such as "READY=1".
func (n *SystemdNotifier) Send(state string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// Ready says the first look is done.
func (n *SystemdNotifier) Ready() { n.send("READY=1") }

// Watchdog says the loop is alive.
func (n *SystemdNotifier) Watchdog() {
	if n.watchdog > 0 {
		n.send("WATCHDOG=1")
	}
}

// WatchdogEvery is half of WATCHDOG_USEC, 0 without a watchdog.
func (n *SystemdNotifier) WatchdogEvery() time.Duration { return n.watchdog }

// send sends a notification; a service manager that stopped listening
// is no reason to stop watching.
func (n *SystemdNotifier) send(state string) { _ = n.Send(state) }
