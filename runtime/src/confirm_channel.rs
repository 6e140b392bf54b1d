//! A confirm-mode channel that tasks on several threads publish on at once
//! (the worker's batch tasks; the ingest, which used it too, now has a
//! publisher of its own), each getting the confirm of its own publish.
//!
//! lapin (4.12) gives a publish the number its confirm will carry, then
//! queues its frames: two steps, both taken in the first poll of
//! `basic_publish`, but under different locks. Two threads publishing at
//! once could have their frames sent in the other order than their
//! numbers, and each then got the other's confirm: the ingest answered 2xx
//! for an event RabbitMQ refused (13 to 19 of 1,500 in the test that found
//! it). [`ConfirmChannel::publish`] takes that first poll under a lock of
//! the channel's, so its publishes are numbered in the order they are
//! sent. Neither the wait for the frames to be written nor the wait for
//! the confirm is locked.

use lapin::PublisherConfirm;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

#[derive(Debug, Clone)]
pub struct ConfirmChannel {
    channel: Channel,
    /// Held while a publish is numbered and its frames queued.
    numbering: Arc<Mutex<()>>,
}

impl ConfirmChannel {
    /// `channel`, on which `confirm_select` was done.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            numbering: Arc::default(),
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// `basic_publish`, numbered in the order it is sent; await the
    /// returned confirm for RabbitMQ's answer.
    pub async fn publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> lapin::Result<PublisherConfirm> {
        let publish =
            self.channel
                .basic_publish(exchange, routing_key, options, payload, properties);
        let mut publish = std::pin::pin!(publish);
        let first = std::future::poll_fn(|context| {
            let _numbering = self
                .numbering
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Poll::Ready(publish.as_mut().poll(context))
        })
        .await;
        match first {
            Poll::Ready(published) => published,
            Poll::Pending => publish.await,
        }
    }
}
