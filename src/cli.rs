//! What every program's `main` does the same way: logging, termination signals and exit codes.

use std::process::ExitCode;

use ppp_link::{AuthFailure, AuthSide, DownReason};

/// Logs to stderr, pppd-style packet summaries included with `verbose` (debug level). Colours
/// only when stderr is a terminal: a redirected log file gets plain text.
pub fn init_logs(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `error` with the object it is about in front (`/run/x.sock: Permission denied`), the kind
/// kept: every error an operator reads names its object.
pub fn named(object: impl std::fmt::Display, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{object}: {error}"))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = sigterm => {}
    }
}

/// Why a program ended, as its exit status. The numbers are pppd's (`man pppd`, EXIT STATUS)
/// where pppd has the same cause, so scripts written for pppd read them the same way; the
/// table is in `docs/dial-out.md` and `docs/pppoe.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// 0: the link came up and ended normally (we were told to stop, or the peer terminated
    /// it), or the job asked for (`--ping`, `--once`) was done. pppd exits 5 when stopped by a
    /// signal; these programs treat a requested stop as success.
    Success,
    /// 1: an essential system call failed (TUN device, pcap file, control socket, entropy).
    Fatal,
    /// 2: the options or the configuration file are unusable.
    Options,
    /// 7: the serial port or the Ethernet interface could not be opened.
    OpenFailed,
    /// 8: the connection could not be made: the modem sequence or chat script failed (BUSY,
    /// NO CARRIER, a wrong PIN, no registration), or PPPoE discovery found no session.
    ConnectFailed,
    /// 10: PPP negotiation failed: LCP, the network protocols or required encryption never
    /// came up.
    NegotiationFailed,
    /// 11: the peer failed (or refused) to authenticate itself to us.
    PeerAuthFailed,
    /// 12: the link was up and was closed because it was idle.
    IdleTimeout,
    /// 15: the peer stopped answering LCP Echo-Requests (keepalive).
    PeerDead,
    /// 16: the line went away: the modem hung up (NO CARRIER, DCD), the serial line closed,
    /// or the access concentrator ended the PPPoE session (PADT).
    HangUp,
    /// 17: our own Magic-Number came back: the line is looped back.
    Loopback,
    /// 19: we failed to authenticate ourselves to the peer (a rejected password, or no
    /// credentials for the method the peer asked for).
    AuthFailed,
    /// 30 (not pppd's): `dial-out dial --ping N` did not get N echo replies before its
    /// deadline.
    PingFailed,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Fatal => 1,
            ExitStatus::Options => 2,
            ExitStatus::OpenFailed => 7,
            ExitStatus::ConnectFailed => 8,
            ExitStatus::NegotiationFailed => 10,
            ExitStatus::PeerAuthFailed => 11,
            ExitStatus::IdleTimeout => 12,
            ExitStatus::PeerDead => 15,
            ExitStatus::HangUp => 16,
            ExitStatus::Loopback => 17,
            ExitStatus::AuthFailed => 19,
            ExitStatus::PingFailed => 30,
        }
    }

    /// Why PPP went down, as an exit status. `was_up`: the network phase was reached (a peer's
    /// Terminate-Request after that is a normal end, before it a failed negotiation).
    pub fn from_down_reason(reason: &DownReason, was_up: bool) -> Self {
        match reason {
            DownReason::Closed(_) => ExitStatus::Success,
            DownReason::PeerTerminated { .. } if was_up => ExitStatus::Success,
            DownReason::LowerLayerDown => ExitStatus::HangUp,
            DownReason::EchoTimeout => ExitStatus::PeerDead,
            DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Peer,
                ..
            }) => ExitStatus::PeerAuthFailed,
            DownReason::AuthFailed(_) | DownReason::NoCredentials { .. } => ExitStatus::AuthFailed,
            DownReason::LoopbackDetected => ExitStatus::Loopback,
            _ => ExitStatus::NegotiationFailed,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    /// "19 (we failed to authenticate to the peer)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words = match self {
            ExitStatus::Success => "success",
            ExitStatus::Fatal => "fatal error",
            ExitStatus::Options => "bad options or configuration",
            ExitStatus::OpenFailed => "cannot open the port or interface",
            ExitStatus::ConnectFailed => "the connection could not be made",
            ExitStatus::NegotiationFailed => "PPP negotiation failed",
            ExitStatus::PeerAuthFailed => "the peer failed to authenticate",
            ExitStatus::IdleTimeout => "idle timeout",
            ExitStatus::PeerDead => "the peer stopped answering LCP echo requests",
            ExitStatus::HangUp => "the line hung up",
            ExitStatus::Loopback => "the line is looped back",
            ExitStatus::AuthFailed => "we failed to authenticate to the peer",
            ExitStatus::PingFailed => "pings unanswered",
        };
        write!(f, "{} ({words})", self.code())
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_link::CloseReason;
    use ppp_link::auth::{AuthProtocol, FailureReason};

    #[test]
    fn down_reasons_map_to_pppd_exit_codes() {
        let auth = |side| {
            DownReason::AuthFailed(AuthFailure {
                side,
                method: AuthProtocol::ChapMd5,
                reason: FailureReason::Rejected {
                    message: "no".into(),
                    error_code: None,
                },
            })
        };
        let peer_terminated = DownReason::PeerTerminated {
            message: String::new(),
        };
        for (reason, was_up, code) in [
            (DownReason::Closed(CloseReason::UserRequest), true, 0),
            (peer_terminated.clone(), true, 0),
            (peer_terminated, false, 10),
            (DownReason::EchoTimeout, true, 15),
            (DownReason::LowerLayerDown, true, 16),
            (auth(AuthSide::Us), false, 19),
            (auth(AuthSide::Peer), false, 11),
            (DownReason::LoopbackDetected, false, 17),
            (DownReason::NoNetworkProtocolsConfigured, false, 10),
        ] {
            assert_eq!(
                ExitStatus::from_down_reason(&reason, was_up).code(),
                code,
                "{reason}"
            );
        }
    }
}
