//! Policy carried by artifacts (flags, capabilities, roles, server hints) and the verifier's
//! own policy (clock skew).

use core::fmt;
use core::time::Duration;

macro_rules! bitset {
    ($(#[$doc:meta])* $name:ident: $t:ty { $($(#[$fdoc:meta])* $flag:ident = $bit:expr, $label:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $t);

        impl $name {
            $( $(#[$fdoc])* pub const $flag: Self = Self($bit); )*
            /// No bit set.
            pub const NONE: Self = Self(0);
            /// Every bit this version names.
            pub const ALL_KNOWN: Self = Self(0 $(| $bit)*);

            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
            /// `self` with the bits of `other` added.
            #[must_use]
            pub const fn with(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
            /// `self` with the bits of `other` removed.
            #[must_use]
            pub const fn without(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }
            /// Names of the set bits this version knows, plus unknown bits in hex.
            pub fn names(self) -> Vec<String> {
                let mut v = Vec::new();
                $( if self.contains(Self::$flag) { v.push($label.to_string()); } )*
                let unknown = self.0 & !Self::ALL_KNOWN.0;
                if unknown != 0 {
                    v.push(format!("{:#x}", unknown));
                }
                v
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.names().join("|"))
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, o: Self) -> Self { self.with(o) }
        }
    };
}

bitset!(
    /// Establishment policy of an invitation (CBOR key 10).
    Flags: u32 {
        /// The invitee may fall back to a TURN or peer relay when direct paths fail.
        RELAY_ALLOWED = 1, "relay-allowed";
        /// The invitee may answer with an RSVP (phase 2) when phase 1 fails.
        RSVP_ALLOWED = 2, "rsvp-allowed";
    }
);

bitset!(
    /// Rights granted to a member (invitations: what the invitee will be granted; membership
    /// records: what the member holds). Bits 16–31 are for applications.
    Capabilities: u32 {
        /// May introduce other members to each other.
        INTRODUCE = 1, "introduce";
        /// May issue invitations (with rights no wider than its own).
        INVITE = 2, "invite";
        /// May relay traffic for other members.
        RELAY = 4, "relay";
        /// May revoke members' credentials.
        REVOKE = 8, "revoke";
    }
);

/// The overlay role an invitation proposes for the invitee (CBOR key 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TopologyRole {
    /// Let the topology policy decide.
    #[default]
    Auto,
    /// An edge node: attaches to others, carries no transit.
    Leaf,
    /// A hub / super-peer: others attach to it.
    Hub,
    /// A role this version does not know (kept as its number).
    Other(u64),
}

impl TopologyRole {
    pub(crate) fn code(self) -> u64 {
        match self {
            TopologyRole::Auto => 0,
            TopologyRole::Leaf => 1,
            TopologyRole::Hub => 2,
            TopologyRole::Other(n) => n,
        }
    }
    pub(crate) fn from_code(n: u64) -> Self {
        match n {
            0 => TopologyRole::Auto,
            1 => TopologyRole::Leaf,
            2 => TopologyRole::Hub,
            n => TopologyRole::Other(n),
        }
    }
}

/// Kinds of optional server an invitation may suggest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// A STUN server (RFC 8489).
    Stun,
    /// A TURN server (RFC 8656).
    Turn,
    /// An in8 rendezvous / mailbox server.
    Rendezvous,
}

/// An optional accelerator the invitee may use: never required for the join to work.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerHint {
    /// What the server offers.
    pub kind: ServerKind,
    /// Host name or IP literal (at most 253 bytes).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl ServerKind {
    pub(crate) fn code(self) -> u64 {
        match self {
            ServerKind::Stun => 0,
            ServerKind::Turn => 1,
            ServerKind::Rendezvous => 2,
        }
    }
    pub(crate) fn from_code(n: u64) -> Option<Self> {
        match n {
            0 => Some(ServerKind::Stun),
            1 => Some(ServerKind::Turn),
            2 => Some(ServerKind::Rendezvous),
            _ => None,
        }
    }
}

/// The verifier's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Clock difference tolerated between issuer and verifier, applied to expiry and
    /// not-before. Default 120 s; capped at [`VerifyPolicy::MAX_SKEW`].
    pub max_skew: Duration,
}

impl VerifyPolicy {
    /// The largest skew a verifier may configure (10 minutes).
    pub const MAX_SKEW: Duration = Duration::from_secs(600);

    /// The effective skew (the configured one, capped).
    pub fn skew(&self) -> Duration {
        self.max_skew.min(Self::MAX_SKEW)
    }
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            max_skew: Duration::from_secs(120),
        }
    }
}
