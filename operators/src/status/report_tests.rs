use super::*;

fn shard(waiting: u32, consumers: u32, reports: Option<Reports>) -> Shard {
    Shard {
        queue: "p.shard.0".to_owned(),
        waiting,
        consumers,
        reports,
    }
}

fn reports(oldest: Option<f64>) -> Option<Reports> {
    Some(Reports {
        oldest_held_age_secs: oldest,
        held: i64::from(oldest.is_some()),
        newest_report_age_secs: 1.0,
    })
}

fn report(shards: Vec<Shard>, dead: u32, newest: Option<f64>) -> Report {
    Report {
        shards,
        workers: Vec::new(),
        rabbitmq_version: Ok("4.0.5".to_owned()),
        cluster: None,
        dead_letters: DeadLetters {
            queue: "p.dead-letter".to_owned(),
            depth: dead,
            oldest_age_secs: None,
            read: true,
        },
        events: EventLog {
            by_outcome: BTreeMap::from([("applied".to_owned(), 2)]),
            newest_age_secs: newest,
        },
        tables: Tables::default(),
    }
}

#[test]
fn the_oldest_message_comes_from_reports_else_from_the_depth() {
    assert_eq!(shard(5, 1, reports(Some(7.0))).oldest(), Oldest::Age(7.0));
    assert_eq!(
        shard(0, 1, reports(Some(7.0))).oldest(),
        Oldest::Age(7.0),
        "held, none waiting"
    );
    assert_eq!(shard(0, 1, reports(None)).oldest(), Oldest::Nothing);
    assert_eq!(shard(0, 0, None).oldest(), Oldest::Nothing);
    assert_eq!(shard(3, 1, reports(None)).oldest(), Oldest::Unknown);
    assert_eq!(shard(3, 0, None).oldest(), Oldest::Unknown);
}

#[test]
fn unset_thresholds_are_not_checked() {
    let r = report(vec![shard(1_000, 0, None)], 50, Some(1e6));
    assert!(check(&r, &StatusSettings::default()).is_empty());
}

#[test]
fn each_threshold_is_crossed_only_above_its_limit() {
    let limits = StatusSettings {
        max_shard_depth: Some(3),
        max_oldest_message_age_secs: Some(60),
        max_dead_letters: Some(0),
        max_newest_event_age_secs: Some(600),
        management_url: None,
    };
    let within = report(
        vec![shard(3, 1, reports(Some(60.0))), shard(2, 1, reports(None))],
        0,
        Some(600.0),
    );
    assert!(
        check(&within, &limits).is_empty(),
        "limits are inclusive; unknown with a consumer passes"
    );
    let beyond = report(
        vec![shard(4, 1, reports(Some(61.0))), shard(1, 0, None)],
        1,
        Some(601.0),
    );
    let crossed: Vec<_> = check(&beyond, &limits)
        .iter()
        .map(|c| c.threshold)
        .collect();
    assert_eq!(
        crossed,
        [
            "max_shard_depth",
            "max_oldest_message_age_secs",
            "max_oldest_message_age_secs",
            "max_dead_letters",
            "max_newest_event_age_secs"
        ]
    );
}

#[test]
fn an_empty_log_does_not_cross_the_newest_event_age() {
    let limits = StatusSettings {
        max_newest_event_age_secs: Some(1),
        ..StatusSettings::default()
    };
    assert!(check(&report(vec![], 0, None), &limits).is_empty());
}

#[test]
fn json_and_text_carry_every_figure() {
    let r = report(vec![shard(3, 0, None)], 1, Some(5.0));
    let limits = StatusSettings {
        max_dead_letters: Some(0),
        ..StatusSettings::default()
    };
    let crossed = check(&r, &limits);
    let document = json(&r, &crossed, &limits);
    assert_eq!(document["ok"], false);
    assert_eq!(document["shards"][0]["oldest_message"], "unknown");
    assert_eq!(document["events"]["by_outcome"]["failed"], 0);
    assert_eq!(document["events"]["total"], 2);
    assert_eq!(document["crossed"][0]["threshold"], "max_dead_letters");
    let text = text(&r, &crossed);
    assert!(text.contains("unknown (no consumer)"), "{text}");
    assert!(
        text.contains("THRESHOLD CROSSED: p.dead-letter: 1 dead letters"),
        "{text}"
    );
}
