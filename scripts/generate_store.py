#!/usr/bin/env python3
"""Generate a realistic async-job store (``store.v1.json``) of a given size.

The output is byte-for-byte what the service writes, i.e.
``json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2).encode()``,
with the sections ``events``, ``jobs``, ``notifications``, ``results`` and
``schema_version`` (5).  It is meant for tests and benchmarks of streamclean
and can write stores of many gigabytes quickly and in constant memory.

Usage::

    python scripts/generate_store.py OUT --size 100MB [--seed 0] \
        [--now 2026-11-28T00:00:00+00:00]

    # from Python (e.g. loaded with importlib from this file's path)
    stats = generate_store(path, 100_000_000, seed=0, now=datetime(...))
    stats.jobs, stats.events, stats.results, stats.bytes

How it works, and why:

* Nothing is kept in memory across jobs.  Every job is regenerated from
  ``random.Random(seed * 1_000_003 + index)`` whenever a section needs it: the
  first draws give its *skeleton* (id, status, timeline, how many events and
  results), which every section recomputes identically; the section-specific
  content (request payload, event payloads, result payloads) comes from
  separate generators seeded by the skeleton, so the ``events`` section does
  not pay for building result payloads and vice versa.
* Ids start with the zero-padded hex job index, so emitting jobs in index
  order *is* emitting them in sorted-key order, as ``sort_keys=True`` demands.
* Each record is serialised by orjson (much faster than ``json.dumps`` with
  ``indent``) and shifted right to its depth.  orjson matches ``json.dumps``
  only for some values, so records hold only strings, 64-bit ints, bools,
  None, lists/dicts and floats from a pool checked at import time.
* Timestamps spread over the 30 days before ``now`` with a bias towards
  recent ones (traffic grows), so that a cleanup with the default TTLs
  (results 7 d, events 3 d) deletes roughly 43 % of results and 59 % of events.
  ``--uniform-days N`` spreads them evenly over N days instead (a known arrival
  rate, for projections of growth), every job terminal except the share that
  ``--running-share`` keeps running for ever.
* A 1 GB store is ~200,000 jobs (~5.2 KB each: ~6 events, ~0.9 results).
  Chunks of 1000 jobs per section are rendered by forked worker processes
  (one per CPU) and written in order; the bytes do not depend on the number
  of workers.
"""

import argparse
import math
import multiprocessing
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Optional

import orjson

SCHEMA_VERSION = 5
RESULT_SCHEMA_VERSION = 3
HISTORY_DAYS = 30
DEFAULT_NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_SECOND = 1_000_000  # timestamps are handled as integer microseconds
_HOUR = 3600 * _SECOND
_DAY = 24 * _HOUR

_ORJSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
_WRITE_BUFFER = 1 << 20  # chunks are bigger and go straight to the file
_CHUNK_JOBS = 1000  # jobs per unit of work handed to a worker (~2 MB of events)
_MAX_EVENTS = 12  # per job, as seen in production stores
_CALIBRATION_JOBS = 2000  # jobs measured exactly before extrapolating the count

# ---------------------------------------------------------------------------
# Content pools.  Fixed at import so that output depends only on the seed.
# ---------------------------------------------------------------------------

_TERMINAL = ("completed", "failed", "canceled")
# (status, cumulative probability): ~80 % terminal, like a busy production store.
_STATUS_CDF = (
    ("completed", 0.62),
    ("failed", 0.74),
    ("canceled", 0.80),
    ("queued", 0.86),
    ("running", 0.94),
    ("partial", 1.00),
)
_JOB_TYPES = (
    "document.extract",
    "invoice.ocr",
    "report.render",
    "embedding.batch",
    "translation.batch",
    "export.csv",
)
_LANGUAGES = ("de", "en", "fr", "ja", "zh", "es", "it", "pl", "ru")
_TITLES = (
    "Quarterly report Q3",
    "Prüfbericht für Müller & Söhne GmbH",
    "Rechnung Nr. 2026-0815 – Größe A4",
    "請求書の処理",
    "年度财务报告（草稿）",
    "Contrat de prestation — révision",
    "Договор поставки № 17",
    "Lieferschein Straße 12 ✅",
    "Onboarding checklist 🚀",
    "Meeting notes",
    "Scan 0042",
    "Produktkatalog Herbst/Winter",
)
_SENTENCES = (
    "Total amount due within 30 days of the invoice date.",
    "Die Lieferung erfolgt frei Haus, zahlbar ohne Abzug.",
    "Bitte überweisen Sie den Betrag bis zum 15. Dezember.",
    "本契約は両当事者の署名をもって発効する。",
    "所有数据均已成功导出。",
    "Le montant TTC inclut la TVA à 20 %.",
    "Signature missing on page 3; flagged for manual review.",
    "Table detected with 4 columns and 12 rows.",
    "Confidence below threshold, keeping the raw OCR text.",
    "Übersetzung abgeschlossen 🎉",
    "Посылка доставлена получателю.",
    "Line items reconciled against purchase order PO-77812.",
)
_FIELDS = (
    "invoice_number", "invoice_date", "due_date", "total_amount", "currency",
    "vat_id", "iban", "supplier_name", "customer_name", "line_item",
    "page_heading", "paragraph", "signature", "address",
)
_TAGS = ("urgent", "batch", "backfill", "customer-facing", "eu", "apac", "pii", "retry-safe", "nightly")
_FORMATS = ("json", "csv", "pdf", "xlsx", "parquet")
_EXTENSIONS = (".pdf", ".png", ".tiff", ".docx", ".jpg")
_MODELS = (
    ("layout-ocr", "2.4.1"),
    ("layout-ocr", "2.5.0"),
    ("doc-extract-xl", "1.9.3"),
    ("mt-europarl", "0.8.12"),
    ("embed-multilingual", "3.1.0"),
)
_ACTORS = (
    "alice@example.com", "bob@example.org", "jürgen.weiß@example.de",
    "svc-billing", "svc-ingest", "李伟@example.cn",
)
_TENANTS = tuple(f"tenant-{n:03d}" for n in range(1, 41))
_HOSTS = tuple(f"worker-{n:02d}.jobs.internal" for n in range(1, 17))
_QUEUES = ("default", "bulk", "priority", "ocr-gpu")
_ERRORS = (
    ("TIMEOUT", "Worker did not report progress for 300 s", True),
    ("OCR_FAILED", "Page 4 could not be decoded: unsupported TIFF compression", False),
    ("UPSTREAM_503", "Storage backend returned 503 Service Unavailable", True),
    ("INVALID_INPUT", "Eingabedatei ist beschädigt oder leer", False),
    ("OOM", "Worker exceeded its memory limit (4096 MiB)", True),
    ("QUOTA", "Tenant quota exhausted for the current billing period", False),
)
_CANCEL_REASONS = (
    "user requested", "superseded by a newer job", "Abbruch durch Benutzer",
    "tenant suspended", "ユーザーによるキャンセル",
)
_PROGRESS_MESSAGES = (
    "parsing pages", "running OCR", "extracting fields", "Seiten werden analysiert",
    "正在处理", "uploading artifacts", "rendering ✨",
)

# Floats are only safe when orjson prints them exactly like float.__repr__
# (they differ on exponents such as 1e-05); round hundredths always are.
_FLOATS = tuple(n / 100 for n in range(0, 10001))
_UNIT_FLOATS = tuple(n / 1000 for n in range(500, 1001))  # confidences 0.5 .. 1.0
for _value in _FLOATS + _UNIT_FLOATS:
    if orjson.dumps(_value) != repr(_value).encode():  # pragma: no cover - guards orjson upgrades
        raise RuntimeError(f"orjson and json.dumps disagree on {_value!r}")


@dataclass(frozen=True)
class Stats:
    """What was written; ``bytes`` is the exact file size."""

    path: str
    bytes: int
    jobs: int
    events: int
    results: int
    seconds: float


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


_DATES: dict = {}  # day number -> "YYYY-MM-DD"; a store spans only ~30 days


def _iso(us: int) -> str:
    """What datetime.isoformat() prints for ``us`` microseconds after the epoch, UTC.

    Twice as fast as building a datetime, which matters at ~10 timestamps per
    job.  Like isoformat, it leaves out ".ffffff" when the microsecond is zero.
    """
    day, rem = divmod(us, _DAY)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
    sec, micro = divmod(rem, _SECOND)
    if micro:
        return "%sT%02d:%02d:%02d.%06d+00:00" % (date, sec // 3600, sec // 60 % 60, sec % 60, micro)
    return "%sT%02d:%02d:%02d+00:00" % (date, sec // 3600, sec // 60 % 60, sec % 60)


def _uuid(bits: int) -> str:
    """A UUID4-looking string from 128 random bits."""
    return _ordered_id(bits >> 96, (bits >> 80) & 0xFFFF, bits)


def _ordered_id(index: int, sub: int, bits: int) -> str:
    """A UUID4-looking id that sorts by (index, sub), with a tail from ``bits``."""
    return "%08x-%04x-4%03x-%04x-%012x" % (
        index, sub, (bits >> 64) & 0xFFF, 0x8000 | ((bits >> 48) & 0x3FFF), bits & 0xFFFFFFFFFFFF)


def _chooser(rnd):
    """``pick(seq)``: a random element, drawing exactly one ``rnd()``."""
    def pick(seq):
        return seq[int(rnd() * len(seq))]
    return pick


def _entry(key: str, value: object, pad: bytes) -> bytes:
    """``"key": value`` as json.dumps(indent=2) prints it at the depth of ``pad``.

    orjson indents as if ``value`` were the document root; prefixing every
    continuation line with ``pad`` moves it to the right depth.
    """
    body = orjson.dumps(value, option=_ORJSON_OPTS).replace(b"\n", b"\n" + pad)
    return pad + orjson.dumps(key) + b": " + body


# ---------------------------------------------------------------------------
# The skeleton: what every section must agree on
# ---------------------------------------------------------------------------


class _Skeleton:
    """Id, status and timeline of one job, regenerated identically by every section."""

    __slots__ = (
        "index", "job_id", "status", "job_type", "attempt", "priority", "tenant", "queue", "requested_by",
        "queued", "started", "finished", "events", "results", "content_seed",
    )


@dataclass(frozen=True)
class Arrivals:
    """Uniform arrivals instead of the default growing traffic: jobs queued evenly over the
    ``days`` before ``now``; ``running_share`` of them still running whatever their age (jobs
    that never end), the rest terminal (completed, failed, canceled as in the default mix).

    Evenly, not at random: job ``i`` is queued at the fraction ``i * golden ratio`` (mod 1) of
    the span, and runs for ever when ``i * (sqrt 2 - 1)`` (mod 1) is below the share. Any
    span of days then holds its share of the jobs, and of the running ones, to within a few
    jobs, so that a store of a few MB already has a known arrival rate."""

    days: float
    running_share: float = 0.0


def _skeleton(seed: int, index: int, now_us: int, arrivals: Optional[Arrivals] = None) -> _Skeleton:
    rng = random.Random(seed * 1_000_003 + index)
    rnd = rng.random
    pick = _chooser(rnd)
    sk = _Skeleton()
    sk.index = index
    sk.job_id = _ordered_id(index, rng.getrandbits(16), rng.getrandbits(128))
    u = rnd()
    if arrivals is not None:
        status = _uniform_status(index, u, arrivals)
    else:
        for status, p in _STATUS_CDF:
            if u < p:
                break
    sk.status = status
    sk.job_type = pick(_JOB_TYPES)
    sk.priority = int(rnd() * 10)
    sk.tenant = pick(_TENANTS)
    sk.queue = pick(_QUEUES)
    sk.requested_by = pick(_ACTORS)
    sk.content_seed = rng.getrandbits(64)

    # Squaring a uniform draw piles jobs up towards `now`, like a store whose
    # traffic has grown; it puts ~52 % of jobs beyond 7 days and ~68 % beyond 3.
    if arrivals is not None:
        age = int(arrivals.days * _DAY * ((index * _GOLDEN + seed * _SQRT2) % 1.0))
    else:
        age = int(HISTORY_DAYS * _DAY * rnd() ** 2)
        if sk.status in ("queued", "running"):
            age //= 20  # a job does not stay queued or running for weeks
    queued = now_us - age - _SECOND
    if rnd() < 0.05:
        queued -= queued % _SECOND  # isoformat then prints no microseconds
    sk.queued = queued

    sk.attempt = 1
    if sk.status == "failed":
        sk.attempt = 1 + int(rnd() * 3)
    elif sk.status in ("completed", "partial") and rnd() < 0.08:
        sk.attempt = 2
    _plan_timeline(sk, rng, now_us)
    return sk


_GOLDEN = (5 ** 0.5 - 1) / 2
_SQRT2 = 2 ** 0.5 - 1


def _uniform_status(index: int, u: float, arrivals: Arrivals) -> str:
    """Job ``index``'s status under uniform arrivals (``u`` a draw): running, or a terminal one."""
    if (index * _SQRT2) % 1.0 < arrivals.running_share:
        return "running"
    terminal = u * _STATUS_CDF[2][1]
    for status, p in _STATUS_CDF[:3]:
        if terminal < p:
            return status
    return _STATUS_CDF[2][0]


def _plan_timeline(sk: _Skeleton, rng: random.Random, now_us: int) -> None:
    """Fill in start/finish times, the event plan and the result plan.

    Events are (event_type, actor_type, time); results are (kind, time).
    Everything happens after queued_at and no later than now.
    """
    rnd = rng.random
    t = sk.queued
    events = [("job.queued", "api", t)]
    results = []
    sk.started = sk.finished = None
    status = sk.status

    if status == "queued":
        pass  # still waiting for a worker
    elif status == "canceled" and rnd() < 0.5:  # canceled before a worker picked it up
        t += int(rnd() * 600 * _SECOND) + 1
        events.append(("job.canceled", "user", t))
        sk.finished = t
    else:
        _plan_run(sk, rng, t, events, results)
    _shift_into_past(sk, events, results, now_us)


def _plan_run(sk: _Skeleton, rng: random.Random, t: int, events: list, results: list) -> None:
    """Attempts, progress reports, partial results and the final event of a started job."""
    rnd = rng.random
    status = sk.status
    for attempt in range(1, sk.attempt + 1):
        t += int(rnd() ** 3 * 120 * _SECOND) + 1000  # queue wait, mostly short
        if attempt > 1:
            events.append(("job.retrying", "system", t))
            t += int(rnd() * 30 * _SECOND) + 1
        events.append(("job.started", "worker", t))
        sk.started = t if sk.started is None else sk.started
        # 0..6 progress reports, some of which store a partial result; keep
        # one slot for the final event so that no job has more than 12.
        reports = int(rnd() * 7) if attempt == sk.attempt else int(rnd() * 2)
        for _ in range(min(reports, _MAX_EVENTS - 1 - len(events))):
            t += int(rnd() * 90 * _SECOND) + 1000
            events.append(("job.progress", "worker", t))
            if rnd() < _PARTIAL_RESULT_CHANCE[status] and len(results) < 4:
                results.append(("partial", t + 500))

    t += int(rnd() * 60 * _SECOND) + 1000
    if status in _TERMINAL:
        events.append((f"job.{status}", "user" if status == "canceled" else "worker", t))
        sk.finished = t
        if status == "completed":
            results.append(("final", t - 200))
    elif status == "partial":
        events.append(("job.partial", "worker", t))
        if not results:
            results.append(("partial", t - 200))


def _shift_into_past(sk: _Skeleton, events: list, results: list, now_us: int) -> None:
    # Jobs queued just before `now` would otherwise run into the future:
    # shift the whole history back so that the last event is at or before now
    # (by whole seconds, so a queued_at without microseconds keeps none).
    overshoot = max(events[-1][2], results[-1][1] if results else 0) - now_us
    if overshoot > 0:
        overshoot = -(-overshoot // _SECOND) * _SECOND
        shift = lambda x: None if x is None else x - overshoot  # noqa: E731
        sk.queued, sk.started, sk.finished = shift(sk.queued), shift(sk.started), shift(sk.finished)
        events = [(e, a, x - overshoot) for e, a, x in events]
        results = [(k, x - overshoot) for k, x in results]
    sk.events, sk.results = events, results


# Chance that a progress report stores a partial result, by job status.
_PARTIAL_RESULT_CHANCE = {
    "completed": 0.06, "failed": 0.08, "canceled": 0.05,
    "queued": 0.0, "running": 0.3, "partial": 0.35,
}


# ---------------------------------------------------------------------------
# Section content
# ---------------------------------------------------------------------------


def _content_rng(sk: _Skeleton, section: int) -> random.Random:
    # A generator per section, so each section draws only what it prints.
    return random.Random(sk.content_seed * 4 + section)


def _updated_at(sk: _Skeleton) -> int:
    last = sk.events[-1][2]
    return max(last, sk.results[-1][1]) if sk.results else last


def _job_record(sk: _Skeleton) -> dict:
    rng = _content_rng(sk, 0)
    rnd = rng.random
    pick = _chooser(rnd)
    error = None
    if sk.status == "failed":
        code, message, retryable = pick(_ERRORS)
        error = {"code": code, "message": message, "retryable": retryable,
                 "details": {"attempt": sk.attempt, "host": pick(_HOSTS)}}
    return {
        "attempt": sk.attempt,
        "error": error,
        "finished_at": None if sk.finished is None else _iso(sk.finished),
        "job_id": sk.job_id,
        "job_type": sk.job_type,
        "max_attempts": 3,
        "priority": sk.priority,
        "queue": sk.queue,
        "queued_at": _iso(sk.queued),
        "request_payload_json": _request_payload(rng, sk),
        "requested_by": sk.requested_by,
        "result_count": len(sk.results),
        "started_at": None if sk.started is None else _iso(sk.started),
        "status": sk.status,
        "tenant_id": sk.tenant,
        "updated_at": _iso(_updated_at(sk)),
    }


def _request_payload(rng: random.Random, sk: _Skeleton) -> dict:
    """What the client submitted; its shape depends on the job type."""
    rnd = rng.random
    pick = _chooser(rnd)
    payload = {
        "callback_url": f"https://hooks.example.com/{sk.tenant}/jobs/{sk.job_id}",
        "idempotency_key": _uuid(rng.getrandbits(128)),
        "tags": [pick(_TAGS) for _ in range(int(rnd() * 4))],
    }
    kind = sk.job_type
    if kind in ("document.extract", "invoice.ocr"):
        payload["input"] = {"documents": [_document(rng) for _ in range(1 + int(rnd() ** 3 * 6))],
                            "source": "s3" if rnd() < 0.7 else "upload"}
        payload["options"] = {
            "dpi": pick((150, 200, 300, 600)),
            "languages": [pick(_LANGUAGES) for _ in range(1 + int(rnd() * 3))],
            "ocr": rnd() < 0.6,
            "threshold": pick(_UNIT_FLOATS),
        }
    elif kind in ("embedding.batch", "translation.batch"):
        payload["input"] = {"texts": [pick(_SENTENCES) for _ in range(1 + int(rnd() ** 2 * 6))]}
        payload["options"] = {"model": pick(_MODELS)[0],
                              "source_lang": pick(_LANGUAGES),
                              "target_lang": pick(_LANGUAGES)}
    elif kind == "report.render":
        day = 1 + int(rnd() * 28)
        payload["report"] = {
            "filters": {"min_amount": pick(_FLOATS), "region": pick(("eu", "us", "apac"))},
            "period": {"days": 1 + int(rnd() * 90), "from": f"2026-{1 + int(rnd() * 10):02d}-{day:02d}"},
            "template": pick(_TITLES),
        }
    else:  # export.csv
        payload["query"] = {"columns": [pick(_FIELDS) for _ in range(2 + int(rnd() * 6))],
                            "format": pick(_FORMATS),
                            "limit": 1000 * (1 + int(rnd() * 500))}
    if rnd() < 0.3:
        payload["note"] = pick(_SENTENCES)
    return payload


def _document(rng: random.Random) -> dict:
    rnd = rng.random
    pick = _chooser(rnd)
    return {
        "doc_id": f"doc-{rng.getrandbits(40):010x}",
        "filename": f"upload_{rng.getrandbits(24):06x}{pick(_EXTENSIONS)}",
        "language": pick(_LANGUAGES),
        "pages": 1 + int(rnd() ** 3 * 400),
        "sha256": f"{rng.getrandbits(256):064x}",
        "title": pick(_TITLES),
    }


def _event_records(sk: _Skeleton) -> list:
    rng = _content_rng(sk, 1)
    rnd = rng.random
    pick = _chooser(rnd)
    total_steps = 10 + int(rnd() * 90)
    done = 0
    records = []
    for seq, (event_type, actor, at) in enumerate(sk.events, start=1):
        if event_type == "job.queued":
            payload = {"priority": sk.priority, "queue": sk.queue}
        elif event_type == "job.started":
            payload = {"attempt": sk.attempt, "host": pick(_HOSTS)}
        elif event_type == "job.progress":
            done = min(total_steps, done + 1 + int(rnd() * total_steps / 4))
            payload = {"done": done, "total": total_steps,
                       "message": pick(_PROGRESS_MESSAGES)}
        elif event_type == "job.retrying":
            payload = {"backoff_seconds": 5 * int(1 + rnd() * 12), "reason": pick(_ERRORS)[0]}
        elif event_type == "job.failed":
            code, message, retryable = pick(_ERRORS)
            payload = {"error": {"code": code, "message": message, "retryable": retryable}}
        elif event_type == "job.canceled":
            payload = {"by": sk.requested_by, "reason": pick(_CANCEL_REASONS)}
        else:  # job.completed / job.partial
            payload = {"duration_ms": (at - sk.queued) // 1000, "results": len(sk.results)}
        records.append({
            "actor_type": actor,
            "event_id": _uuid(rng.getrandbits(128)),
            "event_seq": seq,
            "event_type": event_type,
            "job_id": sk.job_id,
            "occurred_at": _iso(at),
            "payload_json": payload,
        })
    return records


def _result_records(sk: _Skeleton) -> list:
    """[(result_id, record)] in result_seq order, which is also sorted-id order."""
    rng = _content_rng(sk, 2)
    out = []
    for seq, (kind, at) in enumerate(sk.results, start=1):
        result_id = _ordered_id(sk.index, seq, rng.getrandbits(128))
        payload, summary = _result_payload(rng, kind)
        out.append((result_id, {
            "created_at": _iso(at),
            "job_id": sk.job_id,
            "result_id": result_id,
            "result_kind": kind,
            "result_seq": seq,
            "result_payload": payload,
            "schema_version": RESULT_SCHEMA_VERSION,
            "summary_json": summary,
        }))
    return out


def _result_payload(rng: random.Random, kind: str) -> tuple:
    rnd = rng.random
    pick = _chooser(rnd)
    # Final results are the bulk of a store; partial ones are smaller snapshots.
    count = 1 + int(rnd() ** 3 * 18) if kind == "final" else 1 + int(rnd() ** 2 * 3)
    items = []
    for n in range(count):
        items.append({
            "confidence": pick(_UNIT_FLOATS),
            "field": pick(_FIELDS),
            "page": 1 + int(rnd() * 12),
            "text": pick(_SENTENCES),
        })
    model, version = pick(_MODELS)
    pages = 1 + int(rnd() * 40)
    payload = {
        "items": items,
        "language": pick(_LANGUAGES),
        "model": {"name": model, "version": version},
        "timings_ms": {"ocr": int(rnd() * 90_000), "postprocess": int(rnd() * 4000),
                       "total": int(rnd() * 120_000)},
    }
    if rnd() < 0.2:
        payload["warnings"] = [pick(_SENTENCES)]
    summary = {
        "items": count,
        "mean_confidence": pick(_UNIT_FLOATS),
        "pages": pages,
        "status": "ok" if kind == "final" else "in_progress",
    }
    return payload, summary


def _notification_records(seed: int, jobs: int, now_us: int, arrivals: Optional[Arrivals] = None) -> list:
    """A handful of notifications, as [(id, record)] sorted by id.

    Exactly one draw picks each job, so their size does not depend on the job
    count (which is computed from it).
    """
    rng = random.Random(seed * 1_000_003 - 1)
    rnd = rng.random
    pick = _chooser(rnd)
    out = []
    for n in range(4):
        job = _skeleton(seed, int(rnd() * jobs), now_us, arrivals) if jobs else None
        notification_id = f"ntf-{n:04d}-{rng.getrandbits(48):012x}"
        created = (job.events[-1][2] if job else now_us) + 1000
        out.append((notification_id, {
            "channel": ("email", "webhook", "slack")[n % 3],
            "created_at": _iso(min(created, now_us)),
            "job_id": job.job_id if job else None,
            "notification_id": notification_id,
            "recipient": pick(_ACTORS),
            "status": pick(("sent", "pending", "failed")),
            "template": "job_finished",
        }))
    return out


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

_PAD4 = b"    "


def _events_entry(sk: _Skeleton) -> bytes:
    return _entry(sk.job_id, _event_records(sk), _PAD4)


def _job_entry(sk: _Skeleton) -> bytes:
    return _entry(sk.job_id, _job_record(sk), _PAD4)


def _result_entries(sk: _Skeleton) -> list:
    return [_entry(rid, record, _PAD4) for rid, record in _result_records(sk)]


def _render_chunk(section: str, seed: int, start: int, stop: int, now_us: int,
                  arrivals: Optional[Arrivals] = None) -> tuple:
    """The ``section`` entries of jobs [start, stop), joined by ",\n".

    Returns (number of entries, number of events, bytes); a chunk is the unit
    of work handed to a worker process.
    """
    entries = []
    events = 0
    for index in range(start, stop):
        sk = _skeleton(seed, index, now_us, arrivals)
        if section == "events":
            events += len(sk.events)
            entries.append(_events_entry(sk))
        elif section == "jobs":
            entries.append(_job_entry(sk))
        else:
            entries.extend(_result_entries(sk))
    return len(entries), events, b",\n".join(entries)


def _chunks_serial(tasks: list, seed: int, now_us: int, arrivals: Optional[Arrivals] = None):
    for section, start, stop in tasks:
        yield _render_chunk(section, seed, start, stop, now_us, arrivals)


def _chunks_parallel(tasks: list, workers: int, seed: int, now_us: int, arrivals: Optional[Arrivals] = None):
    """Render ``tasks`` in forked worker processes, yielding chunks in task order.

    Worker k renders tasks k, k + workers, ...; the parent reads them back
    round-robin, so output order is fixed and a worker runs at most one chunk
    ahead (its pipe blocks until the parent reads).  Fork rather than spawn:
    the children inherit this module even when it was loaded from a file path
    under a name pickle could not import.
    """
    ctx = multiprocessing.get_context("fork")
    procs, conns = [], []
    try:
        for k in range(workers):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(sender, tasks[k::workers], seed, now_us, arrivals),
                               daemon=True)
            proc.start()
            sender.close()  # so that a dead worker shows up as EOFError, not a hang
            procs.append(proc)
            conns.append(receiver)
        for i in range(len(tasks)):
            try:
                message = conns[i % workers].recv()
            except EOFError:
                raise RuntimeError(f"generator worker {i % workers} died") from None
            if isinstance(message, str):
                raise RuntimeError(f"generator worker {i % workers} failed: {message}")
            yield message
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for conn in conns:
            conn.close()


def _worker(conn, tasks: list, seed: int, now_us: int, arrivals: Optional[Arrivals] = None) -> None:
    try:
        for section, start, stop in tasks:
            conn.send(_render_chunk(section, seed, start, stop, now_us, arrivals))
    except BaseException as exc:  # tell the parent why, instead of a bare EOF
        try:
            conn.send(f"{type(exc).__name__}: {exc}")
        except OSError:
            pass  # the parent is gone already
    finally:
        conn.close()


def _write_section(fh, name: str, chunks, last: bool = False) -> tuple:
    """Write ``"name": {...}`` from rendered chunks; return (entries, events).

    An empty object prints as ``{}`` and a filled one over several lines, as
    json.dumps does.
    """
    fh.write(b'  "' + name.encode() + b'": {')
    entries = events = 0
    for count, chunk_events, data in chunks:
        if count:
            fh.write(b",\n" if entries else b"\n")
            fh.write(data)
            entries += count
            events += chunk_events
    fh.write((b"\n  }" if entries else b"}") + (b"\n" if last else b",\n"))
    return entries, events


def _choose_job_count(size_bytes: int, seed: int, now_us: int, arrivals: Optional[Arrivals] = None) -> int:
    """The number of jobs that makes the file about ``size_bytes`` long.

    The first jobs are measured exactly (each adds its events entry, job entry
    and result entries plus separators); beyond that the count is
    extrapolated from their average, which is well within 1 % for big stores.
    """
    fixed = len(_render_small(seed, 1, now_us, arrivals))  # header, notifications, footer
    used, index = fixed, 0
    while index < _CALIBRATION_JOBS:
        sk = _skeleton(seed, index, now_us, arrivals)
        size = len(_events_entry(sk)) + len(_job_entry(sk)) + 4
        size += sum(len(e) + 2 for e in _result_entries(sk))
        if used + size > size_bytes:
            # Stop at whichever count lands closer to the target.
            return max(1, index + (size_bytes - used > used + size - size_bytes))
        used += size
        index += 1
    return index + round((size_bytes - used) / ((used - fixed) / index))


def _render_small(seed: int, jobs: int, now_us: int, arrivals: Optional[Arrivals] = None) -> bytes:
    """The parts of the file that do not grow with the job count, for sizing."""
    notifications = {nid: record for nid, record in _notification_records(seed, jobs, now_us, arrivals)}
    return orjson.dumps({"events": {}, "jobs": {}, "notifications": notifications,
                         "results": {}, "schema_version": SCHEMA_VERSION}, option=_ORJSON_OPTS)


def _to_utc_us(now: datetime) -> int:
    if now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)  # a naive time is UTC, as in streamclean
    return (now - _EPOCH) // timedelta(microseconds=1)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours taskset/cgroup pinning
    except AttributeError:
        return os.cpu_count() or 1


def generate_store(path, size_bytes: int, seed: int = 0, now: datetime = DEFAULT_NOW,
                   workers: Optional[int] = None, arrivals: Optional[Arrivals] = None) -> Stats:
    """Write a store of about ``size_bytes`` bytes to ``path`` and return its Stats.

    ``arrivals``: uniform arrivals over a number of days, with a share of jobs that never end
    (see `Arrivals`); the default (None) is the growing traffic of the last 30 days.

    ``workers``: processes rendering in parallel (forked; POSIX only).  The
    default uses every available CPU for stores big enough to profit and
    runs in-process otherwise.  The output does not depend on it.
    """
    started = time.perf_counter()
    now_us = _to_utc_us(now)
    jobs = _choose_job_count(size_bytes, seed, now_us, arrivals)
    ranges = [(start, min(start + _CHUNK_JOBS, jobs)) for start in range(0, jobs, _CHUNK_JOBS)]
    tasks = [(section, start, stop) for section in ("events", "jobs", "results") for start, stop in ranges]
    if workers is None:
        workers = _available_cpus() if len(ranges) >= 4 else 1
    if workers > 1 and hasattr(os, "fork"):
        chunks = _chunks_parallel(tasks, workers, seed, now_us, arrivals)
    else:
        chunks = _chunks_serial(tasks, seed, now_us, arrivals)

    per_section = len(ranges)
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # e.g. runtime/async_jobs/ in a fresh clone
    try:
        with open(path, "wb", buffering=_WRITE_BUFFER) as fh:
            fh.write(b"{\n")
            _, events = _write_section(fh, "events", islice(chunks, per_section))
            _write_section(fh, "jobs", islice(chunks, per_section))
            notifications = _notification_records(seed, jobs, now_us, arrivals)
            _write_section(fh, "notifications", [(len(notifications), 0, b",\n".join(
                _entry(nid, record, _PAD4) for nid, record in notifications))])
            results, _ = _write_section(fh, "results", chunks)
            fh.write(b'  "schema_version": ' + str(SCHEMA_VERSION).encode() + b"\n}")
            size = fh.tell()
    finally:
        chunks.close()  # on failure, stops the workers now rather than at garbage collection
    return Stats(path=str(path), bytes=size, jobs=jobs, events=events, results=results,
                 seconds=time.perf_counter() - started)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``123``, ``500K``, ``100MB``, ``1.5G`` (powers of 1000) or ``1GiB`` (powers of 1024)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    if binary and not unit:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    value = float(number) * base ** " kmg".index(unit.lower() or " ")
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1 byte: {text!r}")
    return int(value)


def _parse_now(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a realistic async-job store in the service's exact layout.")
    parser.add_argument("out", type=Path, help="output file (overwritten)")
    parser.add_argument("--size", type=parse_size, default=parse_size("100MB"),
                        help="target size: bytes, or K/M/G (=KB/MB/GB, powers of 1000), or KiB/MiB/GiB "
                             "(powers of 1024); default 100MB")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--now", type=_parse_now, default=DEFAULT_NOW,
                        help="history ends here (default %(default)s); naive times are UTC")
    parser.add_argument("--uniform-days", type=float, metavar="DAYS",
                        help="uniform arrivals over DAYS days before --now, every job terminal unless "
                             "--running-share says otherwise (default: growing traffic over 30 days)")
    parser.add_argument("--running-share", type=float, default=0.0, metavar="FRACTION",
                        help="with --uniform-days: the share of jobs still running, whatever their age")
    args = parser.parse_args(argv)
    if args.running_share and args.uniform_days is None:
        parser.error("--running-share needs --uniform-days")
    if not 0 <= args.running_share < 1:
        parser.error("--running-share must be at least 0 and below 1")
    arrivals = Arrivals(args.uniform_days, args.running_share) if args.uniform_days is not None else None
    stats = generate_store(args.out, args.size, seed=args.seed, now=args.now, arrivals=arrivals)
    print(f"{stats.path}: {stats.bytes} bytes, {stats.jobs} jobs, {stats.events} events, "
          f"{stats.results} results, {stats.seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
