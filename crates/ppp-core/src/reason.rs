//! Why an owner closes a machine.

use std::fmt;

/// Why the owner closes a link, a session or a call: the administrative Close of RFC 1661 with its
/// cause.
///
/// [`Display`](fmt::Display) gives the words that go into our LCP Terminate-Request (pppd sends
/// "User request" for a user's hang-up), and the variant is what logs, exit codes and accounting
/// (RADIUS Acct-Terminate-Cause) look at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The user of this end hung up (pppd's "User request"; RADIUS User-Request).
    UserRequest,
    /// An operator or an authorization server ended the session (RADIUS Admin-Reset, a
    /// Disconnect-Request).
    AdminReset,
    /// No traffic for the configured idle time (RADIUS Idle-Timeout).
    IdleTimeout,
    /// The session reached its maximum duration (RADIUS Session-Timeout).
    SessionTimeout,
    /// The program is shutting down (RADIUS NAS-Reboot).
    Shutdown,
    /// Another session of the same user replaced this one (RouterOS `only-one`).
    Replaced,
    /// Any other cause, in the words to send.
    Other(String),
}

impl CloseReason {
    /// The text for a Terminate-Request or a PADT Generic-Error.
    pub fn text(&self) -> &str {
        match self {
            CloseReason::UserRequest => "User request",
            CloseReason::AdminReset => "Administrative reset",
            CloseReason::IdleTimeout => "Idle timeout",
            CloseReason::SessionTimeout => "Session timeout",
            CloseReason::Shutdown => "Shutting down",
            CloseReason::Replaced => "Replaced by a new session",
            CloseReason::Other(text) => text,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl From<&str> for CloseReason {
    fn from(text: &str) -> Self {
        CloseReason::Other(text.to_owned())
    }
}

impl From<String> for CloseReason {
    fn from(text: String) -> Self {
        CloseReason::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(CloseReason::UserRequest.to_string(), "User request");
        assert_eq!(CloseReason::from("bye").to_string(), "bye");
        assert_eq!(CloseReason::IdleTimeout.text(), "Idle timeout");
    }
}
