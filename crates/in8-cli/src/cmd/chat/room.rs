//! The group chat's messages (carried in the network's signed broadcasts) and the room:
//! who takes part, and each sender's lines shown in the order sent.
//!
//! A chat message, version 1 (docs/cli.md "in8 chat"):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 1 | `0x43` ('C'): an in8 chat message |
//! | 1 | 1 | kind: 1 hello, 2 line, 3 bye |
//! | 2 | 4 | the sender's sequence number, big-endian (hello is its first) |
//! | 6 | .. | a line's UTF-8 text (nothing for hello and bye) |
//!
//! Broadcasts carry the origin's signature, so the sender is the broadcast's origin.
//! Plumtree does not order messages: a line that arrives ahead of an earlier one waits
//! (at most [`MAX_PENDING`] per sender, at most [`GAP_WAIT`]) for the gap to fill.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use in8_artifact::NodeId;

/// The first byte of every chat message.
const TAG: u8 = 0x43;
/// Lines held per sender while an earlier one is missing.
pub(crate) const MAX_PENDING: usize = 64;
/// How long a gap in a sender's lines is waited for before the lines after it are shown.
pub(crate) const GAP_WAIT: Duration = Duration::from_secs(3);
/// Longest line text in a message.
pub(crate) const MAX_TEXT: usize = 16 * 1024;
/// Most participants tracked (more are shown but not ordered).
pub(crate) const MAX_PARTICIPANTS: usize = 4096;

/// What one chat message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Say {
    /// The sender entered the chat.
    Hello,
    /// A line.
    Line(String),
    /// The sender left.
    Bye,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) seq: u32,
    pub(crate) say: Say,
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, text) = match &self.say {
            Say::Hello => (1, ""),
            Say::Line(t) => (2, t.as_str()),
            Say::Bye => (3, ""),
        };
        let mut v = Vec::with_capacity(6 + text.len());
        v.push(TAG);
        v.push(kind);
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(text.as_bytes());
        v
    }

    /// Decodes a broadcast payload; `None` when it is not a well-formed chat message
    /// (other applications share the network's broadcast).
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let [TAG, kind, s0, s1, s2, s3, text @ ..] = b else {
            return None;
        };
        let seq = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
        let say = match kind {
            1 if text.is_empty() => Say::Hello,
            2 if text.len() <= MAX_TEXT => Say::Line(std::str::from_utf8(text).ok()?.to_owned()),
            3 if text.is_empty() => Say::Bye,
            _ => return None,
        };
        Some(Self { seq, say })
    }
}

/// What the room shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Someone entered.
    Joined(NodeId),
    /// A line, in its sender's order.
    Line(NodeId, String),
    /// Someone left (said so, or left the network).
    Left(NodeId),
}

#[derive(Default)]
struct Peer {
    /// The next sequence number to show (set by the first message received).
    next: Option<u32>,
    pending: BTreeMap<u32, Say>,
    /// Since when the current gap has been waited for.
    waiting_since: Option<Instant>,
}

/// Senders remembered as having said goodbye (their late messages are ignored).
const MAX_LEFT: usize = 1024;

/// The participants and their ordering state.
#[derive(Default)]
pub(crate) struct Room {
    peers: BTreeMap<NodeId, Peer>,
    left: VecDeque<NodeId>,
    ever: bool,
    next_seq: u32,
}

impl Room {
    /// The next message this node sends.
    pub(crate) fn say(&mut self, say: Say) -> Message {
        let m = Message {
            seq: self.next_seq,
            say,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        m
    }

    /// Counts `peer` in (the member this node joined through, or that joined it).
    pub(crate) fn add(&mut self, peer: NodeId) {
        self.ever = true;
        if self.peers.len() < MAX_PARTICIPANTS {
            self.peers.entry(peer).or_default();
        }
    }

    /// Whether everyone who took part has left.
    pub(crate) fn empty(&self) -> bool {
        self.ever && self.peers.is_empty()
    }

    /// `peer` left the network (or was revoked).
    pub(crate) fn gone(&mut self, peer: &NodeId) -> Vec<Shown> {
        match self.peers.remove(peer) {
            Some(_) => vec![Shown::Left(*peer)],
            None => Vec::new(),
        }
    }

    /// A message from `from`.
    pub(crate) fn handle(&mut self, now: Instant, from: NodeId, m: Message) -> Vec<Shown> {
        let mut shown = Vec::new();
        if let Some(i) = self.left.iter().position(|l| *l == from) {
            if m.seq == 0 && m.say == Say::Hello {
                // It came back (a new `in8 chat`): a new participant.
                self.left.remove(i);
            } else {
                return shown; // late words of someone who said goodbye
            }
        }
        if !self.peers.contains_key(&from) {
            if self.peers.len() >= MAX_PARTICIPANTS {
                if let Say::Line(t) = m.say {
                    shown.push(Shown::Line(from, t));
                }
                return shown;
            }
            self.ever = true;
            self.peers.insert(from, Peer::default());
            if m.say != Say::Hello {
                shown.push(Shown::Joined(from));
            }
        }
        let Some(p) = self.peers.get_mut(&from) else {
            return shown;
        };
        // A participant met mid-conversation: its order starts with what arrives first.
        let next = *p.next.get_or_insert(m.seq);
        if m.seq.wrapping_sub(next) > u32::MAX / 2 {
            return shown; // older than what was shown: a duplicate
        }
        p.pending.insert(m.seq, m.say);
        if p.pending.len() > MAX_PENDING
            && let Some(first) = p.pending.keys().next()
        {
            p.next = Some(*first);
        }
        p.waiting_since.get_or_insert(now);
        self.release(now, from, &mut shown);
        shown
    }

    /// Shows lines whose gap was waited for long enough.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Shown> {
        let mut shown = Vec::new();
        let late: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.waiting_since
                    .is_some_and(|t| now.duration_since(t) >= GAP_WAIT)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(p) = self.peers.get_mut(&id)
                && let Some(first) = p.pending.keys().next()
            {
                p.next = Some(*first);
            }
            self.release(now, id, &mut shown);
        }
        shown
    }

    fn release(&mut self, now: Instant, from: NodeId, shown: &mut Vec<Shown>) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let mut advanced = false;
        while let Some(next) = p.next
            && let Some(say) = p.pending.remove(&next)
        {
            p.next = Some(next.wrapping_add(1));
            advanced = true;
            match say {
                Say::Hello => shown.push(Shown::Joined(from)),
                Say::Line(t) => shown.push(Shown::Line(from, t)),
                Say::Bye => {
                    self.peers.remove(&from);
                    if self.left.len() >= MAX_LEFT {
                        self.left.pop_front();
                    }
                    self.left.push_back(from);
                    shown.push(Shown::Left(from));
                    return;
                }
            }
        }
        // A new gap is waited for from now; no gap, no wait.
        if p.pending.is_empty() {
            p.waiting_since = None;
        } else if advanced {
            p.waiting_since = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> NodeId {
        in8_artifact::Identity::from_seed(&[n; 32]).node_id()
    }

    #[test]
    fn pinned_vector() {
        let m = Message {
            seq: 0x0102_0304,
            say: Say::Line("hé".into()),
        };
        // 43 'C' | 02 line | 01020304 seq | 68 c3 a9 "hé"
        assert_eq!(m.encode(), [0x43, 0x02, 1, 2, 3, 4, 0x68, 0xc3, 0xa9]);
        assert_eq!(Message::decode(&m.encode()), Some(m));
        assert_eq!(
            Message::decode(&[0x43, 0x01, 0, 0, 0, 0]),
            Some(Message {
                seq: 0,
                say: Say::Hello
            })
        );
        // Refused: another tag, a hello with text, an unknown kind, a short message,
        // text that is not UTF-8.
        for bad in [
            &[0x44, 1, 0, 0, 0, 0][..],
            &[0x43, 1, 0, 0, 0, 0, b'x'],
            &[0x43, 9, 0, 0, 0, 0],
            &[0x43, 2, 0, 0],
            &[0x43, 2, 0, 0, 0, 0, 0xff],
        ] {
            assert_eq!(Message::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lines_show_in_the_order_sent_and_a_gap_is_waited_for() {
        let t = Instant::now();
        let mut r = Room::default();
        let a = id(1);
        let line = |seq, s: &str| Message {
            seq,
            say: Say::Line(s.into()),
        };
        assert_eq!(
            r.handle(
                t,
                a,
                Message {
                    seq: 0,
                    say: Say::Hello
                }
            ),
            [Shown::Joined(a)]
        );
        assert!(r.handle(t, a, line(2, "third")).is_empty());
        assert_eq!(
            r.handle(t, a, line(1, "second")),
            [
                Shown::Line(a, "second".into()),
                Shown::Line(a, "third".into())
            ]
        );
        assert!(r.handle(t, a, line(1, "second")).is_empty(), "duplicate");
        // seq 3 never comes: 4 is shown after GAP_WAIT.
        assert!(r.handle(t, a, line(4, "fifth")).is_empty());
        assert!(r.tick(t + GAP_WAIT / 2).is_empty());
        assert_eq!(r.tick(t + GAP_WAIT), [Shown::Line(a, "fifth".into())]);
        assert_eq!(
            r.handle(
                t,
                a,
                Message {
                    seq: 5,
                    say: Say::Bye
                }
            ),
            [Shown::Left(a)]
        );
        assert!(r.empty());
    }

    #[test]
    fn a_participant_met_mid_conversation_and_one_that_leaves_the_network() {
        let t = Instant::now();
        let mut r = Room::default();
        let (a, b) = (id(1), id(2));
        r.add(a);
        assert_eq!(
            r.handle(
                t,
                b,
                Message {
                    seq: 7,
                    say: Say::Line("hi".into())
                }
            ),
            [Shown::Joined(b), Shown::Line(b, "hi".into())]
        );
        assert_eq!(r.gone(&a), [Shown::Left(a)]);
        assert!(!r.empty());
        assert_eq!(r.gone(&b), [Shown::Left(b)]);
        assert!(r.empty());
    }

    proptest! {
        #[test]
        fn round_trip(seq: u32, kind in 0u8..3, text in ".{0,40}") {
            let say = match kind { 0 => Say::Hello, 1 => Say::Line(text), _ => Say::Bye };
            let m = Message { seq, say };
            prop_assert_eq!(Message::decode(&m.encode()), Some(m));
        }

        #[test]
        fn any_bytes_decode_without_panicking(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(m) = Message::decode(&b) {
                prop_assert_eq!(m.encode(), b);
            }
        }

        #[test]
        fn the_pending_lines_stay_bounded(seqs in proptest::collection::vec(1u32..10_000, 0..300)) {
            let t = Instant::now();
            let mut r = Room::default();
            let a = id(3);
            r.handle(t, a, Message { seq: 0, say: Say::Hello });
            for s in seqs {
                r.handle(t, a, Message { seq: s, say: Say::Line(String::new()) });
                prop_assert!(r.peers.get(&a).map_or(0, |p| p.pending.len()) <= MAX_PENDING);
            }
        }
    }
}
