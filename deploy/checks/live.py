"""manifests.py --live: the RabbitMQ definitions, their users included, in a
throwaway vhost of the local broker, and the binaries just built run against
them, each component as its own user.

- `migrate` and `run` (without start-up migrations) as the worker user, the ingest as the ingest user,
  `dlq` as the operators user, with passwords hashed by
  deploy/rabbitmq/passwords.py (so the documented hashing logs in);
- an event signed and sent to the ingest, dead-lettered with the worker
  user's rights (with a second dead letter published by it), both listed
  (and put back) by `dlq`, the first redriven, the second discarded; then
  `run` applies the first, and a second event sent while it runs;
- the ingest user refused what a compromised ingest would try (purging or
  reading a shard queue, publishing to the dead-letter exchange or through
  the default exchange), the operators user refused taking from a shard.

The vhost, the users and the database are deleted afterwards. Needs root
(rabbitmqctl), the local services, Debian's python3-pika and
target/{release,debug}/clerk-sync-{ingest,worker}.
"""

import base64
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pika
import pika.data

# The ingest sends its receipt time (ms) as an AMQP timestamp, which pika
# would turn into a date past the year 9999: read timestamps as integers.
_decode_value = pika.data.decode_value


def _decode_timestamps_as_integers(encoded, offset):
    if encoded[offset:offset + 1] == b"T":
        return int.from_bytes(encoded[offset + 1:offset + 9], "big"), offset + 9
    return _decode_value(encoded, offset)


pika.data.decode_value = _decode_timestamps_as_integers

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy/rabbitmq/definitions.json"
HOST, PORT = "127.0.0.1", 5672


class Failed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise Failed(message)


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def first_lines(text, n=8):
    return " | ".join(line for line in text.strip().splitlines()[:n])


def load_passwords_module():
    spec = importlib.util.spec_from_file_location("passwords", ROOT / "deploy/rabbitmq/passwords.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def newest_binary(name):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates = [c for c in (target / profile / name for profile in ("release", "debug")) if c.is_file()]
    require(candidates, f"{name} not built: cargo build --bins first")
    return max(candidates, key=lambda c: c.stat().st_mtime)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(url, process, what, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failed(f"{what} exited with {process.returncode}: {first_lines(process.stderr.read())}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise Failed(f"{what} not ready within {seconds} s: {first_lines(process.stderr.read())}")


def wait_for(condition, seconds, message):
    deadline = time.monotonic() + seconds
    while not condition():
        require(time.monotonic() < deadline, message)
        time.sleep(0.2)


class Broker:
    """AMQP as one user of the throwaway vhost (pika), one channel per try."""

    def __init__(self, vhost, user, password):
        self.parameters = pika.ConnectionParameters(HOST, PORT, vhost, pika.PlainCredentials(user, password))
        self.user = user

    def attempt(self, action):
        """None if `action(channel)` succeeded, else the broker's refusal."""
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            action(channel)
            return None
        except pika.exceptions.ChannelClosedByBroker as e:
            return e
        finally:
            if connection.is_open:
                connection.close()

    def depth(self, queue):
        """Ready messages (a passive declaration, which needs no right)."""
        depth = []
        refused = self.attempt(lambda ch: depth.append(ch.queue_declare(queue, passive=True).method.message_count))
        require(refused is None, f"{self.user}: passive declaration of {queue} refused: {refused}")
        return depth[0]

    def refused(self, what, action):
        refusal = self.attempt(action)
        require(refusal is not None and refusal.reply_code == 403,
                f"{self.user} was not refused {what} (got {refusal or 'success'})")


def definitions_for(vhost, tag, passwords_module):
    """definitions.json moved to `vhost`, users renamed for this run and
    their hashes filled in; returns (definitions, {role: (user, password)})."""
    definitions = json.loads(DEFINITIONS.read_text())
    renamed, users, environ = {}, {}, {}
    for user in definitions["users"]:
        role = user["name"].rsplit("_", 1)[1]
        name = f"deploycheck_{tag}_{role}"
        password = secrets.token_urlsafe(18)
        renamed[user["name"]] = name
        users[role] = (name, password)
        environ[passwords_module.variable(name)] = password
        user["name"] = name
    require(set(users) == {"ingest", "worker", "operators"}, f"users for {sorted(users)}, not one per component")
    definitions["vhosts"] = [{"name": vhost}]
    for key in ("permissions", "policies", "exchanges", "queues", "bindings"):
        for entry in definitions[key]:
            entry["vhost"] = vhost
    for permission in definitions["permissions"]:
        permission["user"] = renamed[permission["user"]]
    return passwords_module.fill(definitions, environ), users


def check_live():
    worker_bin, ingest_bin = newest_binary("clerk-sync-worker"), newest_binary("clerk-sync-ingest")
    tag = secrets.token_hex(4)
    vhost = database = f"clerk_sync_deploycheck_{tag}"
    definitions, users = definitions_for(vhost, tag, load_passwords_module())
    prefix = definitions["exchanges"][0]["name"].rsplit(".", 1)[0]
    exchange, dead_letter = f"{prefix}.events", f"{prefix}.dead-letter"
    shard_queues = [q["name"] for q in definitions["queues"] if ".shard." in q["name"]]
    broker = {role: Broker(vhost, *credentials) for role, credentials in users.items()}
    processes = []
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(definitions, file)
            file.flush()
            os.chmod(file.name, 0o644)
            result = run(["rabbitmqctl", "-q", "import_definitions", file.name])
        require(result.returncode == 0, "import_definitions: " + first_lines(result.stdout + result.stderr))
        webhook_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        ingest_port, worker_port = free_port(), free_port()
        common = dict(os.environ, DATABASE_URL=f"postgres://postgres@{HOST}:5432/{database}",
                      CLERK_WEBHOOK_SECRET=webhook_secret, INGEST_LISTEN=f"{HOST}:{ingest_port}",
                      CLERK_SYNC__WORKER__LISTEN=f"{HOST}:{worker_port}", RUST_LOG="warn")

        def env(role):
            user, password = users[role]
            return dict(common, AMQP_URL=f"amqp://{user}:{password}@{HOST}:{PORT}/{vhost}")

        migrate = run([str(worker_bin), "migrate"], env=env("worker"))
        require(migrate.returncode == 0, "migrate as the worker user: " + first_lines(migrate.stderr))

        ingest = subprocess.Popen([str(ingest_bin)], env=env("ingest"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        processes.append(ingest)
        wait_ready(f"http://{HOST}:{ingest_port}/readyz", ingest, "the ingest as the ingest user")

        def send(user_id):
            sent = run([str(worker_bin), "send", "user.created", "--user", user_id, "--first-name", "Ada"],
                       env=env("operators"))
            require(sent.returncode == 0, "send: " + first_lines(sent.stdout + sent.stderr))

        first, second = f"user_deploycheck_{tag}_1", f"user_deploycheck_{tag}_2"
        send(first)
        depths = lambda: {q: broker["ingest"].depth(q) for q in shard_queues}  # noqa: E731
        wait_for(lambda: sum(depths().values()) == 1, 10, "the signed event never reached a shard queue")
        queue = next(q for q, n in depths().items() if n == 1)

        ingest_user = broker["ingest"]
        ingest_user.refused(f"a purge of {queue}", lambda ch: ch.queue_purge(queue))
        ingest_user.refused(f"a get from {queue}", lambda ch: ch.basic_get(queue))
        ingest_user.refused(f"a publish to {dead_letter}", lambda ch: ch.basic_publish(dead_letter, "", b"{}"))
        ingest_user.refused("a publish through the default exchange",
                            lambda ch: ch.basic_publish("", queue, b"{}"))
        broker["operators"].refused(f"a get from {queue}", lambda ch: ch.basic_get(queue))
        require(broker["worker"].depth(queue) == 1, "a refused operation changed the shard queue")

        # Dead-letter it with the worker user's rights: reject it (RabbitMQ
        # moves it to the dead-letter exchange), and publish to that
        # exchange as the worker does with a message that keeps failing.
        def reject(channel):
            method, properties, _ = channel.basic_get(queue)
            require(method is not None, f"nothing to take from {queue}")
            svix_ids.append(properties.message_id)
            channel.basic_reject(method.delivery_tag, requeue=False)

        svix_ids, junk = [], f"deploycheck-{tag}"
        worker_user = broker["worker"]
        for what, action in (("reject", reject), ("publish a dead letter", lambda ch: ch.basic_publish(
                dead_letter, "", b"{}", pika.BasicProperties(message_id=junk, headers={
                    "x-clerk-sync-error": "deploy check"}), mandatory=True))):
            refused = worker_user.attempt(action)
            require(refused is None, f"the worker user could not {what}: {refused}")
        wait_for(lambda: worker_user.depth(dead_letter) == 2, 10, "the dead letters never reached their queue")

        listed = run([str(worker_bin), "dlq", "list", "--json"], env=env("operators"))
        require(listed.returncode == 0 and svix_ids[0] in listed.stdout and junk in listed.stdout,
                "dlq list as the operators user: " + first_lines(listed.stdout + listed.stderr))
        # Put back as fresh copies (through the default exchange), not given
        # back by a closed channel, which would count as a delivery: a
        # refused copy is logged.
        require(worker_user.depth(dead_letter) == 2 and not listed.stderr.strip(),
                "dlq list did not put the dead letters back: " + first_lines(listed.stderr))
        redriven = run([str(worker_bin), "dlq", "redrive", svix_ids[0]], env=env("operators"))
        require(redriven.returncode == 0, "dlq redrive as the operators user: " + first_lines(redriven.stderr))
        discarded = run([str(worker_bin), "dlq", "discard", junk], env=env("operators"))
        require(discarded.returncode == 0, "dlq discard as the operators user: " + first_lines(discarded.stderr))
        require(worker_user.depth(dead_letter) == 0 and worker_user.depth(queue) == 1,
                "dlq redrive and discard did not empty the dead-letter queue into the shard queue")

        # As deployed: `migrate` migrated, `run` does not.
        worker_env = dict(env("worker"), CLERK_SYNC__WORKER__MIGRATE_ON_START="false")
        worker = subprocess.Popen([str(worker_bin), "run"], env=worker_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        processes.append(worker)
        wait_ready(f"http://{HOST}:{worker_port}/readyz", worker, "the worker as the worker user")
        send(second)

        def students():
            query = f"SELECT count(*) FROM \"Student\" WHERE \"clerkId\" IN ('{first}', '{second}')"
            return run(["psql", "-h", HOST, "-U", "postgres", "-d", database, "-tAc", query]).stdout.strip()

        wait_for(lambda: students() == "2", 15, "the events sent to the ingest never both reached the Student table")
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=40) for process in processes]
        require(codes == [0, 0], f"exit codes after SIGTERM: ingest {codes[0]}, worker {codes[1]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        run(["rabbitmqctl", "-q", "delete_vhost", vhost])
        for user, _ in users.values():
            run(["rabbitmqctl", "-q", "delete_user", user])
        run(["psql", "-q", "-h", HOST, "-U", "postgres", "-d", "postgres", "-c",
             f"DROP DATABASE IF EXISTS {database}"])
    return (f"definitions imported into a throwaway vhost with their 3 users; migrate and run as the worker user, "
            f"the ingest as the ingest user (refused purge, get, dead-letter and default-exchange publishes), "
            f"dlq list/redrive/discard as the operators user; 2 events ingest -> worker -> Student; "
            f"vhost, users and database deleted")
