//! A RabbitMQ virtual host of the test's own on the tests' broker, with
//! users of the test's own in it (for least-privilege tests): `guest` may
//! do everything there, each added user what the test grants. Deleted,
//! users included, when dropped (even on panic).

use crate::broker::{address, rabbitmqctl};
use crate::cleanup::unique;

#[derive(Debug)]
pub struct TestVhost {
    pub name: String,
    users: Vec<String>,
}

/// `rabbitmqctl args...`, which must succeed.
fn ctl(args: &[&str]) {
    let output = rabbitmqctl()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl: {e}"));
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestVhost {
    pub fn new() -> Self {
        let vhost = Self {
            name: unique("vhost"),
            users: Vec::new(),
        };
        ctl(&["add_vhost", &vhost.name]);
        ctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }

    /// A user of the test's own with these permissions (regular
    /// expressions) in the vhost; its password.
    pub fn add_user(&mut self, configure: &str, write: &str, read: &str) -> (String, String) {
        let user = unique("user");
        let password = unique("password");
        ctl(&["add_user", &user, &password]);
        self.users.push(user.clone());
        ctl(&[
            "set_permissions",
            "-p",
            &self.name,
            &user,
            configure,
            write,
            read,
        ]);
        (user, password)
    }

    /// `amqp://{user}:{password}@{the tests' broker}/{vhost}`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("amqp://{user}:{password}@{}/{}", address(), self.name)
    }

    /// The URL for `guest`, who may do everything in the vhost.
    pub fn admin_url(&self) -> String {
        self.url("guest", "guest")
    }
}

impl Default for TestVhost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let _ = rabbitmqctl().args(["delete_vhost", &self.name]).output();
        for user in &self.users {
            let _ = rabbitmqctl().args(["delete_user", user]).output();
        }
    }
}
