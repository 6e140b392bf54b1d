//! How the chaos and failover runs end: what the sender saw accepted, and
//! the log and tables checked against the model of those events.

use super::history::Sent;
use super::sender::Outcome;
use crate::common::check::{self, LogSpec, Observed};
use crate::common::model::{self, Modelled};
use crate::common::verdict;
use std::collections::BTreeSet;
use std::time::Duration;

/// The svix-ids that got a 2xx, and those that never did.
pub fn accepted_and_given_up(outcomes: &[Outcome]) -> (BTreeSet<String>, BTreeSet<String>) {
    let accepted: BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.accepted)
        .map(|o| o.svix_id.clone())
        .collect();
    let given_up = outcomes
        .iter()
        .filter(|o| !o.accepted)
        .map(|o| o.svix_id.clone())
        .filter(|id| !accepted.contains(id))
        .collect();
    (accepted, given_up)
}

/// Every way the log and tables differ from the model of the accepted
/// events (plus any given-up event whose publish RabbitMQ confirmed after
/// all), and a given-up event itself; prints the log line and the verdict.
pub fn check(
    events: &[Sent],
    (accepted, given_up): &(BTreeSet<String>, BTreeSet<String>),
    observed: &Observed,
    give_up_after: Duration,
    mut differences: Vec<String>,
) -> bool {
    let in_model: Vec<Modelled> = events
        .iter()
        .map(|e| &e.modelled)
        .filter(|m| accepted.contains(&m.svix_id) || observed.log.contains_key(&m.svix_id))
        .cloned()
        .collect();
    let expected = model::expected(&in_model);
    let spec = LogSpec {
        required: accepted,
        allowed: given_up,
    };
    differences.extend(check::differences(&expected, &spec, observed));
    if !given_up.is_empty() {
        differences.push(format!(
            "{} events never got a 2xx within {give_up_after:?}",
            given_up.len()
        ));
    }
    let outcomes: Vec<String> = observed
        .outcomes
        .iter()
        .map(|(outcome, n)| format!("{outcome} {n}"))
        .collect();
    println!(
        "  log: {} svix-ids ({}); model: {} Student and {} Instructor rows, {} deleted users without rows",
        observed.log.len(),
        outcomes.join(", "),
        expected.students.len(),
        expected.instructors.len(),
        expected.deleted_users
    );
    println!(
        "  every 2xx'd event in the log exactly once, nothing else, tables equal the model: {}",
        verdict(differences.is_empty())
    );
    for difference in &differences {
        println!("    {difference}");
    }
    differences.is_empty()
}
