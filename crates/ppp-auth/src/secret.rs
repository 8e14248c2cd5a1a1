//! Secrets: the [`Secret`] wrapper, the async [`SecretsBackend`] the caller resolves lookups
//! with, and [`SecretsTable`], an in-memory store that also reads pppd's `chap-secrets` /
//! `pap-secrets` format.

use std::fmt;
use std::net::Ipv4Addr;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::AuthError;

/// A password or CHAP secret. Zeroized on drop; its `Debug` prints `Secret(***)`; compared in
/// constant time. Nothing in this crate logs one.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret's bytes; do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality with `other` (the length may leak, the contents do not).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.ct_eq(other).into()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(&other.0)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Secret(v)
    }
}

impl From<&[u8]> for Secret {
    fn from(v: &[u8]) -> Self {
        Secret::new(v)
    }
}

/// One word of the address list of a secrets entry (pppd(8) "AUTHENTICATION").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowedAddress {
    /// `*`: any address.
    Any,
    /// `-`: no address at all (the peer may not use IP).
    Nothing,
    /// One address, `a.b.c.d`.
    Exact(Ipv4Addr),
    /// A subnet, `a.b.c.d/n`.
    Subnet(Ipv4Addr, u8),
    /// `!a.b.c.d` or `!a.b.c.d/n`: excluded.
    Excluded(Ipv4Addr, u8),
    /// Anything else (a host name, `+ifname`...), kept for the caller to interpret.
    Other(String),
}

impl AllowedAddress {
    /// Reads one word of a pppd address list.
    pub fn parse(word: &str) -> Self {
        fn net(s: &str) -> Option<(Ipv4Addr, u8)> {
            match s.split_once('/') {
                Some((a, n)) => {
                    let n: u8 = n.parse().ok()?;
                    (n <= 32).then_some(())?;
                    Some((a.parse().ok()?, n))
                }
                None => Some((s.parse().ok()?, 32)),
            }
        }
        match word {
            "*" => AllowedAddress::Any,
            "-" => AllowedAddress::Nothing,
            _ => {
                if let Some(rest) = word.strip_prefix('!') {
                    if let Some((a, n)) = net(rest) {
                        return AllowedAddress::Excluded(a, n);
                    }
                } else if let Some((a, n)) = net(word) {
                    return if word.contains('/') {
                        AllowedAddress::Subnet(a, n)
                    } else {
                        AllowedAddress::Exact(a)
                    };
                }
                AllowedAddress::Other(word.to_owned())
            }
        }
    }
}

fn in_subnet(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    u32::from(addr) & mask == u32::from(net) & mask
}

/// What a secrets lookup finds: the secret, the addresses the peer may use (for IPCP) and an
/// optional profile name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretEntry {
    /// The secret (password).
    pub secret: Secret,
    /// The address list, in file order; empty means no restriction was given.
    pub addresses: Vec<AllowedAddress>,
    /// A profile name the caller may attach (pppd files have none; this crate never sets it).
    pub profile: Option<String>,
}

impl SecretEntry {
    /// An entry with `secret` and no address restriction.
    pub fn new(secret: impl Into<Secret>) -> Self {
        SecretEntry {
            secret: secret.into(),
            addresses: Vec::new(),
            profile: None,
        }
    }

    /// The address to assign the peer: the first address word, if it is one plain address.
    pub fn assigned_address(&self) -> Option<Ipv4Addr> {
        match self.addresses.first() {
            Some(AllowedAddress::Exact(a)) => Some(*a),
            _ => None,
        }
    }

    /// Whether the peer may use `addr`: no list allows anything; otherwise `addr` must not be
    /// excluded and must match `*`, an exact address or a subnet (`-` allows nothing).
    pub fn allows(&self, addr: Ipv4Addr) -> bool {
        if self.addresses.is_empty() {
            return true;
        }
        let excluded = self
            .addresses
            .iter()
            .any(|a| matches!(a, AllowedAddress::Excluded(net, n) if in_subnet(addr, *net, *n)));
        !excluded
            && self.addresses.iter().any(|a| match a {
                AllowedAddress::Any => true,
                AllowedAddress::Exact(a) => *a == addr,
                AllowedAddress::Subnet(net, n) => in_subnet(addr, *net, *n),
                _ => false,
            })
    }
}

/// Where the authenticator's secrets come from. The machines never call it: they emit a
/// [`SecretRequest`](crate::SecretRequest), the caller awaits `lookup` and feeds the answer back
/// with [`provide_secret`](crate::Authenticator::provide_secret).
#[async_trait::async_trait]
pub trait SecretsBackend: Send + Sync {
    /// The entry for `client` (the name the peer authenticates as) talking to `server` (our
    /// name), or `None` if there is none.
    async fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry>;
}

#[async_trait::async_trait]
impl<T: SecretsBackend + ?Sized> SecretsBackend for std::sync::Arc<T> {
    async fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry> {
        (**self).lookup(client, server).await
    }
}

/// One line of a secrets table: client and server names (`*` is a wildcard) and the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsLine {
    /// The client name, or `*`.
    pub client: String,
    /// The server name, or `*`.
    pub server: String,
    /// What the line gives.
    pub entry: SecretEntry,
}

/// An in-memory secrets store with pppd's matching: `*` matches any name, and among matching
/// lines an exact client beats an exact server, which beats two wildcards; among equals the first
/// line wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretsTable {
    lines: Vec<SecretsLine>,
}

impl SecretsTable {
    /// An empty table.
    pub fn new() -> Self {
        SecretsTable::default()
    }

    /// Adds a line.
    pub fn insert(&mut self, client: &str, server: &str, entry: SecretEntry) -> &mut Self {
        self.lines.push(SecretsLine {
            client: client.to_owned(),
            server: server.to_owned(),
            entry,
        });
        self
    }

    /// The lines, in order.
    pub fn lines(&self) -> &[SecretsLine] {
        &self.lines
    }

    /// Reads pppd's `chap-secrets` / `pap-secrets` format: one entry per line, `client server
    /// secret [address ...]`; `#` starts a comment; words may be quoted with `"` or `'` (to hold
    /// spaces or `#`); a backslash escapes the next character, and a backslash at the end of a
    /// line continues the entry on the next. Lines with fewer than three words are skipped, as
    /// pppd does. Words after a `--` word (pppd's per-user options) are ignored, and `@file`
    /// secrets are kept literally (reading files is the caller's business).
    pub fn parse_pppd(text: &str) -> Result<Self, AuthError> {
        let mut table = SecretsTable::new();
        for (line, words) in split_entries(text)? {
            let mut words = words.into_iter();
            let (Some(client), Some(server), Some(secret)) =
                (words.next(), words.next(), words.next())
            else {
                tracing::debug!("secrets line {line}: fewer than 3 words, skipped");
                continue;
            };
            let addresses = words
                .take_while(|w| w != "--")
                .map(|w| AllowedAddress::parse(&w))
                .collect();
            table.insert(
                &client,
                &server,
                SecretEntry {
                    secret: Secret::new(secret),
                    addresses,
                    profile: None,
                },
            );
        }
        Ok(table)
    }

    /// The best line for `client` talking to `server` (see the type's docs for the precedence).
    pub fn find(&self, client: &str, server: &str) -> Option<&SecretsLine> {
        let mut best: Option<(u8, &SecretsLine)> = None;
        for line in &self.lines {
            let client_exact = line.client == client;
            let server_exact = line.server == server;
            if !(client_exact || line.client == "*") || !(server_exact || line.server == "*") {
                continue;
            }
            let score = u8::from(client_exact) * 2 + u8::from(server_exact);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, line));
                if score == 3 {
                    break;
                }
            }
        }
        best.map(|(_, line)| line)
    }

    /// The entry for `client` talking to `server`, without awaiting.
    pub fn lookup_now(&self, client: &str, server: &str) -> Option<SecretEntry> {
        self.find(client, server).map(|line| line.entry.clone())
    }
}

#[async_trait::async_trait]
impl SecretsBackend for SecretsTable {
    async fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry> {
        self.lookup_now(client, server)
    }
}

/// Splits secrets-file text into entries of words, each with its first line number.
fn split_entries(text: &str) -> Result<Vec<(usize, Vec<String>)>, AuthError> {
    let mut entries = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut line = 1;
    let mut entry_line = 1;
    let mut chars = text.chars().peekable();
    let mut comment = false;
    while let Some(c) = chars.next() {
        if comment {
            if c == '\n' {
                comment = false;
            } else {
                continue;
            }
        }
        match c {
            '\\' => match chars.next() {
                Some('\n') => line += 1, // continuation
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => {}
            },
            _ if quote == Some(c) => quote = None,
            '\n' if quote.is_some() => {
                return Err(AuthError::SecretsSyntax {
                    line,
                    problem: "unterminated quote",
                });
            }
            _ if quote.is_some() => word.push(c),
            '"' | '\'' => {
                quote = Some(c);
                in_word = true;
            }
            '#' if !in_word => comment = true,
            '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !words.is_empty() {
                    entries.push((entry_line, std::mem::take(&mut words)));
                }
                line += 1;
                entry_line = line;
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(AuthError::SecretsSyntax {
            line,
            problem: "unterminated quote",
        });
    }
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        entries.push((entry_line, words));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_zeroized_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<Secret>();
        zeroized_on_drop::<crate::MsChapKeyMaterial>();
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    const FILE: &str = r#"
# Secrets for authentication using CHAP
# client	server	secret			IP addresses
alice		*	"pass word"		192.0.2.5
alice		gw1	exact#hash		192.0.2.6 198.51.100.0/24 !198.51.100.3
*		gw1	anybody			-
"bob smith"	*	'it''s'  # trailing comment
carol * \"quoted\" *
dave * long\
  continued 192.0.2.7
short line
eve * pw -- ms-dns 1.2.3.4
"#;

    #[test]
    fn parses_quotes_comments_and_addresses() {
        let table = SecretsTable::parse_pppd(FILE).unwrap();
        let lines = table.lines();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0].client, "alice");
        assert_eq!(lines[0].entry.secret, Secret::new("pass word"));
        assert_eq!(
            lines[0].entry.assigned_address(),
            Some(Ipv4Addr::new(192, 0, 2, 5))
        );
        assert_eq!(lines[1].entry.secret, Secret::new("exact#hash"));
        assert_eq!(
            lines[1].entry.addresses,
            [
                AllowedAddress::Exact(Ipv4Addr::new(192, 0, 2, 6)),
                AllowedAddress::Subnet(Ipv4Addr::new(198, 51, 100, 0), 24),
                AllowedAddress::Excluded(Ipv4Addr::new(198, 51, 100, 3), 32),
            ]
        );
        assert_eq!(lines[2].entry.addresses, [AllowedAddress::Nothing]);
        assert_eq!(lines[2].entry.assigned_address(), None);
        assert_eq!(lines[3].client, "bob smith");
        assert_eq!(lines[3].entry.secret, Secret::new("its"));
        assert!(lines[3].entry.addresses.is_empty());
        assert_eq!(lines[4].entry.secret, Secret::new("\"quoted\""));
        assert_eq!(lines[4].entry.addresses, [AllowedAddress::Any]);
        assert_eq!(lines[5].client, "dave");
        assert_eq!(lines[5].entry.secret, Secret::new("long"));
        assert_eq!(
            lines[5].entry.addresses,
            [
                AllowedAddress::Other("continued".into()),
                AllowedAddress::Exact(Ipv4Addr::new(192, 0, 2, 7))
            ]
        );
        assert_eq!(lines[6].entry.secret, Secret::new("pw"));
        assert!(lines[6].entry.addresses.is_empty());
    }

    #[test]
    fn precedence_exact_beats_wildcard() {
        let table = SecretsTable::parse_pppd(FILE).unwrap();
        let secret = |c: &str, s: &str| table.lookup_now(c, s).map(|e| e.secret);
        // Exact client and server beats exact client + wildcard server listed first.
        assert_eq!(secret("alice", "gw1"), Some(Secret::new("exact#hash")));
        assert_eq!(secret("alice", "gw2"), Some(Secret::new("pass word")));
        // Wildcard client, exact server.
        assert_eq!(secret("mallory", "gw1"), Some(Secret::new("anybody")));
        assert_eq!(secret("mallory", "gw2"), None);
        assert_eq!(secret("bob smith", "x"), Some(Secret::new("its")));
        // Exact client with wildcard server beats wildcard client with exact server.
        let mut t = SecretsTable::new();
        t.insert("*", "srv", SecretEntry::new("a"))
            .insert("u", "*", SecretEntry::new("b"));
        assert_eq!(
            t.lookup_now("u", "srv").map(|e| e.secret),
            Some(Secret::new("b"))
        );
        // Among equals, the first wins.
        let mut t = SecretsTable::new();
        t.insert("*", "*", SecretEntry::new("first"))
            .insert("*", "*", SecretEntry::new("second"));
        assert_eq!(
            t.lookup_now("x", "y").map(|e| e.secret),
            Some(Secret::new("first"))
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            SecretsTable::parse_pppd("a b c\nx y \"open\nz").unwrap_err(),
            AuthError::SecretsSyntax {
                line: 2,
                problem: "unterminated quote"
            }
        );
    }

    #[test]
    fn allows_checks_the_list() {
        let table = SecretsTable::parse_pppd(FILE).unwrap();
        let e = &table.lines()[1].entry;
        assert!(e.allows(Ipv4Addr::new(192, 0, 2, 6)));
        assert!(e.allows(Ipv4Addr::new(198, 51, 100, 99)));
        assert!(!e.allows(Ipv4Addr::new(198, 51, 100, 3)));
        assert!(!e.allows(Ipv4Addr::new(198, 51, 101, 1)));
        assert!(!table.lines()[2].entry.allows(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(SecretEntry::new("x").allows(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn secret_debug_is_hidden() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
        assert!(!format!("{:?}", SecretEntry::new("hunter2")).contains("hunter2"));
    }
}
