"""Hypothesis strategies producing job-store states (plain Python dicts) plus run inputs.

A ``Scenario`` carries the state together with ``now`` and the two TTLs, because the
timestamps are clustered around the cutoffs derived from them so that the ``<=``
boundary is hit exactly and by one microsecond on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

UTC = UTC
NOWS = (
    datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC),
)
NOW = NOWS[0]
NOW_ISO = NOW.isoformat()

STATUSES = ("queued", "running", "partial", "completed", "failed", "canceled")
TERMINAL_BIAS = ("completed", "failed", "canceled", "completed")
ODD_STATUSES = (
    "Completed",
    "FAILED",
    "Canceled",
    "cancelled",
    " completed",
    "completed ",
    "",
    None,
    1,
    ["completed"],
    {"status": "completed"},
)


@dataclass(frozen=True)
class Ttl:
    seconds: float | None  # None = retention disabled
    arg: str | None  # the DUR text given to the CLI (None = --disable-...)


@dataclass(frozen=True)
class Scenario:
    state: dict
    now: datetime
    results: Ttl
    events: Ttl
    jobs: Ttl = Ttl(None, None)  # job retention (issue 13); off unless drawn by job_scenarios


# --------------------------------------------------------------------------- TTLs


@st.composite
def ttls(draw, allow_disabled=True):
    choices = ["fixed", "micro", "unit"] + (["disabled"] if allow_disabled else [])
    kind = draw(st.sampled_from(choices))
    if kind == "disabled":
        return Ttl(None, None)
    if kind == "unit":
        unit, factor = draw(
            st.sampled_from(
                [("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("D", 86400), ("H", 3600)]
            )
        )
        n = draw(st.integers(0, 30 * 86400 // factor if factor < 86400 else 30))
        return Ttl(float(n * factor), f"{n}{unit}")
    if kind == "fixed":
        value = draw(
            st.sampled_from(
                ["0", "0.5", "1", "86400", "259200", "604800", "1.000001", "0.000001", "604800.0"]
            )
        )
        return Ttl(float(value), value)
    micros = draw(st.integers(0, 40 * 86400 * 10**6))
    arg = f"{micros // 10**6}.{micros % 10**6:06d}"
    return Ttl(micros / 10**6, arg)


# --------------------------------------------------------------------------- strings

SPECIAL_STRINGS = [
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\u2028",
    "\u2029",
    "😀",
    "e\u0301",
    "\x7f",
    '"quoted"',
    "back\\slash",
    "\n\t",
    "Z",
    "null",
    "NaN",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
]
# (No *paired* surrogates: "\ud83d\ude00" would serialise like "😀" and make duplicate keys.)
LONE_SURROGATES = ["\ud800", "\udfff", "x\udc00y", "\ud83d", "\ude00a"]


def texts(surrogates: bool):
    base = st.text(max_size=6)  # hypothesis excludes surrogates by default
    options = [base, st.sampled_from(SPECIAL_STRINGS)]
    if surrogates:
        options.append(st.sampled_from(LONE_SURROGATES))
    return st.one_of(*options)


# --------------------------------------------------------------------------- payloads

SPECIAL_NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    2**70,
    -(2**65),
    2**63,
    2**64 - 1,
    -(2**63) - 1,
    1e-05,
    1e16,
    5e-324,
    -0.0,
    0.0,
    0.1,
    1.7976931348623157e308,
    123456789.125,
    0,
    -1,
    10**30,
]


def payloads(surrogates: bool):
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(SPECIAL_NUMBERS),
        texts(surrogates),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(texts(surrogates), children, max_size=3),
        ),
        max_leaves=6,
    )


# --------------------------------------------------------------------------- timestamps

OFFSETS = [
    timedelta(0),
    timedelta(hours=5, minutes=30),
    timedelta(hours=-3),
    timedelta(hours=14),
    timedelta(hours=-12),
    timedelta(minutes=1),
    timedelta(hours=1, seconds=15),
    timedelta(hours=-9, minutes=-30),
]
PADS = [" ", "\t", "\n", "  \r\n", "\u00a0", "\u3000", "\u2028", "\x1f", "\x85", "\x0b"]


def rendering_groups(moment: datetime) -> list[list[str]]:
    """Every textual form a store may hold for an aware datetime (some lose precision)."""
    utc = moment.astimezone(UTC)
    iso = utc.isoformat()
    return [
        [iso],
        [iso.replace("+00:00", "Z")],
        [utc.replace(tzinfo=None).isoformat()],  # naive = UTC
        [utc.date().isoformat(), utc.date().isoformat() + "Z"],  # date only
        [utc.strftime("%Y%m%dT%H%M%S"), utc.strftime("%Y%m%dT%H%M%S") + "Z"],  # basic
        [utc.isoformat(timespec="microseconds"), utc.isoformat(timespec="milliseconds")],
        [utc.isoformat(sep=" ")],
        [moment.astimezone(timezone(offset)).isoformat() for offset in OFFSETS],
        [pad + iso for pad in PADS]
        + [iso + pad for pad in PADS]
        + [PADS[1] + iso.replace("+00:00", "Z") + PADS[4]],
    ]


def renderings(moment: datetime) -> list[str]:
    return [text for group in rendering_groups(moment) for text in group]


def formatted(moment: datetime):
    return st.sampled_from(rendering_groups(moment)).flatmap(st.sampled_from)


INVALID_STAMPS = [
    "not a date",
    "2026-13-01T00:00:00+00:00",
    "2026-03-01T24:00:00",
    "2026-03-01T12:00:00z",
    "2026-03-01T12:00:00ZZ",
    "2026/03/01",
    "２０２６-03-01",
    "2026-03-01T12:00:00+25:00",
    "1772366400",
    "Z",
    "z",
    "2026-03-01T12:00:00 UTC",
    "0000-01-01",
    "2026-060",
]
ODD_VALID_STAMPS = [
    "2026-W09-1",
    "2026-03-01T12",
    "2026-03-01T12:00:00,5",
    "2026-03-01T12:00:00.1234567+00:00",
    "2026-03-01T12:00:00 +00:00",
    "2026-03-01T12:00:00.123+0530",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59.999999-05:00",
    "2026-03-01+00:00",
    "2026-03-01Z",
]
NON_STRING_STAMPS = [
    None,
    0,
    1,
    20260301,
    20260301.0,
    1.5,
    True,
    False,
    math.nan,
    math.inf,
    [],
    {},
    ["2026-03-01T12:00:00+00:00"],
    {"at": "2026-03-01"},
    2**70,
]


def micros(us):
    return timedelta(microseconds=us)


# Exact boundary hits, one microsecond either side, and shifts a wrong zone would cause.
BOUNDARY_DELTAS = [micros(0), micros(1), micros(-1), timedelta(seconds=1), timedelta(seconds=-1)]
BOUNDARY_DELTAS += [
    sign * d
    for sign in (1, -1)
    for d in (
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=1, microseconds=1),
        timedelta(hours=5, minutes=30),
        timedelta(hours=14),
        timedelta(days=1),
    )
]


@st.composite
def timestamp_values(draw, anchors):
    """A value for created_at / occurred_at (``MISSING`` means leave the key out)."""
    kind = draw(
        st.sampled_from(["near"] * 12 + ["invalid", "odd", "nonstring", "missing", "empty"])
    )
    if kind == "near":
        anchor = draw(st.sampled_from(anchors))
        delta = draw(
            st.one_of(
                st.sampled_from(BOUNDARY_DELTAS),
                st.integers(-3 * 3600 * 10**6, 3 * 3600 * 10**6).map(micros),
                st.integers(-60 * 86400 * 10**6, 60 * 86400 * 10**6).map(micros),
            )
        )
        return draw(formatted(anchor + delta))
    if kind == "invalid":
        return draw(st.sampled_from(INVALID_STAMPS))
    if kind == "odd":
        return draw(st.sampled_from(ODD_VALID_STAMPS))
    if kind == "nonstring":
        return draw(st.sampled_from(NON_STRING_STAMPS))
    if kind == "empty":
        return draw(st.sampled_from(["", "   ", "\t\n"]))
    return MISSING


MISSING = object()


# --------------------------------------------------------------------------- ids

# Job keys chosen so that str(job_id) of a non-string job_id can match them.
JOB_KEYS = [
    "j1",
    "j2",
    "j3",
    "7",
    "",
    "True",
    "nan",
    "inf",
    "-inf",
    "7.0",
    "1e+16",
    "1e-05",
    "1180591620717411303424",
    "-1",
    "ü",
    "😀",
    "\u2028",
    "None",
    "0",
    "False",
    "0.0",
    "-0.0",
    "[]",
    "{}",
    "['j1']",
]
JOB_ID_VALUES = [
    "j1",
    "j2",
    "j3",
    "j9",
    "7",
    "",
    7,
    7.0,
    -1,
    True,
    False,
    None,
    0,
    0.0,
    -0.0,
    2**70,
    math.nan,
    math.inf,
    -math.inf,
    1e16,
    1e-05,
    "ü",
    "😀",
    "\u2028",
    " j1",
    "J1",
    [],
    {},
    ["j1"],
    "None",
]


def job_keys(surrogates: bool):
    options = [st.sampled_from(JOB_KEYS)] * 4 + [texts(surrogates)]
    if surrogates:
        options.append(st.just("\ud800"))
    return st.one_of(*options)


def job_id_values(surrogates: bool):
    options = [st.sampled_from(JOB_ID_VALUES)]
    if surrogates:
        options.append(st.just("\ud800"))
    return st.one_of(*options)


# --------------------------------------------------------------------------- rows

NON_OBJECTS = [None, 1, "x", "completed", [], [{"job_id": "j1"}], 1.5, True]


@st.composite
def jobs_section(draw, surrogates):
    keys = draw(
        st.lists(
            job_keys(surrogates),
            min_size=draw(st.sampled_from([0, 1, 1, 2, 3])),
            max_size=5,
            unique=True,
        )
    )
    jobs = {}
    for key in keys:
        if draw(st.sampled_from(range(10))) == 5:  # rare branches use middle values:
            jobs[key] = draw(st.sampled_from(NON_OBJECTS))  # hypothesis favours the ends
            continue
        job = {"job_id": key}
        status_kind = draw(st.sampled_from(range(6)))
        if status_kind == 3:
            status = draw(st.sampled_from(ODD_STATUSES))
            if status is not None or draw(st.booleans()):
                job["status"] = status
        else:
            job["status"] = draw(st.sampled_from(STATUSES + TERMINAL_BIAS))
        if draw(st.booleans()):
            job["finished_at"] = "2026-03-01T12:00:00+00:00"
        if draw(st.booleans()):
            job["request_payload_json"] = draw(payloads(surrogates))
        jobs[key] = job
    return jobs


@st.composite
def result_row(draw, surrogates, anchors, result_id, known):
    if draw(st.sampled_from(range(12))) == 6:
        return draw(st.sampled_from(NON_OBJECTS))
    row = {"result_id": result_id}
    pick = draw(st.sampled_from(range(8)))
    if pick not in (1, 3, 5) and known:
        row["job_id"] = draw(st.sampled_from(known))
    elif pick != 5:
        row["job_id"] = draw(job_id_values(surrogates))
    stamp = draw(timestamp_values(anchors))
    if stamp is not MISSING:
        row["created_at"] = stamp
    row["result_kind"] = draw(st.sampled_from(["partial", "final"]))
    if draw(st.booleans()):
        row["result_payload"] = draw(payloads(surrogates))
    return row


@st.composite
def event_row(draw, surrogates, anchors, job_key):
    if draw(st.sampled_from(range(10))) == 5:
        return draw(st.sampled_from([*NON_OBJECTS, "2026-03-01T12:00:00+00:00"]))
    row = {
        "event_id": draw(st.sampled_from(["e1", "e2", "e3"])),
        "job_id": job_key,
        "event_type": "job.queued",
    }
    stamp = draw(timestamp_values(anchors))
    if stamp is not MISSING:
        row["occurred_at"] = stamp
    if draw(st.booleans()):
        row["payload_json"] = draw(payloads(surrogates))
    return row


@st.composite
def section_or_odd(draw, section):
    """Usually the section itself; sometimes missing (MISSING), or a non-object value."""
    pick = draw(st.sampled_from(range(12)))
    if pick == 5:
        return MISSING
    if pick == 6:
        return draw(st.sampled_from([None, [], 5, "x", [{"job_id": "j1"}]]))
    return section


@st.composite
def states(draw, surrogates=False, anchors=None):
    anchors = anchors or [NOW]
    jobs = draw(jobs_section(surrogates))
    known = list(jobs)

    results = {}
    for i in range(draw(st.sampled_from(range(6)))):
        rid = draw(st.one_of(st.just(f"r{i}"), texts(surrogates)))
        results[rid] = draw(result_row(surrogates, anchors, rid, known))

    events = {}
    for _ in range(draw(st.sampled_from(range(5)))):
        key = draw(
            st.sampled_from(known)
            if known and draw(st.sampled_from(range(4))) != 2
            else job_keys(surrogates)
        )
        if draw(st.sampled_from(range(10))) == 5:
            events[key] = draw(
                st.sampled_from([*NON_OBJECTS[:3], {}, {"occurred_at": "2020-01-01"}])
            )
        else:
            n = draw(st.sampled_from(range(5)))
            events[key] = [draw(event_row(surrogates, anchors, key)) for _ in range(n)]

    state = {}
    for name, section in (("events", events), ("jobs", jobs), ("results", results)):
        value = draw(section_or_odd(section))
        if value is not MISSING:
            state[name] = value
    if draw(st.booleans()):
        state["notifications"] = draw(
            st.dictionaries(texts(surrogates), payloads(surrogates), max_size=2)
        )
    if draw(st.sampled_from(range(5))) != 2:
        state["schema_version"] = draw(st.integers(1, 5))
    for extra in draw(
        st.lists(
            st.sampled_from(["aaa", "Meta", "zzz_extra", "events_old", "_"]),
            max_size=2,
            unique=True,
        )
    ):
        state[extra] = draw(payloads(surrogates))
    return state


@st.composite
def scenarios(draw, surrogates=False):
    now = draw(st.sampled_from(NOWS))
    results = draw(ttls())
    events = draw(ttls())
    anchors = [now]
    for ttl in (results, events):
        if ttl.seconds is not None:
            anchors.append(now - timedelta(seconds=ttl.seconds))
    return Scenario(draw(states(surrogates, anchors)), now, results, events)


# --------------------------------------------------------------------------- job retention


@st.composite
def job_scenarios(draw, surrogates=False):
    """A scenario with job retention on: a jobs TTL, every job object's `finished_at` drawn
    around the jobs cutoff (or missing, invalid, not a string), and notifications that point
    at the store's jobs, at unknown ids, or at none."""
    sc = draw(scenarios(surrogates))
    jobs_ttl = draw(ttls(allow_disabled=False))
    cutoff = sc.now - timedelta(seconds=jobs_ttl.seconds)
    state = dict(sc.state)
    jobs = state.get("jobs")
    known = []
    if isinstance(jobs, dict):
        jobs = dict(jobs)
        for key, job in jobs.items():
            known.append(key)
            if isinstance(job, dict):
                job = dict(job)
                job.pop("finished_at", None)
                stamp = draw(timestamp_values([cutoff, sc.now]))
                if stamp is not MISSING:
                    job["finished_at"] = stamp
                jobs[key] = job
        state["jobs"] = jobs
    if draw(st.sampled_from(range(4))) != 1:
        notifications = {}
        for i in range(draw(st.sampled_from(range(5)))):
            if draw(st.sampled_from(range(8))) == 3:
                notifications[f"n{i}"] = draw(st.sampled_from(NON_OBJECTS))
                continue
            note = {"notification_id": f"n{i}", "channel": "email"}
            pick = draw(st.sampled_from(range(6)))
            if pick < 4 and known:
                note["job_id"] = draw(st.sampled_from(known))
            elif pick != 5:
                note["job_id"] = draw(job_id_values(surrogates))
            notifications[f"n{i}"] = note
        state["notifications"] = notifications
    return Scenario(state, sc.now, sc.results, sc.events, jobs_ttl)
