//! What `in8 --json invite` and `in8 --json join` print (docs/cli.md: one JSON object a
//! line, each with an `"event"` field), and how one run's two transcripts become an
//! [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use super::{Outcome, PathType};

/// One JSON event line, with when it was read (since its process started).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Since the process was started.
    pub at: Duration,
    /// The parsed object.
    pub value: Value,
}

impl Event {
    /// Parses one stdout line; `None` for anything that is not a JSON object with an
    /// `"event"` string (the CLI prints nothing else in JSON mode, but a stray line must
    /// not end the run).
    pub fn parse(at: Duration, line: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(line.trim()).ok()?;
        value.get("event")?.as_str()?;
        Some(Self { at, value })
    }

    /// The `"event"` field.
    pub fn kind(&self) -> &str {
        self.value
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// A string field, or "".
    pub fn str(&self, field: &str) -> &str {
        self.value.get(field).and_then(Value::as_str).unwrap_or("")
    }

    /// An unsigned integer field.
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.value.get(field).and_then(Value::as_u64)
    }
}

/// One side of a run: the events it printed, how it ended, the end of its stderr.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Its exit code (`None`: still running at the deadline, or killed by a signal).
    pub exit: Option<i32>,
    /// The end of what it wrote on stderr (logs).
    pub stderr: String,
}

impl Transcript {
    /// The first event of this kind.
    pub fn first(&self, kind: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.kind() == kind)
    }

    /// The kinds of its events, in order, comma-separated (for messages).
    pub fn kinds(&self) -> String {
        let v: Vec<&str> = self.events.iter().map(Event::kind).collect();
        if v.is_empty() {
            "no event".into()
        } else {
            v.join(", ")
        }
    }
}

/// The `connection` object of a `connected` (joiner) or `joined` (inviter) event.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// 1 or 2.
    pub phase: u8,
    /// The path type as this side reports it (the peer's candidate kind).
    pub path: PathType,
    /// This side's address on the pair.
    pub local: SocketAddr,
    /// The peer's address on the pair.
    pub remote: SocketAddr,
    /// ICE's round-trip time, if measured.
    pub rtt_ms: Option<f64>,
    /// in8's own time from starting the join (or the session) to connected.
    pub elapsed_ms: f64,
    /// Whether birthday probing found the path (`connection.birthday`).
    pub birthday: bool,
}

impl Connection {
    /// Reads the `connection` field of `event`.
    pub fn of(event: &Event) -> Result<Self, String> {
        let c = event
            .value
            .get("connection")
            .ok_or_else(|| format!("`{}` event without a connection", event.kind()))?;
        let s = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
        let addr = |f: &str| {
            s(f).parse::<SocketAddr>()
                .map_err(|_| format!("connection.{f} {:?} is not an address", s(f)))
        };
        let phase = c
            .get("phase")
            .and_then(Value::as_u64)
            .and_then(|p| u8::try_from(p).ok())
            .filter(|p| *p == 1 || *p == 2)
            .ok_or_else(|| format!("connection.phase missing or not 1 / 2 in {c}"))?;
        let path = PathType::parse(s("path"))
            .ok_or_else(|| format!("unknown connection.path {:?}", s("path")))?;
        Ok(Self {
            phase,
            path,
            local: addr("local")?,
            remote: addr("remote")?,
            rtt_ms: c.get("rtt_ms").and_then(Value::as_f64),
            elapsed_ms: c.get("elapsed_ms").and_then(Value::as_f64).unwrap_or(0.0),
            birthday: c.get("birthday").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Everything needed to turn two transcripts into an [`Outcome`].
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// `in8 join`'s side.
    pub joiner: &'a Transcript,
    /// `in8 invite`'s side.
    pub inviter: &'a Transcript,
    /// Whether the harness had to stop the joiner at the run's deadline.
    pub timed_out: Option<Duration>,
    /// The TURN server's relayed addresses live on these IPs (the lab's server).
    pub relay_ips: &'a [IpAddr],
    /// Bytes both hosts sent on the wire during the run, if measured.
    pub wire_bytes: Option<u64>,
}

/// The path of a connection seen from both sides: a relay if either side's peer address is
/// on the TURN server (a relayed transport address) or either side reports `relay`;
/// otherwise the joiner's report.
pub fn path_of(
    joiner: &Connection,
    inviter: Option<&Connection>,
    relay_ips: &[IpAddr],
) -> PathType {
    let relayed = |c: &Connection| c.path == PathType::Relay || relay_ips.contains(&c.remote.ip());
    if relayed(joiner) || inviter.is_some_and(relayed) {
        PathType::Relay
    } else {
        joiner.path
    }
}

/// What a run did, from both sides' events.
///
/// Connected means the joiner printed `connected` **and** `exchanged` (its 1 KiB probe came
/// back through the inviter, so data flowed both ways). A named failure is the joiner's
/// `error` event (message and exit code). Anything else (a deadline, a crash, an echo that
/// never came) is reported with the events each side got to.
pub fn outcome(run: &Run<'_>) -> Outcome {
    let (j, i) = (run.joiner, run.inviter);
    let error = j.first("error");
    if let Some(ev) = j.first("connected") {
        let conn = match Connection::of(ev) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("unreadable `connected` event: {e}"),
                    exit_code: j.exit,
                };
            }
        };
        let inviter_conn = i.first("joined").and_then(|e| Connection::of(e).ok());
        let Some(exchanged) = j.first("exchanged") else {
            let why = match (error, run.timed_out) {
                (Some(e), _) => e.str("message").to_owned(),
                (None, Some(after)) => format!("no echo within the run's {after:?}"),
                (None, None) => format!("in8 join exited with {:?}", j.exit),
            };
            return Outcome::Failed {
                reason: format!(
                    "connected (phase {}, {}) but the 1 KiB echo failed: {why}",
                    conn.phase,
                    conn.path.as_str()
                ),
                exit_code: j.exit,
            };
        };
        let bytes =
            exchanged.u64("bytes_sent").unwrap_or(0) + exchanged.u64("bytes_received").unwrap_or(0);
        return Outcome::Connected {
            phase: conn.phase,
            path: path_of(&conn, inviter_conn.as_ref(), run.relay_ips),
            time: ev.at,
            bytes,
            wire_bytes: run.wire_bytes,
            rtt_ms: conn.rtt_ms,
            birthday: conn.birthday || inviter_conn.as_ref().is_some_and(|c| c.birthday),
        };
    }
    if let Some(e) = error {
        let phase1 = j
            .first("phase1_failed")
            .map(|p| format!(" (after phase 1 failed: {})", p.str("reason")))
            .unwrap_or_default();
        return Outcome::Failed {
            reason: format!("{}{phase1}", e.str("message")),
            exit_code: e
                .u64("exit_code")
                .and_then(|c| i32::try_from(c).ok())
                .or(j.exit),
        };
    }
    if let Some(after) = run.timed_out {
        let phase1 = j
            .first("phase1_failed")
            .map(|p| format!("; phase 1 failed: {}", p.str("reason")))
            .unwrap_or_default();
        return Outcome::TimedOut {
            after,
            detail: format!("joiner: {}{phase1}; inviter: {}", j.kinds(), i.kinds()),
        };
    }
    Outcome::Failed {
        reason: format!(
            "in8 join exited with {:?} without an error event (events: {}); stderr: {}",
            j.exit,
            j.kinds(),
            crate::command::tail(&j.stderr, 300)
        ),
        exit_code: j.exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(lines: &[(u64, &str)], exit: Option<i32>) -> Transcript {
        Transcript {
            events: lines
                .iter()
                .filter_map(|(ms, l)| Event::parse(Duration::from_millis(*ms), l))
                .collect(),
            exit,
            stderr: String::new(),
        }
    }

    const CONNECTED: &str = r#"{"event":"connected","connection":{"peer":"x","phase":2,"path":"prflx","local":"0.0.0.0:40000","remote":"203.0.113.18:5000","rtt_ms":1.5,"elapsed_ms":3100.0,"invite_id":"i"}}"#;
    const EXCHANGED: &str =
        r#"{"event":"exchanged","bytes_sent":1024,"bytes_received":1024,"round_trip_ms":2.0}"#;

    #[test]
    fn connected_with_echo() {
        let j = t(
            &[
                (5, r#"{"event":"gathered","candidates":[]}"#),
                (10, "not json"),
                (3200, CONNECTED),
                (3300, EXCHANGED),
            ],
            Some(0),
        );
        let i = t(&[], Some(0));
        let o = outcome(&Run {
            joiner: &j,
            inviter: &i,
            timed_out: None,
            relay_ips: &[],
            wire_bytes: Some(9000),
        });
        assert_eq!(
            o,
            Outcome::Connected {
                phase: 2,
                path: PathType::Prflx,
                time: Duration::from_millis(3200),
                bytes: 2048,
                wire_bytes: Some(9000),
                birthday: false,
                rtt_ms: Some(1.5),
            }
        );
        assert_eq!(j.kinds(), "gathered, connected, exchanged");
    }

    #[test]
    fn a_peer_on_the_turn_server_is_a_relay_path() {
        let j = t(&[(1, CONNECTED), (2, EXCHANGED)], Some(0));
        let joined = CONNECTED
            .replace("connected", "joined")
            .replace("203.0.113.18:5000", "192.0.2.10:50001");
        let i = t(&[(1, &joined)], Some(0));
        let o = outcome(&Run {
            joiner: &j,
            inviter: &i,
            timed_out: None,
            relay_ips: &["192.0.2.10".parse().unwrap()],
            wire_bytes: None,
        });
        assert!(
            matches!(
                o,
                Outcome::Connected {
                    path: PathType::Relay,
                    ..
                }
            ),
            "{o:?}"
        );
    }

    #[test]
    fn connected_without_echo_is_a_failure() {
        let j = t(
            &[
                (1, CONNECTED),
                (
                    2,
                    r#"{"event":"error","message":"no echo from the peer within 10 s","exit_code":1}"#,
                ),
            ],
            Some(1),
        );
        let o = outcome(&Run {
            joiner: &j,
            inviter: &Transcript::default(),
            timed_out: None,
            relay_ips: &[],
            wire_bytes: None,
        });
        match o {
            Outcome::Failed { reason, exit_code } => {
                assert!(reason.contains("echo failed: no echo"), "{reason}");
                assert_eq!(exit_code, Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn named_failure_and_deadline() {
        let j = t(
            &[
                (
                    3000,
                    r#"{"event":"phase1_failed","reason":"no pair nominated","rsvp":"in8:x","expires":"t"}"#,
                ),
                (
                    9000,
                    r#"{"event":"error","message":"could not connect: phase 2 failed","exit_code":4}"#,
                ),
            ],
            Some(4),
        );
        let run = Run {
            joiner: &j,
            inviter: &Transcript::default(),
            timed_out: None,
            relay_ips: &[],
            wire_bytes: None,
        };
        assert_eq!(
            outcome(&run),
            Outcome::Failed {
                reason:
                    "could not connect: phase 2 failed (after phase 1 failed: no pair nominated)"
                        .into(),
                exit_code: Some(4)
            }
        );
        let j = Transcript::default();
        let o = outcome(&Run {
            joiner: &j,
            timed_out: Some(Duration::from_secs(60)),
            ..run
        });
        assert!(
            matches!(&o, Outcome::TimedOut { detail, .. } if detail == "joiner: no event; inviter: no event"),
            "{o:?}"
        );
    }
}
