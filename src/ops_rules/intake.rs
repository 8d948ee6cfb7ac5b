//! The tick intake: requests hand their tick to the replica's writers and wait for the
//! answer. A free writer takes whatever ticks are queued (up to [`MAX_BATCH`]) and
//! applies them in one transaction: a tick is answered only once it is committed —
//! stored durably and judged — and under load many ticks share one commit (group
//! commit), so the cost of a commit is spread without a timer adding latency.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::apply::{Applier, Received};

/// Most ticks applied in one transaction.
pub const MAX_BATCH: usize = 256;
/// Writers per replica: while one waits on Postgres, another applies the next ticks.
/// Ticks of one engine still apply in order of their own time (an older tick is
/// stored, not judged).
pub const WRITERS: usize = 2;
/// Ticks waiting for the writer before requests are refused (503).
const QUEUE: usize = 4096;

struct Pending {
    received: Received,
    reply: oneshot::Sender<Result<Vec<String>, IntakeError>>,
}

/// Why a tick was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the tick queue is full")]
    Full,
    #[error("the database did not take the tick")]
    Database,
    #[error("the service is shutting down")]
    ShuttingDown,
}

/// The sending side, shared by the request handlers.
#[derive(Clone)]
pub struct Intake {
    sender: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

impl Intake {
    /// Starts the writer on `tasks`; it stops at shutdown once the queue is empty.
    pub fn start(
        applier: Applier,
        batch_sizes: prometheus::Histogram,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..WRITERS {
            tasks.spawn(write(
                applier.clone(),
                receiver.clone(),
                batch_sizes.clone(),
                shutdown.clone(),
            ));
        }
        Self { sender }
    }

    /// Hands a tick to the writer and waits until it is committed; answers the ids of
    /// the alerts it raised.
    pub async fn submit(&self, received: Received) -> Result<Vec<String>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .try_send(Pending { received, reply })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => IntakeError::Full,
                mpsc::error::TrySendError::Closed(_) => IntakeError::ShuttingDown,
            })?;
        answer.await.unwrap_or(Err(IntakeError::ShuttingDown))
    }
}

async fn write(
    applier: Applier,
    receiver: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    batch_sizes: prometheus::Histogram,
    shutdown: CancellationToken,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let first = tokio::select! {
                biased;
                first = receiver.recv() => first,
                () = shutdown.cancelled() => {
                    // Take what is queued, then stop.
                    receiver.close();
                    receiver.recv().await
                }
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        batch_sizes.observe(batch.len() as f64);
        apply(&applier, batch).await;
    }
}

/// Applies a batch; when the batch as a whole fails, each tick alone, so that one
/// tick's failure is its own.
async fn apply(applier: &Applier, batch: Vec<Pending>) {
    let started = Instant::now();
    let ticks: Vec<Received> = batch.iter().map(|p| p.received.clone()).collect();
    match applier.apply(&ticks).await {
        Ok(answers) => {
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(Ok(answer));
            }
        }
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, ticks = batch.len(),
                "a tick batch failed; applying its ticks one by one");
            for pending in batch {
                let answer = applier
                    .apply(std::slice::from_ref(&pending.received))
                    .await
                    .map(|mut answers| answers.pop().unwrap_or_default())
                    .map_err(|_| IntakeError::Database);
                let _ = pending.reply.send(answer);
            }
        }
        Err(error) => {
            tracing::warn!(%error, "a tick was not stored");
            for pending in batch {
                let _ = pending.reply.send(Err(IntakeError::Database));
            }
        }
    }
    tracing::debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "tick batch applied"
    );
}
