"""clerk-sync's least-privilege rules for the Kubernetes manifests, checked
by manifests.py: which secrets each component's pods get, and what the
NetworkPolicies let each one receive and send.

Each pod template is named by its `app.kubernetes.io/component` label.
"""

COMPONENT = "app.kubernetes.io/component"

# The Secret keys each component's pods may read, and no more.
SECRET_KEYS = {
    "ingest": {"webhook-secret", "ingest-amqp-url"},
    # The webhook secret: the worker checks the stored signatures again.
    "worker": {"webhook-secret", "database-url", "worker-amqp-url"},
    "migrate": {"migrate-database-url", "worker-amqp-url"},
    "status": {"database-url", "operators-amqp-url"},
    "operators": {"webhook-secret", "database-url", "operators-amqp-url", "clerk-secret-key"},
}

# TCP ports each component may receive on, and send to (53 is DNS).
INGRESS = {"ingest": {8080}, "worker": {9090}, "migrate": set(), "status": set(), "operators": set()}
EGRESS = {
    "ingest": {53, 5671, 5672},
    "worker": {53, 5671, 5672, 5432},
    "migrate": {53, 5671, 5672, 5432},
    "status": {53, 5671, 5672, 15671, 15672, 5432},
    "operators": {53, 5671, 5672, 5432, 443},
}
# Egress to any public address: Clerk's API, for the operators only.
PUBLIC_EGRESS = {"operators": {443}}


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
