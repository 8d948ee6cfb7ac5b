//! Flood control: each destination's own rate, so a burst of alerts is paced rather
//! than refused. Telegram allows about 1 message a second per chat and 30 a second per
//! bot, Slack 1 a second per webhook, Discord 5 per 2 seconds per webhook. Over the
//! rate, messages wait their turn in the order they asked (never dropped); a 429 pauses
//! the destination for its `Retry-After`. The bot's rate is shared: each owner's
//! messages pass a lane of their own at a third of it first, so one owner's burst
//! leaves two thirds of the bot to everyone else, whose first message waits for none
//! of the burst's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::channel::Channel;

/// At most `messages` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub messages: usize,
    pub per: Duration,
}

impl Rate {
    pub const fn new(messages: usize, per: Duration) -> Self {
        Self { messages, per }
    }
}

/// The rates of each kind of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodRates {
    pub telegram_chat: Rate,
    pub telegram_bot: Rate,
    /// One owner's share of the bot's rate.
    pub telegram_owner: Rate,
    pub slack_webhook: Rate,
    pub discord_webhook: Rate,
}

impl Default for FloodRates {
    /// The providers' documented limits.
    fn default() -> Self {
        Self {
            telegram_chat: Rate::new(1, Duration::from_secs(1)),
            telegram_bot: Rate::new(30, Duration::from_secs(1)),
            telegram_owner: Rate::new(10, Duration::from_secs(1)),
            slack_webhook: Rate::new(1, Duration::from_secs(1)),
            discord_webhook: Rate::new(5, Duration::from_secs(2)),
        }
    }
}

/// One destination: the times of its last sends and any pause; the async mutex (fair:
/// first come, first served) keeps waiting messages in order.
#[derive(Debug)]
struct Lane {
    rate: Rate,
    state: tokio::sync::Mutex<LaneState>,
}

#[derive(Debug, Default)]
struct LaneState {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// Paces sends per destination.
#[derive(Debug, Clone, Default)]
pub struct FloodControl {
    rates: FloodRates,
    lanes: Arc<Mutex<HashMap<String, Arc<Lane>>>>,
}

impl FloodControl {
    pub fn new(rates: FloodRates) -> Self {
        Self {
            rates,
            lanes: Arc::default(),
        }
    }

    /// The lanes a message to `channel` passes, narrowest first (email and webhooks:
    /// none). Keys stay in memory: they are never logged.
    fn lanes_of(&self, channel: &Channel, owner: Option<uuid::Uuid>) -> Vec<Arc<Lane>> {
        let keys = match channel {
            Channel::Telegram { chat_id } => {
                let mut lanes =
                    vec![(format!("telegram:chat:{chat_id}"), self.rates.telegram_chat)];
                if let Some(owner) = owner {
                    lanes.push((format!("telegram:owner:{owner}"), self.rates.telegram_owner));
                }
                lanes.push(("telegram:bot".to_owned(), self.rates.telegram_bot));
                lanes
            }
            Channel::Slack { webhook_url } => {
                vec![(format!("slack:{webhook_url}"), self.rates.slack_webhook)]
            }
            Channel::Discord { webhook_url } => {
                vec![(format!("discord:{webhook_url}"), self.rates.discord_webhook)]
            }
            Channel::Email { .. } | Channel::Webhook { .. } => Vec::new(),
        };
        let mut lanes = self.lanes.lock().expect("flood lanes lock");
        keys.into_iter()
            .map(|(key, rate)| {
                lanes
                    .entry(key)
                    .or_insert_with(|| {
                        Arc::new(Lane {
                            rate,
                            state: tokio::sync::Mutex::default(),
                        })
                    })
                    .clone()
            })
            .collect()
    }

    /// Waits until a message of `owner` to `channel` may go, in turn, and counts it as
    /// sent.
    pub async fn wait_turn(&self, channel: &Channel, owner: Option<uuid::Uuid>) {
        for lane in self.lanes_of(channel, owner) {
            let mut state = lane.state.lock().await;
            loop {
                let now = Instant::now();
                while state
                    .sent
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= lane.rate.per)
                {
                    state.sent.pop_front();
                }
                let paused = state.paused_until.filter(|until| *until > now);
                let full = (state.sent.len() >= lane.rate.messages.max(1))
                    .then(|| state.sent.front().map(|first| *first + lane.rate.per))
                    .flatten();
                match paused.max(full) {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => break,
                }
            }
            state.sent.push_back(Instant::now());
        }
    }

    /// After a 429: `channel`'s narrowest lane waits `retry_after` before anything else
    /// goes to it.
    pub async fn pause(&self, channel: &Channel, retry_after: Duration) {
        if let Some(lane) = self.lanes_of(channel, None).first() {
            let until = Instant::now() + retry_after;
            let mut state = lane.state.lock().await;
            state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rates_are_the_providers_limits() {
        let rates = FloodRates::default();
        assert_eq!(rates.telegram_chat, Rate::new(1, Duration::from_secs(1)));
        assert_eq!(rates.telegram_bot, Rate::new(30, Duration::from_secs(1)));
        assert_eq!(rates.slack_webhook, Rate::new(1, Duration::from_secs(1)));
        assert_eq!(rates.discord_webhook, Rate::new(5, Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_rate_messages_wait_in_order_and_a_pause_holds_them() {
        let flood = FloodControl::new(FloodRates {
            discord_webhook: Rate::new(2, Duration::from_secs(1)),
            ..FloodRates::default()
        });
        let discord = Channel::Discord {
            webhook_url: "https://discord.test/api/webhooks/1/t".into(),
        };
        let start = Instant::now();
        let turns = Arc::new(Mutex::new(Vec::new()));
        let sends = (0..6).map(|i| {
            let (flood, discord, turns) = (flood.clone(), discord.clone(), turns.clone());
            async move {
                flood.wait_turn(&discord, None).await;
                turns.lock().unwrap().push((i, start.elapsed()));
            }
        });
        futures_util::future::join_all(sends).await;
        let turns = turns.lock().unwrap().clone();
        let order: Vec<usize> = turns.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5], "first come, first served");
        let at: Vec<u64> = turns.iter().map(|(_, t)| t.as_secs()).collect();
        assert_eq!(at, [0, 0, 1, 1, 2, 2], "two a second");

        // A 429 with Retry-After 5 s: nothing more goes for 5 s.
        flood.pause(&discord, Duration::from_secs(5)).await;
        let paused_at = Instant::now();
        flood.wait_turn(&discord, None).await;
        assert_eq!(paused_at.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn one_owners_burst_leaves_the_bot_to_others_first_messages() {
        let flood = FloodControl::new(FloodRates::default());
        let start = Instant::now();
        let (busy, quiet) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        // 300 messages of one owner to 300 chats, then one of another owner.
        let burst = (0..300).map(|i| {
            let flood = flood.clone();
            tokio::spawn(async move {
                let chat = Channel::Telegram {
                    chat_id: format!("{i}"),
                };
                flood.wait_turn(&chat, Some(busy)).await;
                start.elapsed()
            })
        });
        let burst: Vec<_> = burst.collect();
        tokio::task::yield_now().await;
        let other = Channel::Telegram {
            chat_id: "other".into(),
        };
        flood.wait_turn(&other, Some(quiet)).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        let mut last = Duration::ZERO;
        for sent in burst {
            last = last.max(sent.await.unwrap());
        }
        // The busy owner's 300 go at its share, 10 a second.
        assert_eq!(last.as_secs(), 29);
    }
}
