//! Which claimed trigger is delivered next: owners take turns (round-robin), each owner
//! runs at most [`PER_OWNER`] deliveries at once and all owners together at most
//! [`TOTAL`]. One owner's slow or hanging channels can so hold at most `PER_OWNER` of
//! the places, and another owner's trigger never waits behind the queue of the first:
//! it starts as soon as any place is free. A delivery waiting between attempts lends
//! its place back ([`PlaceRequest::Lent`]) and queues again for it
//! ([`PlaceRequest::Wanted`]), behind the other owners' turns.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::notify::PlaceQueue;

/// Deliveries (each a trigger to all its channels) running at once in all.
pub const TOTAL: usize = 64;
/// Deliveries of one owner running at once.
pub const PER_OWNER: usize = 8;

/// Waiting items per owner, and how many each owner has running.
#[derive(Debug)]
pub struct FairQueue<K, T> {
    waiting: HashMap<K, VecDeque<T>>,
    /// Owners with waiting items, in turn order.
    turns: VecDeque<K>,
    running: HashMap<K, usize>,
    running_total: usize,
    per_owner: usize,
    total: usize,
}

impl<K: Eq + Hash + Clone, T> FairQueue<K, T> {
    pub fn new(per_owner: usize, total: usize) -> Self {
        Self {
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            running: HashMap::new(),
            running_total: 0,
            per_owner: per_owner.max(1),
            total: total.max(1),
        }
    }

    /// Queues `item` of `owner`.
    pub fn push(&mut self, owner: K, item: T) {
        let queue = self.waiting.entry(owner.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(owner);
        }
        queue.push_back(item);
    }

    /// The next item that may start now, counted as running: the first owner in turn
    /// that is under its own limit, while the total is under its limit.
    pub fn next(&mut self) -> Option<(K, T)> {
        if self.running_total >= self.total {
            return None;
        }
        for _ in 0..self.turns.len() {
            let owner = self.turns.pop_front()?;
            let running = self.running.get(&owner).copied().unwrap_or(0);
            if running >= self.per_owner {
                self.turns.push_back(owner);
                continue;
            }
            let queue = self
                .waiting
                .get_mut(&owner)
                .expect("an owner in turn waits");
            let item = queue.pop_front().expect("an owner in turn waits");
            if queue.is_empty() {
                self.waiting.remove(&owner);
            } else {
                self.turns.push_back(owner.clone());
            }
            *self.running.entry(owner.clone()).or_default() += 1;
            self.running_total += 1;
            return Some((owner, item));
        }
        None
    }

    /// One of `owner`'s items finished.
    pub fn finished(&mut self, owner: &K) {
        if let Some(running) = self.running.get_mut(owner) {
            *running -= 1;
            if *running == 0 {
                self.running.remove(owner);
            }
            self.running_total -= 1;
        }
    }

    /// Nothing waits and nothing runs.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running_total == 0
    }
}

/// What a delivery tells the queue about its place.
#[derive(Debug)]
pub enum PlaceRequest {
    /// The owner's delivery waits between attempts: its place is free meanwhile.
    Lent(Uuid),
    /// It wants its place back: granted through the sender, in the owner's turn.
    Wanted(Uuid, oneshot::Sender<()>),
}

/// One owner's side of the queue, for the notifier's [`crate::notify::Place`].
#[derive(Debug, Clone)]
pub struct OwnerPlaces {
    pub owner: Uuid,
    pub requests: mpsc::UnboundedSender<PlaceRequest>,
}

impl PlaceQueue for OwnerPlaces {
    fn lend(&self) {
        let _ = self.requests.send(PlaceRequest::Lent(self.owner));
    }

    fn reclaim(&self) -> oneshot::Receiver<()> {
        let (grant, granted) = oneshot::channel();
        let _ = self.requests.send(PlaceRequest::Wanted(self.owner, grant));
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_take_turns_within_their_limit_and_the_total() {
        let mut queue = FairQueue::new(2, 5);
        for i in 0..10 {
            queue.push("busy", i);
        }
        queue.push("quiet", 100);
        queue.push("other", 200);
        let started: Vec<(&str, i32)> = std::iter::from_fn(|| queue.next()).collect();
        // Round-robin from the first owner queued; "busy" stops at its limit of 2.
        assert_eq!(
            started,
            [("busy", 0), ("quiet", 100), ("other", 200), ("busy", 1)]
        );
        assert!(queue.next().is_none(), "busy holds its two places");
        queue.finished(&"busy");
        assert_eq!(queue.next(), Some(("busy", 2)));
        queue.push("late", 300);
        // The total (5) is reached only with places free for other owners before.
        assert_eq!(queue.next(), Some(("late", 300)));
        assert!(queue.next().is_none(), "5 running in all");
        for owner in ["quiet", "other", "late"] {
            queue.finished(&owner);
        }
        assert!(queue.next().is_none(), "busy still at its own limit");
        queue.finished(&"busy");
        queue.finished(&"busy");
        assert_eq!(queue.next(), Some(("busy", 3)));
        assert!(!queue.is_idle());
    }

    #[test]
    fn a_queue_drains_to_idle() {
        let mut queue = FairQueue::new(1, 1);
        queue.push(1, "a");
        queue.push(1, "b");
        let (owner, _) = queue.next().unwrap();
        assert!(queue.next().is_none());
        queue.finished(&owner);
        assert_eq!(queue.next(), Some((1, "b")));
        queue.finished(&1);
        assert!(queue.is_idle());
    }
}
