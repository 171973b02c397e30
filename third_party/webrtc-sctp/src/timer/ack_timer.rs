use std::sync::Weak;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Duration;

// in8 patch: RFC 9260 §6.2 "... SHOULD be generated within 200 ms of the arrival of any
// unacknowledged DATA chunk." 200 ms is the upper bound; in8's RTO.Min is 200 ms too
// (`rtx_timer::RTO_MIN`), so on a short path a lone packet's delayed SACK and the peer's
// T3-rtx expired together: a spurious retransmission that also collapsed cwnd to one MTU.
// Half of RTO.Min leaves room for the path's RTT.
pub(crate) const ACK_INTERVAL: Duration =
    Duration::from_millis(crate::timer::rtx_timer::RTO_MIN / 2);

/// ackTimerObserver is the interface to an ack timer observer.
#[async_trait]
pub(crate) trait AckTimerObserver {
    async fn on_ack_timeout(&mut self);
}

/// ackTimer provides the retnransmission timer conforms with RFC 4960 Sec 6.3.1
#[derive(Default, Debug)]
pub(crate) struct AckTimer<T: 'static + AckTimerObserver + Send> {
    pub(crate) timeout_observer: Weak<Mutex<T>>,
    pub(crate) interval: Duration,
    pub(crate) close_tx: Option<mpsc::Sender<()>>,
}

impl<T: 'static + AckTimerObserver + Send> AckTimer<T> {
    /// newAckTimer creates a new acknowledgement timer used to enable delayed ack.
    pub(crate) fn new(timeout_observer: Weak<Mutex<T>>, interval: Duration) -> Self {
        AckTimer {
            timeout_observer,
            interval,
            close_tx: None,
        }
    }

    /// start starts the timer.
    pub(crate) fn start(&mut self) -> bool {
        // this timer is already closed
        if self.close_tx.is_some() {
            return false;
        }

        let (close_tx, mut close_rx) = mpsc::channel(1);
        let interval = self.interval;
        let timeout_observer = self.timeout_observer.clone();

        tokio::spawn(async move {
            let timer = tokio::time::sleep(interval);
            tokio::pin!(timer);

            tokio::select! {
                _ = timer.as_mut() => {
                    if let Some(observer) = timeout_observer.upgrade(){
                        let mut observer = observer.lock().await;
                        // in8 patch: the timer may have been stopped (and started again)
                        // while this task waited for the lock; only the current one fires.
                        let stopped = mpsc::error::TryRecvError::Disconnected;
                        if close_rx.try_recv() == Err(stopped) {
                            return;
                        }
                        observer.on_ack_timeout().await;
                    }
                 }
                _ = close_rx.recv() => {},
            }
        });

        self.close_tx = Some(close_tx);
        true
    }

    /// stops the timer. this is similar to stop() but subsequent start() call
    /// will fail (the timer is no longer usable)
    pub(crate) fn stop(&mut self) {
        self.close_tx.take();
    }

    /// isRunning tests if the timer is running.
    /// Debug purpose only
    pub(crate) fn is_running(&self) -> bool {
        self.close_tx.is_some()
    }
}
