"""clerk-sync's least-privilege rules, checked by manifests.py: what each
RabbitMQ user may do (definitions.json), which user each compose service
connects as, which secrets each Kubernetes component's pods get, and what
the NetworkPolicies let each one receive and send.

Each pod template is named by its `app.kubernetes.io/component` label.
"""

import re

COMPONENT = "app.kubernetes.io/component"

# The Secret keys each component's pods may read, and no more.
SECRET_KEYS = {
    "ingest": {"webhook-secret", "ingest-amqp-url"},
    # The webhook secret: the worker checks the stored signatures again.
    "worker": {"webhook-secret", "database-url", "worker-amqp-url"},
    "migrate": {"migrate-database-url", "worker-amqp-url"},
    "status": {"database-url", "operators-amqp-url"},
    "operators": {"webhook-secret", "database-url", "operators-amqp-url", "clerk-secret-key"},
    "reconcile": {"database-url", "clerk-secret-key"},
}

# TCP ports each component may receive on, and send to (53 is DNS).
INGRESS = {"ingest": {8080}, "worker": {9090}, "migrate": set(), "status": set(), "operators": set(),
           "reconcile": set()}
EGRESS = {
    "ingest": {53, 5671, 5672},
    "worker": {53, 5671, 5672, 5432},
    "migrate": {53, 5671, 5672, 5432},
    "status": {53, 5671, 5672, 15671, 15672, 5432},
    "operators": {53, 5671, 5672, 5432, 443},
    "reconcile": {53, 5432, 443},
}
# Egress to any public address: Clerk's API, for the operators only.
PUBLIC_EGRESS = {"operators": {443}, "reconcile": {443}}


class Failed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise Failed(message)


def _selects(selector, labels):
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def _ports(rules):
    ports = set()
    for rule in rules:
        require(rule.get("ports"), "a NetworkPolicy rule without ports allows every port")
        ports |= {port["port"] for port in rule["ports"]}
    return ports


def _public(rule):
    return any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule.get("to", []))


def check_network_policies(policies, templates):
    """`policies`: NetworkPolicy documents; `templates`: {component: pod labels}."""
    require(policies, "no NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    require(deny, "no default-deny NetworkPolicy (every pod, Ingress and Egress, no rule)")
    require(set(templates) == set(INGRESS), f"pod templates for {sorted(templates)}, rules for {sorted(INGRESS)}")
    for component, labels in templates.items():
        applying = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        ingress = [r for p in applying for r in p["spec"].get("ingress", [])]
        egress = [r for p in applying for r in p["spec"].get("egress", [])]
        for rule in ingress + egress:
            require(rule.get("from", rule.get("to")), f"{component}: a rule open to every peer")
        require(_ports(ingress) == INGRESS[component],
                f"{component}: receives on {sorted(_ports(ingress))}, expected {sorted(INGRESS[component])}")
        require(_ports(egress) == EGRESS[component],
                f"{component}: sends to {sorted(_ports(egress))}, expected {sorted(EGRESS[component])}")
        public = _ports([r for r in egress if _public(r)])
        require(public == PUBLIC_EGRESS.get(component, set()),
                f"{component}: may reach public addresses on {sorted(public)}")
    return len(policies)


def check_secrets(containers):
    """`containers`: {component: [container]}; each reads only its keys."""
    for component, listed in containers.items():
        keys = set()
        for container in listed:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    keys.add(reference["key"])
        require(keys == SECRET_KEYS[component],
                f"{component}: reads Secret keys {sorted(keys)}, expected {sorted(SECRET_KEYS[component])}")


def check_worker_env(worker_container):
    env = {e["name"]: e.get("value") for e in worker_container.get("env", [])}
    require("CLERK_SECRET_KEY" not in env, "worker: CLERK_SECRET_KEY is for the operators' pods only")
    require(env.get("CLERK_SYNC__WORKER__MIGRATE_ON_START") == "false",
            "worker: must not migrate at start (the migrate Job does, with the migration role)")


# --- RabbitMQ users and compose ----------------------------------------------


def user_prefix(definitions):
    names = [user["name"] for user in definitions["users"]]
    ingest = [name for name in names if name.endswith("_ingest")]
    require(len(ingest) == 1, f"definitions.json users {names}: no single <prefix>_ingest")
    return ingest[0].removesuffix("_ingest")


def check_rabbitmq_rights(definitions, prefix):
    """Each user may do what its component does and no more (as far as a
    name can tell): the ingest publishes to the events exchange only."""
    users = {user["name"].rsplit("_", 1)[1]: user for user in definitions["users"]}
    require(set(users) == {"ingest", "worker", "operators"}, f"users {sorted(users)}: one per component expected")
    rights = {p["user"].rsplit("_", 1)[1]: p for p in definitions["permissions"]}
    require(set(rights) == set(users), "every user needs exactly one permissions entry")
    require(all(not user["tags"] for user in users.values()), "no clerk-sync user needs a management tag")
    shard = f"{prefix}.shard.0"
    exchange, dead_letter = f"{prefix}.events", f"{prefix}.dead-letter"
    names = [exchange, dead_letter, shard, "amq.default", f"{prefix}.other"]

    def allowed(role, kind):
        pattern = rights[role][kind]
        return {name for name in names if pattern and re.search(pattern, name)}

    expected = {
        ("ingest", "configure"): set(), ("ingest", "write"): {exchange}, ("ingest", "read"): set(),
        ("worker", "configure"): {exchange, dead_letter, shard},
        ("worker", "write"): {dead_letter, shard}, ("worker", "read"): {exchange, dead_letter, shard},
        ("operators", "configure"): set(), ("operators", "write"): {exchange, "amq.default"},
        ("operators", "read"): {dead_letter},
    }
    for (role, kind), names_allowed in expected.items():
        require(allowed(role, kind) == names_allowed,
                f"{role} user: {kind} allows {sorted(allowed(role, kind))}, expected {sorted(names_allowed)}")
    return rights


def check_compose_users(services, definitions):
    """Each clerk-sync service connects as its component's RabbitMQ user,
    which the rabbitmq service loads (with its password) from definitions.json."""
    vhost = definitions["vhosts"][0]["name"]
    prefix = user_prefix(definitions)
    rabbitmq = services["rabbitmq"]
    mounts = " ".join(str(v) for v in rabbitmq.get("volumes", []))
    for needed in ("rabbitmq/definitions.json", "rabbitmq/passwords.py"):
        require(needed in mounts, f"rabbitmq: does not mount deploy/{needed}")
    for user in definitions["users"]:
        variable = "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user["name"].upper())
        require(rabbitmq["environment"].get(variable), f"rabbitmq: no {variable} for user {user['name']}")
    for name, role in (("ingest", "ingest"), ("migrate", "worker"), ("worker-1", "worker"),
                       ("worker-2", "worker"), ("operators", "operators")):
        environment = services[name]["environment"]
        url = re.fullmatch(r"amqp://([^:@]+):([^@]+)@rabbitmq:5672/(.+)", environment.get("AMQP_URL", ""))
        require(url and url.group(1) == f"{prefix}_{role}" and url.group(3) == vhost,
                f"{name}: AMQP_URL must be user {prefix}_{role} on vhost {vhost}")
        variable = "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", url.group(1).upper())
        require(url.group(2) == rabbitmq["environment"][variable], f"{name}: not the password rabbitmq loads")
        require(("CLERK_SECRET_KEY" in environment) == (name == "operators"),
                f"{name}: CLERK_SECRET_KEY is for the operators only")
