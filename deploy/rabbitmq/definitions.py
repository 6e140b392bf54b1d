#!/usr/bin/env python3
"""RabbitMQ definitions for clerk-sync, derived from the Rust source.

The binaries declare their topology at start-up and refuse a queue that
exists with other arguments, so pre-declared queues must carry exactly the
arguments of runtime/src/amqp.rs. This script reads them (and the
names of domain/src/topology.rs, the defaults of
runtime/src/settings/sections.rs) from the source, and stops with a message
when the source no longer has the shape it knows, rather than guess.

    python3 deploy/rabbitmq/definitions.py                  # print definitions.json
    python3 deploy/rabbitmq/definitions.py --shards 16      # after raising amqp.shards
    python3 deploy/rabbitmq/definitions.py --check deploy/rabbitmq/definitions.json

Options: --shards, --delivery-limit, --prefix (defaults: the settings'
defaults), --vhost and --user-prefix (default clerk_sync). Standard library
only.

One user per component, each allowed only what its code does (names below
with the default prefix; the regular expressions are built from the names
of domain/src/topology.rs):

- <user-prefix>_ingest: publish to the events exchange, nothing else (it
  checks the topology passively: a passive declaration needs no permission).
- <user-prefix>_worker: `run` and `migrate` declare the topology (configure
  on every name; a binding needs write on its queue and read on its
  exchange; a queue with a dead-letter exchange needs read on the queue and
  write on that exchange), consume the shard queues (read) and publish dead
  letters (write on the dead-letter exchange).
- <user-prefix>_operators: `dlq` and `status` read the dead-letter queue
  (read) and put back what they do not remove through the default exchange
  (write on amq.default, the name RabbitMQ checks for it); `dlq redrive`
  publishes to the events exchange. No configure: they only check passively.

The dead-letter exchange and queue share one name, so a right on one is a
right on the other. Password hashes are placeholders: fill them in with
deploy/rabbitmq/passwords.py.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AMQP_RS = ROOT / "runtime/src/amqp.rs"
TOPOLOGY_RS = ROOT / "domain/src/topology.rs"
SETTINGS_RS = ROOT / "runtime/src/settings/sections.rs"

PASSWORD_PLACEHOLDER = "REPLACE_ME: deploy/rabbitmq/passwords.py fills it in, see deploy/README.md"


class SourceChanged(Exception):
    """The Rust source no longer has the shape this script reads."""


def _function_body(source, name, path):
    match = re.search(r"\bfn " + re.escape(name) + r"\b[^{]*\{", source)
    if not match:
        raise SourceChanged(f"{path.relative_to(ROOT)}: fn {name} not found")
    depth, i = 1, match.end()
    while depth:
        if i >= len(source):
            raise SourceChanged(f"{path.relative_to(ROOT)}: fn {name} has no end")
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        i += 1
    return source[match.end() : i - 1]


def _squash(text):
    """Without whitespace and trailing commas, as rustfmt may add either."""
    return re.sub(r",([)\]}])", r"\1", re.sub(r"\s+", "", text))


def queue_argument_templates():
    """{function: {argument: template}}, a template being a literal value or
    one of the placeholders "<delivery_limit>", "<dead_letter_exchange>"."""
    source = AMQP_RS.read_text()
    known_values = {
        'long_string("quorum")': "quorum",
        'long_string("at-least-once")': "at-least-once",
        'long_string("reject-publish")': "reject-publish",
        "AMQPValue::LongLongInt(i64::from(delivery_limit))": "<delivery_limit>",
        # In effect no limit, on RabbitMQ 3 and 4 alike.
        "AMQPValue::LongLongInt(i64::from(DEAD_LETTER_DELIVERY_LIMIT))": 2147483647,
        "long_string(&topology.dead_letter_exchange())": "<dead_letter_exchange>",
    }
    if "pub const DEAD_LETTER_DELIVERY_LIMIT: i32 = i32::MAX;" not in source:
        raise SourceChanged(f"{AMQP_RS.relative_to(ROOT)}: DEAD_LETTER_DELIVERY_LIMIT is no longer i32::MAX")
    templates = {}
    for function in ("shard_queue_arguments", "dead_letter_queue_arguments"):
        body = _function_body(source, function, AMQP_RS)
        # Drop comments, then read every `.insert("x-...".into(), VALUE)`.
        code = _squash(re.sub(r"//[^\n]*", "", body))
        inserts = re.findall(r'\.insert\("([a-z-]+)"\.into\(\),(.*?)\)(?=\.insert|;)', code)
        if code.count(".insert(") != len(inserts) or not inserts:
            raise SourceChanged(f"{AMQP_RS.relative_to(ROOT)}: {function}: unreadable .insert calls")
        arguments = {}
        for key, value in inserts:
            value = value.rstrip(",")
            if value not in known_values:
                raise SourceChanged(
                    f"{AMQP_RS.relative_to(ROOT)}: {function}: argument {key} = {value} is new to "
                    "deploy/rabbitmq/definitions.py: teach it, then regenerate definitions.json"
                )
            arguments[key] = known_values[value]
        templates[function] = arguments

    # declare_topology declares, or hands the declaring to a helper of its
    # own (declare_all) and checks passively what a user may not declare.
    declare = _squash(_function_body(source, "declare_topology", AMQP_RS))
    if re.search(r"\bfn declare_all\b", source):
        declare += _squash(_function_body(source, "declare_all", AMQP_RS))
    for shape in (
        "durable:true",
        "declare_exchange(&channel,&exchange,ExchangeKind::Direct,durable_exchange)",
        "declare_exchange(&channel,&dead_letter_exchange,ExchangeKind::Fanout,durable_exchange)",
        "declare_queue(&channel,&dead_letter_queue,dead_letter_queue_arguments())",
        'bind(&channel,&dead_letter_queue,&dead_letter_exchange,"")',
        "shard_queue_arguments(topology,delivery_limit)",
        "bind(&channel,&queue,&exchange,&queue)",
    ):
        if shape not in declare:
            raise SourceChanged(f"{AMQP_RS.relative_to(ROOT)}: declare_topology no longer does {shape}")
    queue_options = _squash(_function_body(source, "declare_queue", AMQP_RS))
    if "durable:true" not in queue_options:
        raise SourceChanged(f"{AMQP_RS.relative_to(ROOT)}: declare_queue no longer declares durable queues")
    return templates


def name_formats():
    """{method: format} of the names in topology.rs, e.g. "{prefix}.events"."""
    source = TOPOLOGY_RS.read_text()
    formats = {}
    for method, pattern in (
        ("exchange", r'format!\("\{\}\.events",self\.prefix\)'),
        ("shard_queue", r'format!\("\{\}\.shard\.\{shard\}",self\.prefix\)'),
        ("dead_letter_exchange", r'format!\("\{\}\.dead-letter",self\.prefix\)'),
        ("dead_letter_queue", r'format!\("\{\}\.dead-letter",self\.prefix\)'),
    ):
        body = _squash(_function_body(source, method, TOPOLOGY_RS))
        match = re.search(pattern, body)
        if not match:
            raise SourceChanged(f"{TOPOLOGY_RS.relative_to(ROOT)}: the name of {method}() changed")
        formats[method] = match.group(0)[len('format!("') : -len('",self.prefix)')].replace("{}", "{prefix}", 1)
    return formats


def setting_defaults():
    """amqp.prefix, amqp.shards and amqp.delivery_limit's built-in defaults."""
    source = _squash(SETTINGS_RS.read_text())
    match = re.search(
        r'implDefaultforAmqpSettings\{fndefault\(\)->Self\{Self\{.*?prefix:"([^"]+)"\.to_owned\(\),'
        r"shards:(\d+),delivery_limit:(\d+),",
        source,
    )
    if not match:
        raise SourceChanged(f"{SETTINGS_RS.relative_to(ROOT)}: AmqpSettings' defaults unreadable")
    return {"prefix": match.group(1), "shards": int(match.group(2)), "delivery_limit": int(match.group(3))}


def _literal(name):
    """`name` as a regular expression (PCRE, as RabbitMQ reads it): only the
    characters special outside a class escaped, so "-" stays as it is."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", name)


def _anchored(*patterns):
    """One regular expression matching exactly the given (escaped) names."""
    unique = list(dict.fromkeys(patterns))
    return f"^{unique[0]}$" if len(unique) == 1 else "^(" + "|".join(unique) + ")$"


# What RabbitMQ checks for the default exchange ("") (rabbit_access_control).
DEFAULT_EXCHANGE = "amq.default"
ROLES = ("ingest", "worker", "operators")


def permissions(names, prefix):
    """{role: {"configure", "write", "read"}}: what each component's code does."""
    exchange = _literal(names["exchange"].format(prefix=prefix))
    dead_letter_exchange = _literal(names["dead_letter_exchange"].format(prefix=prefix))
    dead_letter_queue = _literal(names["dead_letter_queue"].format(prefix=prefix))
    shard_queues = _literal(names["shard_queue"].format(prefix=prefix, shard="SHARD")).replace("SHARD", "[0-9]+")
    every_name = (exchange, dead_letter_exchange, dead_letter_queue, shard_queues)
    return {
        "ingest": {"configure": "", "write": _anchored(exchange), "read": ""},
        "worker": {
            "configure": _anchored(*every_name),
            "write": _anchored(dead_letter_exchange, dead_letter_queue, shard_queues),
            "read": _anchored(*every_name),
        },
        "operators": {
            "configure": "",
            "write": _anchored(exchange, _literal(DEFAULT_EXCHANGE)),
            "read": _anchored(dead_letter_queue),
        },
    }


def user_name(user_prefix, role):
    return f"{user_prefix}_{role}"


def definitions(prefix, shards, delivery_limit, vhost, user_prefix):
    names = name_formats()
    templates = queue_argument_templates()

    def name(method, **values):
        return names[method].format(prefix=prefix, **values)

    def arguments(function):
        filled = {}
        for key, value in templates[function].items():
            if value == "<delivery_limit>":
                value = delivery_limit
            elif value == "<dead_letter_exchange>":
                value = name("dead_letter_exchange")
            filled[key] = value
        return filled

    exchange, dlx, dlq = name("exchange"), name("dead_letter_exchange"), name("dead_letter_queue")
    shard_queues = [name("shard_queue", shard=shard) for shard in range(shards)]
    escaped = re.escape(prefix)
    rights = permissions(names, prefix)

    def queue(queue_name, function):
        return {
            "name": queue_name,
            "vhost": vhost,
            "durable": True,
            "auto_delete": False,
            "arguments": arguments(function),
        }

    def exchange_entry(exchange_name, kind):
        return {
            "name": exchange_name,
            "vhost": vhost,
            "type": kind,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }

    def binding(source, destination, routing_key):
        return {
            "source": source,
            "vhost": vhost,
            "destination": destination,
            "destination_type": "queue",
            "routing_key": routing_key,
            "arguments": {},
        }

    return {
        "users": [
            {
                "name": user_name(user_prefix, role),
                "password_hash": PASSWORD_PLACEHOLDER,
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
            for role in ROLES
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": user_name(user_prefix, role), "vhost": vhost, **rights[role]} for role in ROLES
        ],
        "policies": [
            {
                "vhost": vhost,
                "name": f"{prefix}-queues",
                "pattern": f"^{escaped}\\.(shard\\.[0-9]+|dead-letter)$",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"queue-leader-locator": "balanced"},
            }
        ],
        "exchanges": [exchange_entry(exchange, "direct"), exchange_entry(dlx, "fanout")],
        "queues": [queue(dlq, "dead_letter_queue_arguments")]
        + [queue(q, "shard_queue_arguments") for q in shard_queues],
        "bindings": [binding(dlx, dlq, "")] + [binding(exchange, q, q) for q in shard_queues],
    }


def render(document):
    return json.dumps(document, indent=2) + "\n"


def main():
    defaults = setting_defaults()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=defaults["prefix"])
    parser.add_argument("--shards", type=int, default=defaults["shards"])
    parser.add_argument("--delivery-limit", type=int, default=defaults["delivery_limit"])
    parser.add_argument("--vhost", default="clerk_sync")
    parser.add_argument("--user-prefix", default="clerk_sync",
                        help="users <prefix>_ingest, <prefix>_worker, <prefix>_operators")
    parser.add_argument("--check", metavar="FILE", help="exit 1 unless FILE holds exactly these definitions")
    args = parser.parse_args()
    if not 1 <= args.shards <= 1024:
        parser.error("--shards must be between 1 and 1024 (amqp.shards)")
    if args.delivery_limit < 1:
        parser.error("--delivery-limit must be at least 1 (amqp.delivery_limit)")
    expected = definitions(args.prefix, args.shards, args.delivery_limit, args.vhost, args.user_prefix)
    if args.check:
        actual = json.loads(Path(args.check).read_text())
        if actual != expected:
            for key in expected:
                if actual.get(key) != expected[key]:
                    print(f"{args.check}: {key} differ from what the binaries declare; "
                          f"regenerate with deploy/rabbitmq/definitions.py", file=sys.stderr)
            extra = set(actual) - set(expected)
            if extra:
                print(f"{args.check}: unexpected keys {sorted(extra)}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render(expected))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SourceChanged as e:
        print(f"definitions.py: {e}", file=sys.stderr)
        sys.exit(2)
