package agent

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// NotifySystemd tells systemd (Type=notify) when the agent is ready to
// enforce, and then, if the unit sets WatchdogSec, keeps its watchdog fed
// at half the interval until ctx is done. It does nothing outside systemd.
//
// The watchdog is what ends a stopped agent: a process stopped by SIGSTOP
// runs no code, so its covered opens would wait for it indefinitely (the
// deadline runs inside the agent). A stopped agent stops feeding the
// watchdog, and systemd kills and restarts it after WatchdogSec (the
// kernel allows the pending events when the descriptor closes). In a
// pod, the exec liveness probe does the same.
func (a *Agent) NotifySystemd(ctx context.Context) {
	for !a.ready.Load() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		a.log.Warn("telling systemd the agent is ready", "error", err)
	} else if !ok {
		return // not started by systemd with a notify socket
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		a.log.Warn("systemd watchdog settings", "error", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
			a.log.Warn("feeding the systemd watchdog", "error", err)
		}
		select {
		case <-ctx.Done():
			_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
			return
		case <-t.C:
		}
	}
}
