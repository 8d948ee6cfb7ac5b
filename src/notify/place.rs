//! A delivery's place in its caller's queue, given back while it backs off. A trigger's
//! channels are delivered together under one place; when every channel still under
//! way is waiting out a backoff or a `Retry-After`, the place is lent to the queue (so
//! the wait costs no one a place), and the first channel to wake asks for it back and
//! waits its turn like any new delivery: a retry goes back to the queue.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

/// The queue a place belongs to.
pub trait PlaceQueue: Send + Sync {
    /// The place is free for others until it is reclaimed.
    fn lend(&self);
    /// Asks for the place back; the answer comes when it is granted (or never, if the
    /// queue is gone).
    fn reclaim(&self) -> oneshot::Receiver<()>;
}

#[derive(Debug)]
struct State {
    /// Channels under way and not waiting.
    awake: usize,
    /// Channels not finished.
    remaining: usize,
    /// The place is lent to the queue.
    lent: bool,
    /// A channel is waiting for the place to come back.
    reclaiming: bool,
}

/// The place of one trigger's `channels` deliveries.
#[derive(Clone)]
pub struct Place {
    queue: Arc<dyn PlaceQueue>,
    state: Arc<Mutex<State>>,
    returned: Arc<Notify>,
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place").field("state", &self.state).finish()
    }
}

impl Place {
    /// A place held now, for `channels` deliveries that all start awake.
    pub fn new(queue: Arc<dyn PlaceQueue>, channels: usize) -> Self {
        Self {
            queue,
            state: Arc::new(Mutex::new(State {
                awake: channels,
                remaining: channels,
                lent: false,
                reclaiming: false,
            })),
            returned: Arc::new(Notify::new()),
        }
    }

    /// One channel starts waiting; the last one awake lends the place.
    pub fn step_aside(&self) {
        let mut state = self.state.lock().expect("place lock");
        state.awake = state.awake.saturating_sub(1);
        if state.awake == 0 && !state.lent {
            state.lent = true;
            self.queue.lend();
        }
    }

    /// One channel wakes: the place is reclaimed first if it is lent.
    pub async fn step_in(&self) {
        loop {
            let returned = self.returned.notified();
            let granted = {
                let mut state = self.state.lock().expect("place lock");
                if !state.lent {
                    state.awake += 1;
                    return;
                }
                if state.reclaiming {
                    None
                } else {
                    state.reclaiming = true;
                    Some(self.queue.reclaim())
                }
            };
            match granted {
                // Another channel is reclaiming it: wait for it to come back.
                None => returned.await,
                Some(granted) => {
                    // A queue that is gone grants nothing: go on without a place.
                    let _ = granted.await;
                    let mut state = self.state.lock().expect("place lock");
                    state.lent = false;
                    state.reclaiming = false;
                    state.awake += 1;
                    self.returned.notify_waiters();
                    return;
                }
            }
        }
    }

    /// One channel is done, awake or (stopped by shutdown) waiting; if only waiting
    /// channels remain, the place is lent.
    pub fn finish(&self, awake: bool) {
        let mut state = self.state.lock().expect("place lock");
        state.remaining = state.remaining.saturating_sub(1);
        if awake {
            state.awake = state.awake.saturating_sub(1);
        }
        if state.awake == 0 && state.remaining > 0 && !state.lent {
            state.lent = true;
            self.queue.lend();
        }
    }

    /// Whether the place is held (not lent): what the queue counts when the trigger's
    /// delivery ends.
    pub fn is_held(&self) -> bool {
        !self.state.lock().expect("place lock").lent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue that records lends and grants every reclaim at once.
    #[derive(Default)]
    struct Recording {
        events: Mutex<Vec<&'static str>>,
    }

    impl PlaceQueue for Recording {
        fn lend(&self) {
            self.events.lock().unwrap().push("lend");
        }
        fn reclaim(&self) -> oneshot::Receiver<()> {
            self.events.lock().unwrap().push("reclaim");
            let (grant, granted) = oneshot::channel();
            let _ = grant.send(());
            granted
        }
    }

    #[tokio::test]
    async fn the_place_is_lent_only_while_every_channel_waits() {
        let queue = Arc::new(Recording::default());
        let place = Place::new(queue.clone(), 2);
        place.step_aside();
        assert!(place.is_held(), "one channel still sends");
        place.step_aside();
        assert!(!place.is_held(), "both wait: lent");
        place.step_in().await;
        place.step_in().await;
        assert!(place.is_held());
        place.finish(true);
        place.step_aside();
        assert!(!place.is_held(), "the one left waits");
        place.finish(false);
        assert!(!place.is_held(), "stopped while waiting: still lent");
        assert_eq!(
            *queue.events.lock().unwrap(),
            ["lend", "reclaim", "lend"],
            "one reclaim for two channels waking"
        );
    }

    #[tokio::test]
    async fn a_last_channel_finishing_awake_keeps_the_place() {
        let queue = Arc::new(Recording::default());
        let place = Place::new(queue.clone(), 1);
        place.finish(true);
        assert!(place.is_held());
        assert!(queue.events.lock().unwrap().is_empty());
    }
}
