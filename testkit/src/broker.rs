//! The RabbitMQ the tests use: the machine's own node by default, or the
//! one `CLERK_SYNC_TEST_AMQP_URL` names (how `deploy/local/test-rabbitmq4.sh`
//! runs the broker-facing tests against RabbitMQ 4).

/// The variable that points the tests at another broker.
pub const URL_VARIABLE: &str = "CLERK_SYNC_TEST_AMQP_URL";
/// The variable with the command that runs that broker's `rabbitmqctl`
/// (words separated by spaces).
pub const CTL_VARIABLE: &str = "CLERK_SYNC_TEST_RABBITMQCTL";
const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The AMQP URL of the tests' broker.
pub fn amqp_url() -> String {
    std::env::var(URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Its `host:port`, for a proxy in front of it.
pub fn address() -> String {
    let url = amqp_url();
    let authority = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    }
}

/// `rabbitmqctl` of the tests' broker, ready for its arguments.
pub fn rabbitmqctl() -> std::process::Command {
    let words = std::env::var(CTL_VARIABLE).unwrap_or_default();
    let mut words = words.split_whitespace();
    let mut command = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
    command.args(words);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_the_url() {
        assert!(amqp_url().starts_with("amqp"));
        assert!(address().contains(':'));
    }
}
