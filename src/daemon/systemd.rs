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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// The only test in this binary that touches the notify variables.
    #[test]
    fn speaks_the_notify_protocol_when_asked_and_is_silent_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // SAFETY: no other test in this binary reads these variables.
        unsafe {
            std::env::set_var("NOTIFY_SOCKET", &path);
            std::env::set_var("WATCHDOG_USEC", "4000000");
            std::env::remove_var("WATCHDOG_PID");
        }
        ready();
        status("3 in flight");
        watchdog();
        stopping();
        assert_eq!(watchdog_interval(), Some(Duration::from_secs(2)));
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for _ in 0..4 {
            let n = sock.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
        }
        assert_eq!(
            got,
            ["READY=1", "STATUS=3 in flight", "WATCHDOG=1", "STOPPING=1"]
        );

        unsafe {
            std::env::remove_var("NOTIFY_SOCKET");
            std::env::remove_var("WATCHDOG_USEC");
        }
        ready();
        status("quiet");
        assert_eq!(watchdog_interval(), None);
        sock.set_nonblocking(true).unwrap();
        assert!(
            sock.recv(&mut buf).is_err(),
            "nothing sent without NOTIFY_SOCKET"
        );
    }
}
