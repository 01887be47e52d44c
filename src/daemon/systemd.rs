//! systemd notify protocol. Every call is a no-op without NOTIFY_SOCKET
//! (sd-notify checks), and a failed send is logged, never fatal: the daemon
//! must run the same under systemd, in a container or in a terminal.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Migrations are applied and the loop runs.
pub(crate) fn ready() {
    send(&[NotifyState::Ready]);
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

pub(crate) fn status(line: &str) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        send(&[NotifyState::Status(line)]);
    }
}

pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Half of WATCHDOG_USEC, as systemd recommends, when the watchdog is on.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}
