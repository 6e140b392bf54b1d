//! `dlq list` and `dlq show`: read, print, give everything back.

use super::letter::{DeadLetter, rfc3339};
use super::queue::DeadLetterQueue;
use crate::{age, table};
use clerk_sync_store::clock::now_ms;
use clerk_sync_store::settings::Settings;
use serde_json::json;
use std::process::ExitCode;

/// Widest reason in the table; `show` and `--json` give it in full.
const REASON_WIDTH: usize = 60;

pub async fn list(settings: &Settings, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let queue = DeadLetterQueue::open(settings, "clerk-sync-worker dlq list").await?;
    let read = async {
        let total = queue.depth().await?;
        let mut seen = 0;
        let held = queue
            .take_all(|_| {
                seen += 1;
                seen <= limit
            })
            .await?;
        anyhow::Ok((total, held))
    }
    .await;
    let name = queue.name();
    queue.close().await;
    let (total, held) = read?;
    let now = now_ms();
    let letters: Vec<&DeadLetter> = held.iter().map(|h| &h.letter).collect();
    if json {
        let document = json!({
            "queue": name,
            "total": total,
            "shown": letters.len(),
            "dead_letters": letters.iter().map(|l| l.summary_json(now)).collect::<Vec<_>>(),
        });
        println!("{document}");
        return Ok(ExitCode::SUCCESS);
    }
    if letters.is_empty() {
        println!("no dead letters in {name}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", list_table(&letters, now));
    let noun = if total == 1 {
        "dead letter"
    } else {
        "dead letters"
    };
    if letters.len() < total as usize {
        println!(
            "{total} {noun} in {name}; the first {} shown (--limit)",
            letters.len()
        );
    } else {
        println!("{total} {noun} in {name}");
    }
    Ok(ExitCode::SUCCESS)
}

fn list_table(letters: &[&DeadLetter], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.svix_id.clone(),
                l.event_type.clone().unwrap_or_else(|| "-".to_owned()),
                l.user.clone().unwrap_or_else(|| "-".to_owned()),
                table::truncate(&one_line(&l.reason), REASON_WIDTH),
                l.deliveries
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                l.age_secs(now_ms)
                    .map_or_else(|| "-".to_owned(), age::human),
            ]
        })
        .collect();
    table::render(
        &["SVIX-ID", "TYPE", "USER", "REASON", "DELIVERIES", "AGE"],
        &rows,
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub async fn show(settings: &Settings, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let queue = DeadLetterQueue::open(settings, "clerk-sync-worker dlq show").await?;
    let read = queue.take_all(|letter| letter.svix_id == id).await;
    let name = queue.name();
    queue.close().await;
    let held = read?;
    let copies: Vec<&DeadLetter> = held.iter().map(|h| &h.letter).collect();
    let Some(letter) = copies.first() else {
        anyhow::bail!("{id} is not in the dead-letter queue {name}");
    };
    let now = now_ms();
    if json {
        let mut document = letter.full_json(now);
        document["copies"] = json!(copies.len());
        println!("{document}");
    } else {
        println!("{}", show_text(letter, copies.len(), now));
    }
    Ok(ExitCode::SUCCESS)
}

fn show_text(letter: &DeadLetter, copies: usize, now_ms: i64) -> String {
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let time = |ms: Option<i64>| match ms.and_then(|ms| rfc3339(ms).map(|t| (ms, t))) {
        Some((ms, text)) => format!("{text} ({} ago)", age::human((now_ms - ms) as f64 / 1000.0)),
        None => "-".to_owned(),
    };
    let mut lines = vec![
        format!("svix-id:          {}", letter.svix_id),
        format!("type:             {}", or_dash(letter.event_type.clone())),
        format!("user:             {}", or_dash(letter.user.clone())),
        format!("reason:           {}", letter.reason),
        format!("dead-lettered by: {}", letter.by.as_str()),
        format!(
            "deliveries:       {}",
            or_dash(letter.deliveries.map(|n| n.to_string()))
        ),
        format!("received:         {}", time(letter.received_at_ms)),
        format!("dead-lettered:    {}", time(letter.dead_lettered_at_ms)),
        format!("redrive goes to:  {}", letter.queue),
    ];
    if copies > 1 {
        lines.push(format!("copies in queue:  {copies}"));
    }
    lines.push("headers:".to_owned());
    for (name, value) in &letter.headers {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        lines.push(format!("  {name}: {value}"));
    }
    lines.push("body:".to_owned());
    lines.push(letter.body_pretty());
    lines.join("\n")
}
