//! Which bundle a new link joins (RFC 1990 §5.1.3).
//!
//! A link that negotiated Multilink belongs to the bundle of the same peer. The peer is known by
//! what the link learned: the name it authenticated with (if authentication ran) and the
//! Endpoint Discriminator it sent in its Configure-Request (if it sent one). RFC 1990's decision
//! tree then comes down to equality of the pair:
//!
//! | authentication | discriminator | the new link joins |
//! |---|---|---|
//! | no | no | the one bundle of unidentified links |
//! | no | yes | the bundle with the same discriminator, else a new one |
//! | yes | no | the bundle with the same authenticated name, else a new one |
//! | yes | yes | the bundle with the same name *and* discriminator, else a new one |
//!
//! A discriminator of the Null class (0) is the same as none (RFC 1990 §5.1.3: it is what a
//! peer that sends no option is taken to have). An authenticated empty name is a name, not the
//! absence of authentication. pppd builds its bundle key the same way (authenticated name, the
//! peer's discriminator when negotiated), with an optional local bundle name that a caller can
//! get by keeping one registry per local name.
//!
//! An access concentrator or a dial-in server keeps one [`BundleRegistry`] and asks it, for each
//! link that finished authentication with Multilink negotiated, whether to join an existing
//! bundle or make a new one:
//!
//! ```
//! use ppp_mp::{
//!     Bundle, BundleConfig, BundleKey, BundleRegistry, EndpointDiscriminator, Join, MemberLink,
//! };
//!
//! let mut registry: BundleRegistry<Bundle> = BundleRegistry::new(1000);
//! let mac = EndpointDiscriminator::new(EndpointDiscriminator::IEEE_802, &[2, 0, 0, 0, 0, 1])?;
//! let key = BundleKey::new(Some(b"alice"), Some(mac.clone()));
//!
//! // The first link of alice's router makes a new bundle ...
//! let join = registry.join_or_create(key.clone(), || Bundle::new(BundleConfig::default()))?;
//! assert!(matches!(join, Join::Created(_)));
//! join.into_bundle().add_link(MemberLink::new(1492))?;
//! // ... the second joins it.
//! let join = registry.join_or_create(key, || Bundle::new(BundleConfig::default()))?;
//! assert!(matches!(join, Join::Existing(_)));
//! join.into_bundle().add_link(MemberLink::new(1492))?;
//! // Another router of alice's (another discriminator) gets a bundle of its own.
//! let other = EndpointDiscriminator::new(EndpointDiscriminator::IEEE_802, &[2, 0, 0, 0, 0, 2])?;
//! let join = registry.join_or_create(BundleKey::new(Some(b"alice"), Some(other)), || {
//!     Bundle::new(BundleConfig::default())
//! })?;
//! assert!(matches!(join, Join::Created(_)));
//! assert_eq!(registry.len(), 2);
//! # Ok::<(), ppp_mp::MpError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::MpError;

/// The longest address of the Locally Assigned and Magic-Number Block classes (RFC 1990
/// §5.1.3).
pub const MAX_ENDPOINT_ADDRESS_LEN: usize = 20;

/// An Endpoint Discriminator (LCP option 19, RFC 1990 §5.1.3): a class and an address whose
/// length suits the class.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointDiscriminator {
    class: u8,
    address: Vec<u8>,
}

impl EndpointDiscriminator {
    /// Class 0: no address.
    pub const NULL: u8 = 0;
    /// Class 1: a locally assigned address of up to 20 bytes.
    pub const LOCALLY_ASSIGNED: u8 = 1;
    /// Class 2: an IPv4 address (4 bytes).
    pub const IPV4: u8 = 2;
    /// Class 3: an IEEE 802.1 MAC address (6 bytes).
    pub const IEEE_802: u8 = 3;
    /// Class 4: a PPP Magic-Number block (up to five 4-byte magic numbers).
    pub const MAGIC_NUMBER_BLOCK: u8 = 4;
    /// Class 5: a public switched network directory number (up to 15 bytes).
    pub const PHONE_NUMBER: u8 = 5;

    /// A discriminator of `class` with `address`.
    ///
    /// # Errors
    ///
    /// [`MpError::InvalidEndpointDiscriminator`] for a class above 5 or an address length the
    /// class does not allow.
    pub fn new(class: u8, address: &[u8]) -> Result<Self, MpError> {
        let len = address.len();
        let valid = match class {
            Self::NULL => len == 0,
            Self::LOCALLY_ASSIGNED => len <= MAX_ENDPOINT_ADDRESS_LEN,
            Self::IPV4 => len == 4,
            Self::IEEE_802 => len == 6,
            Self::MAGIC_NUMBER_BLOCK => len <= MAX_ENDPOINT_ADDRESS_LEN && len.is_multiple_of(4),
            Self::PHONE_NUMBER => len <= 15,
            _ => false,
        };
        if !valid {
            return Err(MpError::InvalidEndpointDiscriminator { class, len });
        }
        Ok(EndpointDiscriminator {
            class,
            address: address.to_vec(),
        })
    }

    /// A discriminator from the option's data (class byte, then address).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); empty data is class 0 with a 0-byte address missing its class, an
    /// error too.
    pub fn from_option_data(data: &[u8]) -> Result<Self, MpError> {
        match data.split_first() {
            Some((&class, address)) => Self::new(class, address),
            None => Err(MpError::InvalidEndpointDiscriminator { class: 0, len: 0 }),
        }
    }

    /// The class byte.
    pub fn class(&self) -> u8 {
        self.class
    }

    /// The address bytes.
    pub fn address(&self) -> &[u8] {
        &self.address
    }

    /// Whether this is the Null class, which is the same as no discriminator.
    pub fn is_null(&self) -> bool {
        self.class == Self::NULL
    }
}

/// pppd's notation: `null`, `local:…`, `IP:192.0.2.1`, `MAC:02:00:00:00:00:01`,
/// `magic:0a0b0c0d.…`, `phone:…`.
impl fmt::Display for EndpointDiscriminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.address;
        let hex = |f: &mut fmt::Formatter<'_>, group: usize, separator: char| -> fmt::Result {
            for (i, byte) in a.iter().enumerate() {
                if i > 0 && i % group == 0 {
                    write!(f, "{separator}")?;
                }
                write!(f, "{byte:02x}")?;
            }
            Ok(())
        };
        match self.class {
            Self::NULL => f.write_str("null"),
            Self::IPV4 => write!(f, "IP:{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Self::IEEE_802 => {
                f.write_str("MAC:")?;
                hex(f, 1, ':')
            }
            Self::MAGIC_NUMBER_BLOCK => {
                f.write_str("magic:")?;
                hex(f, 4, '.')
            }
            Self::LOCALLY_ASSIGNED => {
                f.write_str("local:")?;
                hex(f, 1, '.')
            }
            _ => {
                f.write_str("phone:")?;
                hex(f, 1, '.')
            }
        }
    }
}

impl fmt::Debug for EndpointDiscriminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointDiscriminator({self})")
    }
}

/// Who the peer of a link is, as far as bundling goes: its authenticated name and its
/// Endpoint Discriminator, each if known. Two links belong to the same bundle exactly when
/// their keys are equal (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleKey {
    peer_name: Option<Vec<u8>>,
    endpoint: Option<EndpointDiscriminator>,
}

impl BundleKey {
    /// The key of a link whose peer authenticated as `peer_name` (`None`: no authentication)
    /// and sent `endpoint` (`None`: no Endpoint Discriminator option; the Null class counts as
    /// none).
    pub fn new(peer_name: Option<&[u8]>, endpoint: Option<EndpointDiscriminator>) -> Self {
        BundleKey {
            peer_name: peer_name.map(<[u8]>::to_vec),
            endpoint: endpoint.filter(|e| !e.is_null()),
        }
    }

    /// The authenticated peer name.
    pub fn peer_name(&self) -> Option<&[u8]> {
        self.peer_name.as_deref()
    }

    /// The peer's Endpoint Discriminator (never the Null class).
    pub fn endpoint(&self) -> Option<&EndpointDiscriminator> {
        self.endpoint.as_ref()
    }
}

/// Like pppd's bundle identifier: `"alice"/MAC:02:00:00:00:00:01`.
impl fmt::Display for BundleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer_name {
            Some(name) => write!(f, "\"{}\"", name.escape_ascii())?,
            None => f.write_str("(unauthenticated)")?,
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, "/{endpoint}")?;
        }
        Ok(())
    }
}

/// What [`BundleRegistry::join_or_create`] did.
#[derive(Debug)]
pub enum Join<'a, B> {
    /// The link's peer already has a bundle: add the link to it.
    Existing(&'a mut B),
    /// A new bundle was made for the link's peer.
    Created(&'a mut B),
}

impl<'a, B> Join<'a, B> {
    /// The bundle, either way.
    pub fn into_bundle(self) -> &'a mut B {
        match self {
            Join::Existing(bundle) | Join::Created(bundle) => bundle,
        }
    }
}

/// The bundles of a server, by [`BundleKey`]. `B` is whatever the server keeps per bundle: a
/// [`Bundle`](crate::Bundle), or an index into its own table.
///
/// Lookups are ordered-map lookups (no hashing, so nothing for a peer choosing names to
/// collide), and the number of bundles is capped.
#[derive(Debug)]
pub struct BundleRegistry<B> {
    bundles: BTreeMap<BundleKey, B>,
    max_bundles: usize,
}

impl<B> Default for BundleRegistry<B> {
    /// A registry of at most 4096 bundles.
    fn default() -> Self {
        Self::new(4096)
    }
}

impl<B> BundleRegistry<B> {
    /// A registry of at most `max_bundles` bundles.
    pub fn new(max_bundles: usize) -> Self {
        BundleRegistry {
            bundles: BTreeMap::new(),
            max_bundles,
        }
    }

    /// The bundle of `key`'s peer.
    pub fn find(&self, key: &BundleKey) -> Option<&B> {
        self.bundles.get(key)
    }

    /// The bundle of `key`'s peer, to change.
    pub fn find_mut(&mut self, key: &BundleKey) -> Option<&mut B> {
        self.bundles.get_mut(key)
    }

    /// The bundle a new link with `key` joins: the existing one, or one made by `create`.
    ///
    /// # Errors
    ///
    /// [`MpError::TooManyBundles`] when a new bundle is needed and the registry is full.
    pub fn join_or_create(
        &mut self,
        key: BundleKey,
        create: impl FnOnce() -> B,
    ) -> Result<Join<'_, B>, MpError> {
        let full = self.bundles.len() >= self.max_bundles;
        match self.bundles.entry(key) {
            std::collections::btree_map::Entry::Occupied(entry) => {
                Ok(Join::Existing(entry.into_mut()))
            }
            std::collections::btree_map::Entry::Vacant(_) if full => Err(MpError::TooManyBundles {
                max: self.max_bundles,
            }),
            std::collections::btree_map::Entry::Vacant(entry) => {
                Ok(Join::Created(entry.insert(create())))
            }
        }
    }

    /// Forgets a bundle (when it went down).
    pub fn remove(&mut self, key: &BundleKey) -> Option<B> {
        self.bundles.remove(key)
    }

    /// Keeps the bundles for which `keep` is true (e.g. those still up).
    pub fn retain(&mut self, mut keep: impl FnMut(&BundleKey, &mut B) -> bool) {
        self.bundles.retain(|key, bundle| keep(key, bundle));
    }

    /// The bundles.
    pub fn iter(&self) -> impl Iterator<Item = (&BundleKey, &B)> {
        self.bundles.iter()
    }

    /// How many bundles there are.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(class: u8, address: &[u8]) -> EndpointDiscriminator {
        EndpointDiscriminator::new(class, address).unwrap()
    }

    #[test]
    fn address_lengths_follow_the_class() {
        use EndpointDiscriminator as E;
        for (class, ok, bad) in [
            (E::NULL, 0, 1),
            (E::LOCALLY_ASSIGNED, 20, 21),
            (E::IPV4, 4, 5),
            (E::IEEE_802, 6, 5),
            (E::MAGIC_NUMBER_BLOCK, 20, 6),
            (E::PHONE_NUMBER, 15, 16),
        ] {
            assert!(E::new(class, &vec![1; ok]).is_ok(), "class {class}");
            assert_eq!(
                E::new(class, &vec![1; bad]),
                Err(MpError::InvalidEndpointDiscriminator { class, len: bad })
            );
        }
        assert!(E::new(6, &[]).is_err());
        assert_eq!(
            E::from_option_data(&[2, 192, 0, 2, 1]),
            Ok(ed(2, &[192, 0, 2, 1]))
        );
        assert!(E::from_option_data(&[]).is_err());
    }

    #[test]
    fn display_like_pppd() {
        assert_eq!(ed(0, &[]).to_string(), "null");
        assert_eq!(ed(2, &[192, 0, 2, 1]).to_string(), "IP:192.0.2.1");
        assert_eq!(
            ed(3, &[2, 0, 0, 0, 0, 0xAB]).to_string(),
            "MAC:02:00:00:00:00:ab"
        );
        assert_eq!(
            ed(4, &[1, 2, 3, 4, 5, 6, 7, 8]).to_string(),
            "magic:01020304.05060708"
        );
        assert_eq!(ed(1, &[0xDE, 0xAD]).to_string(), "local:de.ad");
        assert_eq!(ed(5, b"555").to_string(), "phone:35.35.35");
        let key = BundleKey::new(Some(b"alice"), Some(ed(2, &[192, 0, 2, 1])));
        assert_eq!(key.to_string(), "\"alice\"/IP:192.0.2.1");
        assert_eq!(BundleKey::new(None, None).to_string(), "(unauthenticated)");
    }

    /// The four cases of RFC 1990 §5.1.3's decision tree.
    #[test]
    fn rfc_1990_decision_tree() {
        let mac1 = ed(3, &[2, 0, 0, 0, 0, 1]);
        let mac2 = ed(3, &[2, 0, 0, 0, 0, 2]);
        let same = |a: &BundleKey, b: &BundleKey| a == b;
        // (1) Neither: all such links join one bundle.
        assert!(same(
            &BundleKey::new(None, None),
            &BundleKey::new(None, None)
        ));
        // (2) Discriminator only: joins on a match, new bundle otherwise.
        assert!(same(
            &BundleKey::new(None, Some(mac1.clone())),
            &BundleKey::new(None, Some(mac1.clone()))
        ));
        assert!(!same(
            &BundleKey::new(None, Some(mac1.clone())),
            &BundleKey::new(None, Some(mac2.clone()))
        ));
        // The same address under another class is another endpoint.
        assert!(!same(
            &BundleKey::new(None, Some(ed(1, &[2, 0, 0, 0, 0, 1]))),
            &BundleKey::new(None, Some(mac1.clone()))
        ));
        // (3) Authentication only.
        assert!(same(
            &BundleKey::new(Some(b"bob"), None),
            &BundleKey::new(Some(b"bob"), None)
        ));
        assert!(!same(
            &BundleKey::new(Some(b"bob"), None),
            &BundleKey::new(Some(b"carol"), None)
        ));
        // (4) Both must match.
        let both = BundleKey::new(Some(b"bob"), Some(mac1.clone()));
        assert!(same(
            &both,
            &BundleKey::new(Some(b"bob"), Some(mac1.clone()))
        ));
        assert!(!same(&both, &BundleKey::new(Some(b"bob"), Some(mac2))));
        assert!(!same(
            &both,
            &BundleKey::new(Some(b"carol"), Some(mac1.clone()))
        ));
        // Mixed cases never match.
        assert!(!same(&both, &BundleKey::new(Some(b"bob"), None)));
        assert!(!same(&both, &BundleKey::new(None, Some(mac1))));
        assert!(!same(
            &BundleKey::new(Some(b""), None),
            &BundleKey::new(None, None)
        ));
        // The Null class is no discriminator.
        assert!(same(
            &BundleKey::new(Some(b"bob"), Some(ed(0, &[]))),
            &BundleKey::new(Some(b"bob"), None)
        ));
    }

    #[test]
    fn registry_joins_creates_and_is_bounded() {
        let mut registry: BundleRegistry<u32> = BundleRegistry::new(2);
        let mut next = 0;
        let mut join = |registry: &mut BundleRegistry<u32>, key: BundleKey| match registry
            .join_or_create(key, || {
                next += 1;
                next
            }) {
            Ok(Join::Existing(b)) => Ok((false, *b)),
            Ok(Join::Created(b)) => Ok((true, *b)),
            Err(e) => Err(e),
        };
        let alice = BundleKey::new(Some(b"alice"), None);
        let bob = BundleKey::new(Some(b"bob"), None);
        assert_eq!(join(&mut registry, alice.clone()), Ok((true, 1)));
        assert_eq!(join(&mut registry, alice.clone()), Ok((false, 1)));
        assert_eq!(join(&mut registry, bob.clone()), Ok((true, 2)));
        assert_eq!(
            join(&mut registry, BundleKey::new(None, None)),
            Err(MpError::TooManyBundles { max: 2 })
        );
        // Existing bundles can still be joined when full.
        assert_eq!(join(&mut registry, bob.clone()), Ok((false, 2)));
        assert_eq!(registry.remove(&alice), Some(1));
        assert_eq!(registry.find(&bob), Some(&2));
        registry.retain(|_, b| *b != 2);
        assert!(registry.is_empty());
    }
}
