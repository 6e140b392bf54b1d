#!/usr/bin/env python3
"""Fill in the password hashes of RabbitMQ definitions from the environment.

definitions.json ships each user's password_hash as a placeholder. This
reads definitions on standard input and writes them to standard output with
every user's hash made from the variable RABBITMQ_PASSWORD_<USER> (the user's
name in capitals, anything but letters and digits as "_"):

    export RABBITMQ_PASSWORD_CLERK_SYNC_INGEST=... RABBITMQ_PASSWORD_CLERK_SYNC_WORKER=... \\
           RABBITMQ_PASSWORD_CLERK_SYNC_OPERATORS=...
    python3 deploy/rabbitmq/passwords.py < deploy/rabbitmq/definitions.json > /secure/place/definitions.json

--admin NAME also adds an administrator NAME (password in
RABBITMQ_PASSWORD_<NAME>) with every right on each vhost, for a management
UI where nothing else creates one (deploy/compose.yaml).

The hash is RabbitMQ's rabbit_password_hashing_sha256: base64(salt +
sha256(salt + password)) with a random 4-byte salt. The passwords are never
printed; a missing or empty variable stops it (exit 2) naming the variable.
Standard library only (it also runs inside the RabbitMQ image).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import sys

ALGORITHM = "rabbit_password_hashing_sha256"


class MissingPassword(Exception):
    pass


def variable(user):
    """The environment variable that holds `user`'s password."""
    return "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def password_hash(password, salt=None):
    """RabbitMQ's rabbit_password_hashing_sha256 hash of `password`."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_of(user, environ):
    name = variable(user)
    password = environ.get(name, "")
    if not password:
        raise MissingPassword(f"{name} is not set (the password of RabbitMQ user {user})")
    return password


def fill(definitions, environ, admin=None):
    """`definitions` with every user's hash filled in (and `admin` added)."""
    filled = dict(definitions)
    users = [dict(user) for user in definitions.get("users", [])]
    if admin:
        users.append({"name": admin, "tags": ["administrator"]})
        filled["permissions"] = list(definitions.get("permissions", [])) + [
            {"user": admin, "vhost": vhost["name"], "configure": ".*", "write": ".*", "read": ".*"}
            for vhost in definitions.get("vhosts", [])
        ]
    for user in users:
        user.pop("password", None)
        user["password_hash"] = password_hash(password_of(user["name"], environ))
        user["hashing_algorithm"] = ALGORITHM
    filled["users"] = users
    return filled


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin", metavar="NAME", help="also add an administrator NAME")
    args = parser.parse_args()
    try:
        definitions = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"passwords.py: standard input is not JSON definitions: {e}", file=sys.stderr)
        return 2
    try:
        filled = fill(definitions, os.environ, args.admin)
    except MissingPassword as e:
        print(f"passwords.py: {e}", file=sys.stderr)
        return 2
    json.dump(filled, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
