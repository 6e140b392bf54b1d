#!/usr/bin/python3
"""Offline checks of deploy/: the image, the compose file, the Kubernetes
manifests and the RabbitMQ definitions. Run by deploy/checks/manifests.sh,
which installs the tools; prints one line per check and exits 1 if any
failed.

    manifests.py [--live]

--live also loads the RabbitMQ definitions, users included, into a
throwaway vhost of the local broker (and a throwaway database) and runs the
built binaries against them, each component as its own user (live.py).

Runs with Debian's python3, whose yaml and docker modules come with the
docker-compose package.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import yaml
from docker.utils.build import exclude_paths

# The checks' own modules leave no __pycache__ in the checkout.
sys.dont_write_bytecode = True
import least_privilege  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DEFINITIONS = DEPLOY / "rabbitmq/definitions.json"
# Kubernetes versions the manifests are validated against: the oldest with
# the preStop `sleep` action on by default, and the newest schema at hand.
K8S_VERSIONS = ("1.30.0", "1.37.0")
DUMMY_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Failed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise Failed(message)


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def first_lines(text, n=8):
    return " | ".join(line for line in text.strip().splitlines()[:n])


# --- image -----------------------------------------------------------------


def check_dockerfile():
    dockerfile = DEPLOY / "Dockerfile"
    result = run(["hadolint", "--no-color", str(dockerfile)])
    require(result.returncode == 0, "hadolint: " + first_lines(result.stdout + result.stderr))
    text = dockerfile.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    require(stages and stages[-1][1] == "runtime", "the last stage must be `runtime`")
    final = text[text.rfind("\nFROM ") :]
    user = re.findall(r"^USER\s+(\S+)", final, re.M)
    require(user and re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user[-1]),
            "the runtime stage must set a numeric non-root USER (Kubernetes' runAsNonRoot checks it)")
    for binary in ("clerk-sync-ingest", "clerk-sync-worker"):
        require(re.search(r"^COPY --from=builder .*" + binary, final, re.M), f"runtime stage lacks {binary}")
        require(f"-p {binary}" in text, f"the build does not build {binary}")
    require("--locked" in text, "cargo must build with --locked")
    return f"hadolint clean; {len(stages)} stages, runtime {stages[-1][0]} as user {user[-1]}"


def check_dockerignore():
    ignore = ROOT / ".dockerignore"
    require(ignore.is_file(), ".dockerignore missing at the repository root (the build context)")
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    context = {path.replace(os.sep, "/") for path in exclude_paths(str(ROOT), patterns)}
    files = {path for path in context if (ROOT / path).is_file()}
    leaked = sorted(p for p in files if p.startswith(("target/", ".git/", "fuzz/")) or "/target/" in p)
    require(not leaked, f"build context includes {leaked[:3]}")
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]
    needed = {"Cargo.toml", "Cargo.lock"}
    for member in workspace["members"]:
        needed.add(f"{member}/Cargo.toml")
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        for bench in manifest.get("bench", []):
            needed.add(bench.get("path", f"{member}/benches/{bench['name']}.rs").removeprefix("./"))
        needed |= {str(p.relative_to(ROOT)) for p in (ROOT / member / "src").rglob("*") if p.is_file()}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "migrations").rglob("*.sql")}
    missing = sorted(needed - files)
    require(not missing, f"build context lacks {missing[:5]}")
    size = sum((ROOT / p).stat().st_size for p in files)
    return f"context {len(files)} files, {size / 1e6:.1f} MB; no target/, .git or fuzz/"


# --- compose ---------------------------------------------------------------


def compose(*args, secret=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "POSTGRES_", "RABBITMQ_"))}
    if secret:
        env["CLERK_WEBHOOK_SECRET"] = DUMMY_SECRET
    # No Docker daemon is needed (nor contacted) to read the file.
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    return run(["docker-compose", "-f", str(DEPLOY / "compose.yaml"), *args], env=env, cwd=ROOT)


def check_compose():
    result = compose("config", "-q")
    require(result.returncode == 0, "docker-compose config: " + first_lines(result.stderr))
    if not (DEPLOY / ".env").exists():
        missing = compose("config", "-q", secret=False)
        require(missing.returncode != 0 and "CLERK_WEBHOOK_SECRET" in missing.stderr,
                "without CLERK_WEBHOOK_SECRET the file must be refused")
    resolved = yaml.safe_load(compose("config").stdout)
    services = resolved["services"]
    expected = {"postgres", "rabbitmq", "migrate", "ingest", "worker-1", "worker-2", "operators"}
    require(set(services) == expected, f"services {sorted(services)} != {sorted(expected)}")
    require(re.fullmatch(r"postgres:15(\D.*)?", services["postgres"]["image"]), "PostgreSQL must be 15")
    require(re.fullmatch(r"rabbitmq:3[.\d]*-management", services["rabbitmq"]["image"]),
            "RabbitMQ must be a 3.x-management image")
    require(any("15672" in str(p) for p in services["rabbitmq"].get("ports", [])), "management UI port not published")
    ours = ["migrate", "ingest", "worker-1", "worker-2", "operators"]
    images = {services[s]["image"] for s in ours}
    require(len(images) == 1, f"clerk-sync services run different images: {images}")
    for name in ours:
        build = services[name].get("build", {})
        require(build.get("dockerfile") == "deploy/Dockerfile" and Path(build.get("context", "")) == ROOT,
                f"{name}: must build deploy/Dockerfile from the repository root")
        require(services[name]["environment"].get("CLERK_WEBHOOK_SECRET") == DUMMY_SECRET,
                f"{name}: CLERK_WEBHOOK_SECRET not taken from the environment")
    require(services["migrate"]["command"] == ["clerk-sync-worker", "migrate"], "migrate: wrong command")
    require(services["migrate"].get("restart", "no") == "no", "migrate must not restart")
    for dependency in ("postgres", "rabbitmq"):
        condition = services["migrate"]["depends_on"][dependency]["condition"]
        require(condition == "service_healthy", f"migrate must wait for {dependency} to be healthy")
        require(services[dependency].get("healthcheck", {}).get("test"), f"{dependency} has no health check")
    for name, port in (("ingest", 8080), ("worker-1", 9090), ("worker-2", 9090)):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        require(condition == "service_completed_successfully", f"{name} must start after migrate succeeded")
        test = " ".join(services[name]["healthcheck"]["test"])
        require(f"127.0.0.1:{port}/readyz" in test, f"{name}: health check must probe /readyz on {port}")
    require(services["ingest"]["command"] == ["clerk-sync-ingest"], "ingest: wrong command")
    require(services["operators"].get("profiles") and services["operators"]["entrypoint"] == ["clerk-sync-worker"],
            "operators: a clerk-sync-worker entrypoint, not started by `up` (a profile)")
    try:
        least_privilege.check_compose_users(services, json.loads(DEFINITIONS.read_text()))
    except least_privilege.Failed as e:
        raise Failed(str(e)) from None
    for worker in ("worker-1", "worker-2"):
        require(services[worker]["command"] == ["clerk-sync-worker", "run"], f"{worker}: wrong command")
    return ("docker-compose config accepts it (and refuses it without CLERK_WEBHOOK_SECRET); start order and health "
            "checks as intended; each service its own RabbitMQ user, Clerk's secret key for the operators only")



# --- kubernetes ------------------------------------------------------------


def k8s_documents():
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def pod_templates(documents):
    for file, doc in documents:
        kind = doc["kind"]
        if kind in ("Deployment", "Job"):
            yield file, doc, doc["spec"]["template"]
        elif kind == "CronJob":
            yield file, doc, doc["spec"]["jobTemplate"]["spec"]["template"]


def check_k8s():
    files = sorted(str(p) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    for version in K8S_VERSIONS:
        result = run(["kubernetes-validate", "--strict", "--quiet", "-k", version, *files])
        require(result.returncode == 0, f"kubernetes-validate {version}: " + first_lines(result.stdout + result.stderr))
    documents = k8s_documents()
    by_kind = {}
    for file, doc in documents:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        require(doc["metadata"].get("namespace", "clerk-sync") == "clerk-sync" or doc["kind"] == "Namespace",
                f"{file}: {doc['kind']} outside the clerk-sync namespace")

    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    expected = {Path(f).name for f in files} - {"secret.example.yaml"}
    require(listed == expected, f"kustomization.yaml resources {sorted(listed)} != manifests {sorted(expected)}")
    require("secret.example.yaml" not in listed, "the example Secret must not be applied")
    image_names = {entry["name"] for entry in kustomization.get("images", [])}

    secret = by_kind["Secret"]["clerk-sync"]
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    configmap = by_kind["ConfigMap"]["clerk-sync"]["data"]
    images = set()
    templates, containers = {}, {}
    for file, owner, template in pod_templates(documents):
        where = f"{file}: {owner['kind']} {owner['metadata']['name']}"
        spec = template["spec"]
        component = template["metadata"]["labels"].get(least_privilege.COMPONENT)
        require(component in least_privilege.INGRESS and component not in templates,
                f"{where}: component label {component!r} unknown or taken by another pod template")
        templates[component] = template["metadata"]["labels"]
        containers[component] = spec["containers"]
        pod_security = spec.get("securityContext", {})
        require(pod_security.get("runAsNonRoot") is True and pod_security.get("runAsUser", 0) != 0,
                f"{where}: must run as a non-root user")
        require(pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp")
        require(spec.get("automountServiceAccountToken") is False, f"{where}: mounts a service account token")
        for container in spec["containers"]:
            cwhere = f"{where} container {container['name']}"
            security = container.get("securityContext", {})
            require(security.get("readOnlyRootFilesystem") is True, f"{cwhere}: root filesystem not read-only")
            require(security.get("allowPrivilegeEscalation") is False, f"{cwhere}: privilege escalation allowed")
            require(security.get("capabilities", {}).get("drop") == ["ALL"], f"{cwhere}: capabilities not dropped")
            resources = container.get("resources", {})
            for needed in ("requests.cpu", "requests.memory", "limits.memory"):
                section, key = needed.split(".")
                require(key in resources.get(section, {}), f"{cwhere}: no {needed}")
            images.add(container["image"])
            require(container["image"].split(":")[0] in image_names,
                    f"{cwhere}: image {container['image']} not set by kustomization.yaml images")
            require({"configMapRef": {"name": "clerk-sync"}} in container.get("envFrom", []),
                    f"{cwhere}: must read the clerk-sync ConfigMap (shared shard count and delivery limit)")
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    require(reference["name"] == "clerk-sync" and reference["key"] in secret_keys,
                            f"{cwhere}: {variable['name']} refers to a key the example Secret lacks")
            require(container["command"][0] in ("clerk-sync-ingest", "clerk-sync-worker"),
                    f"{cwhere}: unknown command")
            if owner["kind"] == "Deployment":
                port_names = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
                for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                    get = container.get(probe, {}).get("httpGet", {})
                    require(get.get("path") == path and get.get("port") in port_names,
                            f"{cwhere}: {probe} must GET {path} on a named port")
    require(len(images) == 1, f"containers run different images: {sorted(images)}")
    try:
        least_privilege.check_secrets(containers)
        least_privilege.check_worker_env(containers["worker"][0])
        policies = least_privilege.check_network_policies(list(by_kind["NetworkPolicy"].values()), templates)
    except least_privilege.Failed as e:
        raise Failed(str(e)) from None

    deployments = by_kind["Deployment"]
    ingest, worker = deployments["clerk-sync-ingest"], deployments["clerk-sync-worker"]
    ingest_container = ingest["spec"]["template"]["spec"]["containers"][0]
    require("preStop" in ingest_container.get("lifecycle", {}), "ingest: no preStop delay")
    require("replicas" not in ingest["spec"], "ingest: `replicas` would fight the HorizontalPodAutoscaler")
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    require(grace >= 60, "worker: terminationGracePeriodSeconds below 60")
    ingest_env = {e["name"]: e.get("value") for e in ingest_container["env"]}
    listen_port = int(ingest_env["INGEST_LISTEN"].rsplit(":", 1)[1])
    require(listen_port == ingest_container["ports"][0]["containerPort"], "ingest: INGEST_LISTEN != containerPort")

    hpa = by_kind["HorizontalPodAutoscaler"]["clerk-sync-ingest"]
    require(hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == "clerk-sync-ingest",
            "HPA must scale the ingest Deployment (autoscaling/v2)")
    require(hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu", "HPA must scale on CPU")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budgets = [b for b in by_kind["PodDisruptionBudget"].values()
                   if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        require(len(budgets) == 1, f"{name}: needs exactly one PodDisruptionBudget")
    service = by_kind["Service"]["clerk-sync-ingest"]
    require(service["spec"]["selector"].items() <= ingest["spec"]["template"]["metadata"]["labels"].items(),
            "the ingest Service selects no ingest pod")
    require(by_kind["Job"]["clerk-sync-migrate"]["spec"]["template"]["spec"]["containers"][0]["command"]
            == ["clerk-sync-worker", "migrate"], "the Job must run `clerk-sync-worker migrate`")

    topology = definitions_topology()
    for key, value in (("CLERK_SYNC__AMQP__PREFIX", topology["prefix"]),
                       ("CLERK_SYNC__AMQP__SHARDS", str(topology["shards"])),
                       ("CLERK_SYNC__AMQP__DELIVERY_LIMIT", str(topology["delivery_limit"]))):
        require(configmap.get(key) == value,
                f"configmap.yaml {key}={configmap.get(key)} but definitions.json declares {value}")

    detail = f"kubernetes-validate --strict {' and '.join(K8S_VERSIONS)}: {len(documents)} objects valid"
    if shutil.which("kubectl"):
        built = run(["kubectl", "kustomize", str(K8S)])
        require(built.returncode == 0, "kubectl kustomize: " + first_lines(built.stderr))
        detail += "; kustomize builds"
    return (detail + f"; non-root, read-only, probes, budgets and settings consistent; each component reads only "
            f"its Secret keys; {policies} NetworkPolicies: default deny, each component only its ports")


# --- rabbitmq --------------------------------------------------------------


def definitions_topology():
    """Prefix, shard count and delivery limit that definitions.json declares."""
    definitions = json.loads(DEFINITIONS.read_text())
    shard_queues = [q for q in definitions["queues"] if re.search(r"\.shard\.\d+$", q["name"])]
    require(shard_queues, "definitions.json declares no shard queue")
    prefix = shard_queues[0]["name"].rsplit(".shard.", 1)[0]
    limits = {q["arguments"].get("x-delivery-limit") for q in shard_queues}
    require(len(limits) == 1, f"shard queues with different delivery limits: {limits}")
    return {"prefix": prefix, "shards": len(shard_queues), "delivery_limit": limits.pop()}


def check_rabbitmq():
    definitions = json.loads(DEFINITIONS.read_text())
    topology = definitions_topology()
    # Everything but the deployment's own choices (prefix, shard count,
    # delivery limit, vhost, user) must be what amqp.rs declares.
    result = run([sys.executable, str(DEPLOY / "rabbitmq/definitions.py"), "--check", str(DEFINITIONS),
                  "--prefix", topology["prefix"], "--shards", str(topology["shards"]),
                  "--delivery-limit", str(topology["delivery_limit"]),
                  "--vhost", definitions["vhosts"][0]["name"],
                  "--user-prefix", least_privilege.user_prefix(definitions)])
    require(result.returncode == 0, first_lines(result.stderr))
    try:
        rights = least_privilege.check_rabbitmq_rights(definitions, topology["prefix"])
    except least_privilege.Failed as e:
        raise Failed(str(e)) from None
    policy = definitions["policies"][0]
    require(all(re.match(policy["pattern"], q["name"]) for q in definitions["queues"]), "policy misses a queue")
    # Each rabbitmq.conf key must be one RabbitMQ knows, where its schema is at hand.
    schemas = sorted(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/plugins/rabbit-*/priv/schema/rabbit.schema"))
    conf_keys = [line.split("=")[0].strip() for line in (DEPLOY / "rabbitmq/rabbitmq.conf").read_text().splitlines()
                 if "=" in line and not line.lstrip().startswith("#")]
    detail = ""
    if schemas:
        schema = schemas[-1].read_text()
        unknown = [key for key in conf_keys if f'{{mapping, "{key}"' not in schema]
        require(not unknown, f"rabbitmq.conf keys unknown to {schemas[-1].parts[-4]}: {unknown}")
        detail = f"; rabbitmq.conf keys known to {schemas[-1].parts[-4]}"
    return (f"definitions.json = what the binaries declare (runtime/src/amqp.rs): prefix "
            f"{topology['prefix']}, {topology['shards']} shards, x-delivery-limit {topology['delivery_limit']}; "
            f"users {', '.join(sorted(rights))} with their own rights (ingest: write {rights['ingest']['write']})"
            + detail)


# --- live (opt-in) ---------------------------------------------------------


def check_live():
    # Imported here: it needs pika, which only --live installs.
    import live
    try:
        return live.check_live()
    except live.Failed as e:
        raise Failed(str(e)) from None


def main():
    checks = [("image", check_dockerfile), ("dockerignore", check_dockerignore), ("compose", check_compose),
              ("kubernetes", check_k8s), ("rabbitmq", check_rabbitmq)]
    if "--live" in sys.argv[1:]:
        checks.append(("rabbitmq-live", check_live))
    failed = 0
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = check()
            print(f"ok    deploy {name}: {detail} ({time.monotonic() - started:.1f} s)")
        except Failed as e:
            failed += 1
            print(f"FAIL  deploy {name}: {e}")
        except Exception as e:  # a crash in a check is a failure, not a pass
            failed += 1
            print(f"FAIL  deploy {name}: {type(e).__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
