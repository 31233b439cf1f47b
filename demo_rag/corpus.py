"""The bundled knowledge base: a fictional cloud provider's help centre.

The documents are generated from templates so the corpus is large enough to make
retrieval scores vary (a few hundred documents) while staying reviewable. Every
"random" fact comes from a SHA-256 of its key, never from ``random``, so the output
is identical on every Python version and the committed data file can be checked
against the generator (``python -m demo_rag.corpus --check``).

Each document has a matching question, which the workload driver asks; the answer is
then retrievable, as in a real help-centre bot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

CORPUS_PATH = Path(__file__).parent / "data" / "corpus.jsonl"


@dataclass(frozen=True)
class Document:
    """One help-centre article, small enough to fit several into a prompt."""

    id: str
    title: str
    area: str
    text: str


@dataclass(frozen=True)
class Question:
    """A question whose answer is in the document ``doc_id``."""

    text: str
    doc_id: str


@dataclass(frozen=True)
class _Area:
    name: str  # product name as written in prose
    cli: str  # CLI noun
    unit: str  # what the quota counts
    billing_unit: str
    what: str  # one-line description


_AREAS: tuple[_Area, ...] = (
    _Area("Object Storage", "bucket", "buckets", "GB-month", "S3-compatible object store"),
    _Area("Block Volumes", "volume", "volumes", "GB-month", "network-attached SSD storage"),
    _Area("Managed Postgres", "postgres", "database clusters", "vCPU-hour", "hosted PostgreSQL"),
    _Area("Kubernetes Engine", "cluster", "clusters", "node-hour", "managed Kubernetes service"),
    _Area("Load Balancer", "lb", "load balancers", "LB-hour", "layer 4 and layer 7 balancer"),
    _Area("Cloud DNS", "dns", "hosted zones", "million queries", "authoritative DNS service"),
    _Area("Edge CDN", "cdn", "distributions", "GB transferred", "content delivery network"),
    _Area("VPN Gateway", "vpn", "tunnels", "tunnel-hour", "site-to-site IPsec gateway"),
    _Area("Message Queue", "queue", "queues", "million messages", "durable message queue"),
    _Area("Serverless Functions", "function", "functions", "million invocations",
          "event-driven function runtime"),
    _Area("Container Registry", "registry", "repositories", "GB-month", "private image registry"),
    _Area("Secrets Vault", "vault", "secrets", "10k operations", "key and secret manager"),
    _Area("Identity and Access", "iam", "service accounts", "active user",
          "identity, roles and API keys service"),
    _Area("Billing Console", "billing", "budgets", "invoice", "cost reporting and budgets tool"),
    _Area("Backup Service", "backup", "backup plans", "GB-month", "policy-based backup service"),
    _Area("Nimbus Monitoring", "monitor", "dashboards", "million samples",
          "metrics and alerting platform"),
    _Area("Log Search", "logs", "log streams", "GB ingested", "centralised log search"),
    _Area("Search Engine", "search", "indexes", "search-unit-hour", "managed full-text search"),
    _Area("Inference Endpoints", "endpoint", "endpoints", "GPU-hour",
          "hosted model inference service"),
    _Area("Data Warehouse", "warehouse", "warehouses", "TB scanned",
          "columnar analytics warehouse"),
    _Area("Email Relay", "email", "sending domains", "thousand emails",
          "transactional email relay"),
    _Area("Static Sites", "site", "sites", "GB transferred", "static website hosting"),
    _Area("Cron Scheduler", "cron", "schedules", "million runs", "managed job scheduler"),
    _Area("Virtual Machines", "vm", "instances", "vCPU-hour", "general-purpose compute"),
)

_REGIONS = (
    "eu-west-1 (Dublin)", "eu-central-1 (Frankfurt)", "us-east-1 (Virginia)",
    "us-west-2 (Oregon)", "ap-south-1 (Mumbai)", "ap-northeast-1 (Tokyo)",
    "sa-east-1 (Sao Paulo)", "ca-central-1 (Montreal)",
)
_ERRORS = (
    ("the project quota for this resource is exhausted",
     "delete unused resources or request a quota increase"),
    ("the API key lacks the required role",
     "grant the editor role to the key's service account"),
    ("the request was signed with an expired token",
     "refresh the token with `nimbus auth login` and retry"),
    ("the resource is locked by a running operation",
     "wait for the operation to finish, then retry"),
    ("the selected region is at capacity",
     "retry in another availability zone or region"),
    ("the payload exceeds the maximum request size",
     "split the request into smaller batches"),
)
_FEATURES = (
    "server-side filtering", "idempotency keys", "pagination cursors", "bulk operations",
    "webhooks for state changes", "fine-grained audit events",
)
_PLANS = ("Business", "Enterprise", "Premium Support")
_MONTHS = ("January", "March", "May", "July", "September", "November")


def _h(key: str) -> int:
    """A stable integer for ``key``: the same on every platform and Python version."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _pick(key: str, options: Sequence[str]) -> str:
    return options[_h(key) % len(options)]


def _num(key: str, low: int, high: int) -> int:
    return low + _h(key) % (high - low + 1)


def _metric(area: _Area, n: int) -> str:
    return f"nimbus_{area.cli}_{('requests_total', 'latency_seconds', 'errors_total')[n]}"


def _error_code(area: _Area) -> str:
    return f"NB-{_num(area.cli + 'code', 100, 999)}"


def _regions(area: _Area) -> list[str]:
    count = _num(area.cli + "nreg", 3, len(_REGIONS))
    start = _num(area.cli + "reg0", 0, len(_REGIONS) - 1)
    return [_REGIONS[(start + i) % len(_REGIONS)] for i in range(count)]


def _old_version(area: _Area) -> str:
    return f"v{_num(area.cli + 'ver', 1, 3)}"


# One template per article kind: (title, body, question). Bodies are 2-3 sentences so
# the simulated model can quote one and the groundedness scorer has something to match.
_Template = Callable[[_Area], tuple[str, str, str]]


def _overview(a: _Area) -> tuple[str, str, str]:
    return (
        f"What is {a.name}?",
        f"{a.name} is Nimbus Cloud's {a.what}. It is generally available in "
        f"{len(_regions(a))} regions and is managed from the console, the CLI "
        f"(`nimbus {a.cli}`) and the REST API.",
        f"What is {a.name}?",
    )


def _quotas(a: _Area) -> tuple[str, str, str]:
    quota = _num(a.cli + "quota", 5, 50)
    return (
        f"{a.name} quotas",
        f"By default each project can create up to {quota} {a.unit} in {a.name}. The quota "
        f"can be raised to {quota * _num(a.cli + 'qmul', 4, 20)} by opening a support ticket "
        f"in the quota increase category; increases are usually approved within "
        f"{_num(a.cli + 'qh', 2, 48)} business hours.",
        f"How many {a.unit} can a project create in {a.name}?",
    )


def _pricing(a: _Area) -> tuple[str, str, str]:
    cents = _num(a.cli + "price", 2, 180)
    premium = cents + _num(a.cli + "prem", 1, 40)
    return (
        f"{a.name} pricing and cost",
        f"{a.name} is billed per {a.billing_unit} at ${cents / 100:.2f} in standard regions "
        f"and ${premium / 100:.2f} in premium regions. The free tier includes "
        f"{_num(a.cli + 'free', 1, 25)} {a.billing_unit} per month, and usage is metered "
        f"every {_pick(a.cli + 'meter', ('5', '15', '60'))} minutes.",
        f"How much does {a.name} cost?",
    )


def _sla(a: _Area) -> tuple[str, str, str]:
    sla = _pick(a.cli + "sla", ("99.9", "99.95", "99.99"))
    return (
        f"{a.name} service level agreement",
        f"The {a.name} SLA guarantees {sla}% monthly uptime. Below that, customers receive a "
        f"{_num(a.cli + 'credit', 10, 25)}% service credit, and credits must be claimed within "
        f"{_num(a.cli + 'claim', 14, 60)} days of the incident.",
        f"What uptime does the {a.name} SLA guarantee?",
    )


def _getting_started(a: _Area) -> tuple[str, str, str]:
    return (
        f"Getting started with {a.name}",
        f"To get started with {a.name}, run `nimbus {a.cli} create --name my-{a.cli}` or use "
        f"the console wizard. Provisioning takes about {_num(a.cli + 'prov', 1, 15)} minutes, "
        f"and the resource is ready when its status shows ACTIVE.",
        f"How do I get started with {a.name}?",
    )


def _troubleshooting(a: _Area) -> tuple[str, str, str]:
    meaning, fix = _ERRORS[_h(a.cli + "err") % len(_ERRORS)]
    code = _error_code(a)
    return (
        f"{a.name} error {code}",
        f"The error {code} from {a.name} means {meaning}. To fix it, {fix}. If the error "
        f"persists for more than {_num(a.cli + 'persist', 5, 30)} minutes, check the status "
        f"page before contacting support.",
        f"What does error {code} mean in {a.name}?",
    )


def _security(a: _Area) -> tuple[str, str, str]:
    return (
        f"{a.name} encryption",
        f"{a.name} encrypts data at rest with AES-256 keys held in the Secrets Vault and "
        f"rotated every {_pick(a.cli + 'rot', ('30', '90', '180', '365'))} days. Traffic in "
        f"transit requires TLS {_pick(a.cli + 'tls', ('1.2', '1.3'))}, and customer-managed "
        f"keys are available on the {_pick(a.cli + 'plan', _PLANS)} plan.",
        f"How is data encrypted in {a.name}?",
    )


def _backups(a: _Area) -> tuple[str, str, str]:
    return (
        f"{a.name} backups and retention",
        f"{a.name} takes automatic backups every {_pick(a.cli + 'bk', ('1', '6', '12', '24'))} "
        f"hours and keeps them for {_num(a.cli + 'ret', 7, 35)} days. Point-in-time restore "
        f"covers the last {_num(a.cli + 'pitr', 1, 7)} days, and a restore usually completes "
        f"in under {_num(a.cli + 'restore', 5, 45)} minutes.",
        f"How long are {a.name} backups kept?",
    )


def _rate_limits(a: _Area) -> tuple[str, str, str]:
    rps = _num(a.cli + "rps", 5, 200)
    return (
        f"{a.name} API rate limits",
        f"The {a.name} API allows {rps} requests per second per project, with bursts up to "
        f"{rps * _num(a.cli + 'burst', 2, 5)}. Requests above the limit get HTTP 429 with a "
        f"Retry-After header, and clients should back off exponentially from "
        f"{_pick(a.cli + 'bo', ('100', '250', '500'))} ms.",
        f"What is the API rate limit for {a.name}?",
    )


def _regions_doc(a: _Area) -> tuple[str, str, str]:
    return (
        f"{a.name} regions",
        f"{a.name} is available in {', '.join(_regions(a))}. Data never leaves its region "
        f"unless cross-region replication is enabled, which adds about "
        f"{_num(a.cli + 'lag', 1, 30)} seconds of replication lag.",
        f"Which regions is {a.name} available in?",
    )


def _deprecation(a: _Area) -> tuple[str, str, str]:
    old = _old_version(a)
    new = f"v{int(old[1:]) + 1}"
    return (
        f"{a.name} API {old} deprecation",
        f"Version {old} of the {a.name} API is deprecated and will be removed on 1 "
        f"{_pick(a.cli + 'month', _MONTHS)} {_num(a.cli + 'year', 2027, 2028)}. Version {new} "
        f"adds {_pick(a.cli + 'feat', _FEATURES)}; migrate by upgrading the client library to "
        f"{_num(a.cli + 'lib', 2, 9)}.0 or later.",
        f"When will version {old} of the {a.name} API be removed?",
    )


def _monitoring(a: _Area) -> tuple[str, str, str]:
    return (
        f"Monitoring {a.name}",
        f"{a.name} exports the metrics {_metric(a, 0)}, {_metric(a, 1)} and {_metric(a, 2)} to "
        f"Nimbus Monitoring every {_pick(a.cli + 'int', ('10', '30', '60'))} seconds. A common "
        f"alert fires when {_metric(a, 2)} grows faster than "
        f"{_num(a.cli + 'thr', 1, 20)} per minute for {_num(a.cli + 'win', 5, 15)} minutes.",
        f"Which metrics does {a.name} export?",
    )


_TEMPLATES: tuple[_Template, ...] = (
    _overview, _quotas, _pricing, _sla, _getting_started, _troubleshooting, _security,
    _backups, _rate_limits, _regions_doc, _deprecation, _monitoring,
)


def _generate() -> tuple[list[Document], list[Question]]:
    documents: list[Document] = []
    questions: list[Question] = []
    for area in _AREAS:
        for template in _TEMPLATES:
            title, text, question = template(area)
            doc_id = f"kb-{len(documents) + 1:04d}"
            documents.append(Document(id=doc_id, title=title, area=area.name, text=text))
            questions.append(Question(text=question, doc_id=doc_id))
    return documents, questions


def generate() -> list[Document]:
    """Build the corpus from the templates (what ``data/corpus.jsonl`` must contain)."""
    return _generate()[0]


@lru_cache(maxsize=1)
def questions() -> tuple[Question, ...]:
    """One question per document, in corpus order."""
    return tuple(_generate()[1])


def dumps(documents: Sequence[Document]) -> str:
    """Serialise documents as JSON lines, the format of the committed data file."""
    return "".join(json.dumps(asdict(d), ensure_ascii=False) + "\n" for d in documents)


def load(path: Path = CORPUS_PATH) -> list[Document]:
    """Read the corpus a vector database would index: the committed file, not the generator."""
    with path.open(encoding="utf-8") as f:
        return [Document(**json.loads(line)) for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="(Re)generate the bundled corpus.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed data file differs from the generator")
    args = parser.parse_args(argv)
    text = dumps(generate())
    if args.check:
        current = CORPUS_PATH.read_text(encoding="utf-8") if CORPUS_PATH.exists() else ""
        if current != text:
            print(f"{CORPUS_PATH} is stale: run python -m demo_rag.corpus", file=sys.stderr)
            return 1
        return 0
    CORPUS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} documents to {CORPUS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
