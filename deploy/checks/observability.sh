#!/usr/bin/env bash
# Checks the Prometheus alerts and the Grafana dashboard, offline:
#   - promtool check rules / check config / test rules (alerts_test.yml);
#   - every alert has a severity, a summary, a description and a runbook
#     that is a heading of the book's "Alerts and runbooks" page
#     (docs/src/operators/alerts.md), and fires in at least one unit test;
#   - every metric name in the alerts, their tests and the dashboard exists:
#     clerk-sync's names are read from ingest/src/metrics.rs,
#     worker/src/serving/metrics.rs and runtime/src/broker_link.rs (counters
#     get _total, histograms _bucket/_sum/
#     _count), RabbitMQ's from the list below; label names must exist too;
#   - the dashboard is valid JSON with unique panel ids, non-overlapping
#     panels, known template variables, and every query parses (promtool).
# promtool comes from Debian's `prometheus` package: only the binary is
# unpacked into target/tools/ (installing the package would pull in its web
# assets and, where services may start, start a Prometheus server on :9090,
# the worker's default port). It is fetched once
# (a run then takes ~4 s), then everything runs offline in ~1.5 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- promtool ------------------------------------------------------------
PROMTOOL=""
if [ -x target/tools/promtool ]; then
  PROMTOOL=target/tools/promtool
elif command -v promtool >/dev/null 2>&1; then
  PROMTOOL=$(command -v promtool)
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; }) ||
    fail "could not download Debian's prometheus package for promtool"
  dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p target/tools
  cp "$tmp/x/usr/bin/promtool" target/tools/promtool
  PROMTOOL=target/tools/promtool
fi
echo "ok: promtool $("$PROMTOOL" --version 2>&1 | head -n1 | awk '{print $3}') ($PROMTOOL)"

# --- Python with PyYAML ----------------------------------------------------
PY=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    PY=$candidate
    break
  fi
done
if [ -z "$PY" ]; then
  apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null 2>&1 ||
    fail "could not install python3-yaml"
  PY=/usr/bin/python3
fi

# --- promtool checks -------------------------------------------------------
out=$("$PROMTOOL" check rules deploy/prometheus/alerts.yml 2>&1) || { echo "$out" >&2; fail "promtool check rules deploy/prometheus/alerts.yml"; }
echo "ok: promtool check rules deploy/prometheus/alerts.yml ($(echo "$out" | grep -o '[0-9]* rules found'))"
out=$("$PROMTOOL" check config deploy/prometheus/prometheus.yml 2>&1) || { echo "$out" >&2; fail "promtool check config deploy/prometheus/prometheus.yml"; }
echo "ok: promtool check config deploy/prometheus/prometheus.yml"
out=$("$PROMTOOL" test rules deploy/prometheus/alerts_test.yml 2>&1) || { echo "$out" >&2; fail "promtool test rules deploy/prometheus/alerts_test.yml"; }
echo "ok: promtool test rules deploy/prometheus/alerts_test.yml"

# --- names, labels, runbooks, dashboard ------------------------------------
exprs=$(mktemp)
trap 'rm -f "$exprs"; if [ -n "${tmp:-}" ]; then rm -rf "$tmp"; fi' EXIT
"$PY" - "$exprs" <<'PY'
import json, os, re, sys, yaml

out_rules = sys.argv[1]
errors = []

# RabbitMQ's per-queue metrics (plugin rabbitmq_prometheus, checked against
# the 3.10 plugin's source and a live scrape). /metrics/detailed with
# family=queue_coarse_metrics / queue_consumer_count gives the
# rabbitmq_detailed_ names; /metrics/per-object gives the rabbitmq_queue_ ones.
RABBITMQ = {}
for prefix in ("rabbitmq_detailed_", "rabbitmq_"):
    for name in ("queue_messages_ready", "queue_messages_unacked", "queue_messages", "queue_consumers"):
        RABBITMQ[prefix + name] = {"vhost", "queue"}
TARGET_LABELS = {"job", "instance"}


def rust_metrics(path, prefix=None):
    """Exported names -> label names, from a prometheus_client registry
    (with the file's Registry::with_prefix, or `prefix` for a file that
    registers into a registry made elsewhere)."""
    src = open(path).read()
    if prefix is None:
        prefix = re.search(r'Registry::with_prefix\("([a-z_]+)"\)', src).group(1)
    structs = {
        m.group(1): set(re.findall(r"pub\s+(\w+)\s*:", m.group(2)))
        for m in re.finditer(r"struct\s+(\w+)\s*\{([^}]*)\}", src)
    }
    found = {}
    regs = re.findall(r'registry\.register\(\s*"(\w+)",\s*"[^"]*",\s*(\w+)\.clone\(\)', src)
    if not regs:
        errors.append(f"{path}: no registry.register(...) found")
    for name, var in regs:
        decl = re.search(r"let\s+" + var + r"\s*=([^;]*);", src)
        if not decl:
            errors.append(f"{path}: cannot find the declaration of {var}")
            continue
        text = decl.group(1)
        labels = set()
        fam = re.search(r"Family::<\s*(\w+)", text)
        if fam:
            labels = structs.get(fam.group(1), set())
        full = f"{prefix}_{name}"
        if "Histogram" in text:
            found[full + "_bucket"] = labels | {"le"}
            found[full + "_sum"] = labels
            found[full + "_count"] = labels
        elif "Counter" in text:
            found[full + "_total"] = labels
        elif "Gauge" in text:
            found[full] = labels
        else:
            errors.append(f"{path}: unknown metric type of {name}")
    return found


KNOWN = {"up": set()}
KNOWN.update(rust_metrics("ingest/src/metrics.rs"))
KNOWN.update(rust_metrics("worker/src/serving/metrics.rs"))
# The broker link's metrics, registered into both binaries' registries.
for binary in ("clerk_sync_ingest", "clerk_sync_worker"):
    KNOWN.update(rust_metrics("runtime/src/broker_link.rs", binary))
KNOWN.update(RABBITMQ)

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan",
            # aggregation operators, which may be followed by "by (...)" before "(":
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
            "count_values", "bottomk", "topk", "quantile"}
TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],:@])
""", re.X)


def tokens(expr):
    pos, toks = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            toks.append((m.lastgroup, m.group()))
    return toks


def check_expr(where, expr):
    """Metric names and label names of one PromQL expression; returns the names."""
    try:
        toks = tokens(expr)
    except ValueError as e:
        errors.append(f"{where}: {e}")
        return set()
    names, grouping = set(), set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "op" and text == "[":          # range or subquery: skip
            while i < len(toks) and toks[i][1] != "]":
                i += 1
        elif kind == "ident" and text.lower() in KEYWORDS:
            if text in ("by", "without", "on", "ignoring", "group_left", "group_right") and nxt == "(":
                i += 2
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        grouping.add(toks[i][1])
                    i += 1
        elif kind == "ident" and nxt == "(":      # function or aggregation
            pass
        elif kind == "ident" or (kind == "op" and text == "{"):
            name = text if kind == "ident" else None
            if name is not None:
                names.add(name)
                if name not in KNOWN:
                    errors.append(f"{where}: unknown metric {name}")
            if (kind == "op") or nxt == "{":
                if kind == "ident":
                    i += 1
                i += 1
                while toks[i][1] != "}":
                    if toks[i][0] == "ident":
                        label = toks[i][1]
                        allowed = KNOWN.get(name, set()) | TARGET_LABELS | {"__name__"}
                        if name in KNOWN and label not in allowed:
                            errors.append(f"{where}: {name} has no label {label}")
                    i += 1
        i += 1
    allowed = set(TARGET_LABELS)
    for n in names:
        allowed |= KNOWN.get(n, set())
    for label in grouping - allowed:
        errors.append(f"{where}: no metric of the expression has the label {label}")
    return names


# --- alerts -----------------------------------------------------------------
alerts_doc = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
alerts = [r for g in alerts_doc["groups"] for r in g["rules"] if "alert" in r]

RUNBOOKS = "docs/src/operators/alerts.md"
section = open(RUNBOOKS).read() if os.path.exists(RUNBOOKS) else ""
if not section:
    errors.append(f"{RUNBOOKS}: missing or empty (the alerts' runbooks)")


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


anchors = {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", section, re.M)}
used = set()
for rule in alerts:
    name = rule["alert"]
    where = f"alerts.yml {name}"
    used |= check_expr(where, rule["expr"])
    if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
        errors.append(f"{where}: severity label must be critical or warning")
    ann = rule.get("annotations", {})
    for key in ("summary", "description", "runbook"):
        if not ann.get(key, "").strip():
            errors.append(f"{where}: no {key} annotation")
    runbook = ann.get("runbook", "")
    if not runbook.startswith(RUNBOOKS + "#") or runbook.split("#", 1)[1] not in anchors:
        errors.append(f"{where}: runbook {runbook!r} is not a heading of {RUNBOOKS}")

tests_doc = yaml.safe_load(open("deploy/prometheus/alerts_test.yml"))
fired = set()
for t in tests_doc["tests"]:
    for s in t.get("input_series", []):
        check_expr(f"alerts_test.yml series {s['series']}", s["series"])
    for a in t.get("alert_rule_test", []):
        if a.get("exp_alerts"):
            fired.add(a["alertname"])
for rule in alerts:
    if rule["alert"] not in fired:
        errors.append(f"alerts_test.yml: no test fires {rule['alert']}")
if not errors:
    print(f"ok: {len(alerts)} alerts: names and labels known, summary/description/runbook present, "
          f"runbook anchors in {RUNBOOKS}, each fired by a test")

# --- dashboard ----------------------------------------------------------------
n_errors = len(errors)
try:
    dash = json.load(open("deploy/grafana/clerk-sync.json"))
except ValueError as e:
    errors.append(f"deploy/grafana/clerk-sync.json: not valid JSON: {e}")
    dash = None
rules = []
if dash is not None:
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            errors.append(f"clerk-sync.json: no {key}")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    substitutes = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
    for name, v in variables.items():
        substitutes[name] = v.get("current", {}).get("value") or v.get("query") or "x"
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    ids, cells = set(), {}
    for p in panels:
        where = f"clerk-sync.json panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            errors.append(f"{where}: bad gridPos {g}")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errors.append(f"{where}: overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = p.get("id")
            else:
                continue
            break
        if p.get("type") == "row":
            continue
        if not p.get("title") or not p.get("targets"):
            errors.append(f"{where}: no title or no targets")
        for t in p.get("targets", []):
            ds = (t.get("datasource") or p.get("datasource") or {}).get("uid", "")
            if ds != "${datasource}":
                errors.append(f"{where}: datasource {ds!r} is not the $datasource variable")
            expr = t.get("expr", "")
            for var in re.findall(r"\$\{?(\w+)", expr):
                if var not in substitutes:
                    errors.append(f"{where}: unknown variable ${var}")
            concrete = re.sub(r"\$\{?(\w+)\}?", lambda m: substitutes.get(m.group(1), "x"), expr)
            used_here = check_expr(where, concrete)
            if not used_here:
                errors.append(f"{where}: query names no metric: {expr!r}")
            rules.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId')}", "expr": concrete})
    with open(out_rules, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    if len(errors) == n_errors:
        print(f"ok: deploy/grafana/clerk-sync.json: valid JSON, {len(panels)} panels, {len(rules)} queries, "
              f"every metric and label known, no overlap")

if errors:
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    sys.exit(1)
PY
out=$("$PROMTOOL" check rules "$exprs" 2>&1) || { echo "$out" >&2; fail "a dashboard query does not parse (promtool check rules)"; }
echo "ok: every dashboard query parses (promtool check rules, $(echo "$out" | grep -o '[0-9]* rules found'))"
