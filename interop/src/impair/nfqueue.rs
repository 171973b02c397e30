//! The NFQUEUE driver of a [`Delayer`]: iptables rules in a router's namespace, and a thread
//! inside that namespace that receives queued packets and issues their verdicts late.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfq::{Queue, Verdict};

use super::{CAPACITY, Delayer, Impairment, Stats};
use crate::command::run;
use crate::netns::Netns;
use crate::{Error, Result};

/// The queue of packets leaving the site (`POSTROUTING -o wan`).
pub const QUEUE_EGRESS: u16 = 0;
/// The queue of packets entering the site (`PREROUTING -i wan`).
pub const QUEUE_INGRESS: u16 = 1;

/// How often the driver polls the queue while it waits (bounds the extra delay it adds).
pub const POLL: Duration = Duration::from_millis(1);

/// The iptables rules that send a router's WAN traffic to the delayer's queues.
pub fn rules(interface: &str) -> [Vec<String>; 2] {
    let rule = |chain: &str, dir: &str, queue: u16| {
        [
            "-t",
            "mangle",
            "-A",
            chain,
            dir,
            interface,
            "-j",
            "NFQUEUE",
            "--queue-num",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([queue.to_string()])
        .collect()
    };
    [
        rule("POSTROUTING", "-o", QUEUE_EGRESS),
        rule("PREROUTING", "-i", QUEUE_INGRESS),
    ]
}

/// A delayer running for one router. Dropping it removes the rules (traffic flows
/// unimpaired again), stops the thread and releases the packets it still holds.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<Stats>>>>,
    netns: String,
}

impl Running {
    /// Starts a delayer with `cfg` inside `router` for its interface `wan`: binds both queues
    /// first, then adds the iptables rules (so no packet meets a queue without a listener).
    pub fn start(router: &Netns, cfg: Impairment) -> Result<Self> {
        cfg.validate()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let flag = stop.clone();
        let thread = router.spawn_thread(format!("delayer-{}", router.name()), move || {
            drive(cfg, &flag, &ready_tx)
        })?;
        let mut running = Self {
            stop,
            thread: Some(thread),
            netns: router.name().to_owned(),
        };
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // The thread ended before reporting (e.g. it could not join the namespace):
                // its own error says why.
                let why = running.finish().err();
                return Err(
                    why.unwrap_or_else(|| Error::Queue("the delayer thread did not start".into()))
                );
            }
        }
        for rule in rules("wan") {
            run(router.command("iptables").args(&rule))?;
        }
        Ok(running)
    }

    /// Removes the rules, stops the delayer and returns its counters.
    pub fn finish(&mut self) -> Result<Stats> {
        let flush =
            run(crate::command::in_netns(&self.netns, "iptables").args(["-t", "mangle", "-F"]));
        self.stop.store(true, Ordering::Relaxed);
        let stats = match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Queue("the delayer thread panicked".into()))???,
            None => Stats::default(),
        };
        flush?;
        Ok(stats)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn queue_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Queue(format!("{what}: {e}"))
}

/// The thread body: runs inside the router's namespace until `stop`.
fn drive(
    cfg: Impairment,
    stop: &AtomicBool,
    ready: &std::sync::mpsc::Sender<Result<()>>,
) -> Result<Stats> {
    let opened = (|| -> Result<Queue> {
        let mut q = Queue::open().map_err(queue_err("opening the netfilter queue socket"))?;
        for n in [QUEUE_EGRESS, QUEUE_INGRESS] {
            q.bind(n).map_err(queue_err("binding a queue"))?;
            // Metadata only: the delayer never looks at or changes payloads.
            q.set_copy_range(n, 0)
                .map_err(queue_err("setting the copy range"))?;
            q.set_queue_max_len(n, CAPACITY as u32)
                .map_err(queue_err("setting the queue length"))?;
        }
        q.set_nonblocking(true);
        Ok(q)
    })();
    let mut queue = match opened {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(e) => {
            let msg = e.to_string();
            let _ = ready.send(Err(e));
            return Err(Error::Queue(msg));
        }
    };
    let mut delayer = Delayer::new(cfg, CAPACITY);
    while !stop.load(Ordering::Relaxed) {
        loop {
            match queue.recv() {
                Ok(msg) => {
                    let lane = usize::from(msg.get_queue_num() == QUEUE_INGRESS);
                    if let Some(mut dropped) = delayer.on_packet(Instant::now(), lane, msg) {
                        dropped.set_verdict(Verdict::Drop);
                        queue.verdict(dropped).map_err(queue_err("verdict"))?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(queue_err("receiving")(e)),
            }
        }
        let now = Instant::now();
        while let Some(mut msg) = delayer.poll_release(now) {
            msg.set_verdict(Verdict::Accept);
            queue.verdict(msg).map_err(queue_err("verdict"))?;
        }
        let wait = delayer
            .next_release()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(POLL)
            .min(POLL);
        std::thread::sleep(wait);
    }
    for mut msg in delayer.drain() {
        msg.set_verdict(Verdict::Accept);
        let _ = queue.verdict(msg);
    }
    for n in [QUEUE_EGRESS, QUEUE_INGRESS] {
        let _ = queue.unbind(n);
    }
    Ok(delayer.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_queue_each_direction_separately() {
        let [egress, ingress] = rules("wan");
        assert_eq!(
            egress.join(" "),
            "-t mangle -A POSTROUTING -o wan -j NFQUEUE --queue-num 0"
        );
        assert_eq!(
            ingress.join(" "),
            "-t mangle -A PREROUTING -i wan -j NFQUEUE --queue-num 1"
        );
    }
}
