//! Integration tests of the ingest against the real RabbitMQ. Each test
//! declares its own uniquely named topology and deletes it afterwards, so
//! tests run in parallel and leave nothing behind.

#![cfg(test)]

mod helpers;

mod amqps;
mod binary;
mod blocked;
mod concurrency;
mod hostile;
mod least_privilege;
mod other_broker;
mod outage;
mod routing;
mod topology;
mod webhook;
