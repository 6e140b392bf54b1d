//! Which publish each of RabbitMQ's publisher confirms is for. Pure.
//!
//! On a confirm-mode channel RabbitMQ numbers publishes 1, 2, 3… in the
//! order it receives them, and confirms them by number: `basic.ack` or
//! `basic.nack`, for one publish or (`multiple`) for every one up to the
//! number. A mandatory publish no queue takes comes back first as a
//! `basic.return`, then is acked: it is unroutable, not durable.
//!
//! A return carries the message, not its number. Earlier publishes may
//! still await their confirm when a later one comes back (a quorum queue
//! confirms once a majority has written it), so the oldest unconfirmed
//! publish is not necessarily the returned one: a return is paired with
//! the oldest unconfirmed publish of the same `message_id` (the svix-id),
//! not yet returned. Two publishes of one svix-id go to the same queue, so
//! either both come back or neither does.

use std::collections::BTreeMap;

/// What RabbitMQ answered for one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Durable in its queue.
    Ack,
    /// Refused (`basic.nack`): a queue at its length limit, an internal error.
    Nack,
    /// Acked, but no queue took it (a `basic.return` came first).
    Unroutable,
}

#[derive(Debug)]
struct Pending<W> {
    waiter: W,
    message_id: String,
    returned: bool,
}

/// The publishes awaiting a confirm, each with whoever waits for it.
#[derive(Debug)]
pub struct Confirms<W> {
    next: u64,
    pending: BTreeMap<u64, Pending<W>>,
}

impl<W> Default for Confirms<W> {
    fn default() -> Self {
        Self {
            next: 1,
            pending: BTreeMap::new(),
        }
    }
}

impl<W> Confirms<W> {
    /// Number the next publish (its frames must be sent in this order).
    pub fn publish(&mut self, message_id: &str, waiter: W) -> u64 {
        let tag = self.next;
        self.next += 1;
        self.pending.insert(
            tag,
            Pending {
                waiter,
                message_id: message_id.to_owned(),
                returned: false,
            },
        );
        tag
    }

    /// A `basic.return` of a message with this `message_id` came.
    pub fn returned(&mut self, message_id: &str) {
        if let Some(pending) = self
            .pending
            .values_mut()
            .find(|p| !p.returned && p.message_id == message_id)
        {
            pending.returned = true;
        }
    }

    /// `basic.ack` (`acked`) or `basic.nack`: the publishes it settles,
    /// in order, each with its outcome.
    pub fn settle(&mut self, tag: u64, multiple: bool, acked: bool) -> Vec<(W, Outcome)> {
        let tags: Vec<u64> = if multiple {
            self.pending.range(..=tag).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        tags.into_iter()
            .filter_map(|t| self.pending.remove(&t))
            .map(|p| {
                let outcome = match (acked, p.returned) {
                    (false, _) => Outcome::Nack,
                    (true, true) => Outcome::Unroutable,
                    (true, false) => Outcome::Ack,
                };
                (p.waiter, outcome)
            })
            .collect()
    }

    /// How many publishes await a confirm.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// The connection is gone: every waiter, none of them confirmed.
    pub fn abandon(&mut self) -> Vec<W> {
        std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| p.waiter)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Confirms, Outcome};
    use proptest::prelude::*;

    #[test]
    fn a_return_marks_the_publish_of_its_message_not_the_oldest() {
        let mut confirms = Confirms::default();
        let first = confirms.publish("msg_a", 'a');
        let second = confirms.publish("msg_b", 'b');
        confirms.returned("msg_b");
        assert_eq!(
            confirms.settle(second, false, true),
            [('b', Outcome::Unroutable)]
        );
        assert_eq!(confirms.settle(first, false, true), [('a', Outcome::Ack)]);
        assert_eq!(confirms.len(), 0);
    }

    #[test]
    fn a_nack_wins_over_a_return_and_unknown_tags_settle_nothing() {
        let mut confirms = Confirms::default();
        let tag = confirms.publish("msg_a", 'a');
        confirms.returned("msg_a");
        confirms.returned("msg_unknown");
        assert!(confirms.settle(tag + 7, false, true).is_empty());
        assert_eq!(confirms.settle(tag, true, false), [('a', Outcome::Nack)]);
        assert_eq!(confirms.abandon(), Vec::<char>::new());
    }

    #[derive(Debug, Clone)]
    enum Step {
        Publish(u8),
        Return(u8),
        Settle {
            back: u8,
            multiple: bool,
            acked: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..4_u8).prop_map(Step::Publish),
            1 => (0..4_u8).prop_map(Step::Return),
            2 => (0..8_u8, any::<bool>(), any::<bool>())
                .prop_map(|(back, multiple, acked)| Step::Settle { back, multiple, acked }),
        ]
    }

    proptest! {
        /// However RabbitMQ's confirms come (single or multiple, acks and
        /// nacks, returns between them), each publish is settled at most
        /// once, only by a confirm covering its number, and everything
        /// unsettled is handed back when the connection goes.
        #[test]
        fn every_publish_is_settled_exactly_once(steps in proptest::collection::vec(step(), 0..60)) {
            let mut confirms = Confirms::default();
            let mut published = Vec::new();
            let mut settled = std::collections::BTreeSet::new();
            let mut returned = std::collections::BTreeSet::new();
            for step in steps {
                match step {
                    Step::Publish(id) => {
                        let tag = confirms.publish(&format!("msg_{id}"), published.len() as u64 + 1);
                        published.push(id);
                        prop_assert_eq!(tag, published.len() as u64);
                    }
                    Step::Return(id) => {
                        let oldest = (1..=published.len() as u64).find(|t| {
                            !settled.contains(t) && !returned.contains(t) && published[*t as usize - 1] == id
                        });
                        if let Some(t) = oldest {
                            returned.insert(t);
                        }
                        confirms.returned(&format!("msg_{id}"));
                    }
                    Step::Settle { back, multiple, acked } => {
                        let tag = (published.len() as u64).saturating_sub(u64::from(back));
                        for (waiter, outcome) in confirms.settle(tag, multiple, acked) {
                            prop_assert!(waiter == tag || (multiple && waiter < tag));
                            prop_assert!(settled.insert(waiter), "settled twice");
                            let expected = match (acked, returned.contains(&waiter)) {
                                (false, _) => Outcome::Nack,
                                (true, true) => Outcome::Unroutable,
                                (true, false) => Outcome::Ack,
                            };
                            prop_assert_eq!(outcome, expected);
                        }
                    }
                }
                prop_assert_eq!(confirms.len(), published.len() - settled.len());
            }
            for waiter in confirms.abandon() {
                prop_assert!(settled.insert(waiter));
            }
            prop_assert_eq!(settled.len(), published.len());
        }
    }
}
