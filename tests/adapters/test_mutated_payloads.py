"""Property tests on the vendors' documented payloads, mutated.

Each strategy starts from a fixture (``fixtures/<vendor>/*.json``), changes what a CRM really
varies (ids, timestamps, amounts, stage names known and unknown, optional fields dropped or
nulled, batch order and duplicates) or breaks one thing (a wrong type, a bad id, an
unsupported kind), and states the outcome the adapter's documented mapping gives: the exact
events (type, id, deal id, source, time, data) or a rejection whose reason names the problem.
Known stage names come from ``worker/adapters/stages.toml`` itself.

``hypothesis.event`` labels each example "mapped ..." or "rejected": run pytest with
``--hypothesis-show-statistics`` to see the share that reaches the mapping.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

import worker.adapters
from schemas.deal_events import DealEvent, DealStage
from worker.adapters import DELETED_REASON, AdapterError, adapt, load_stage_map

from .conftest import FIXTURES

STAGES = load_stage_map()
STAGE_TABLES: dict[str, dict[str, str]] = tomllib.loads(
    (Path(worker.adapters.__file__).parent / "stages.toml").read_text("utf-8")
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOSED = (DealStage.closed_won, DealStage.closed_lost)


def fixture(source: str, name: str) -> Any:
    return json.loads((FIXTURES / source / f"{name}.json").read_text("utf-8"))


class Rejected:
    """An expected AdapterError, whose reason contains each of ``parts``."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __repr__(self) -> str:
        return f"Rejected{self.parts!r}"


# (type, id, deal id, source, time, data without its unset fields)
Event = tuple[str, str, str, str, datetime, dict[str, Any]]
Expected = list[Event] | Rejected


def summary(e: DealEvent) -> Event:
    return (e.type, e.id, e.subject, e.source, e.time, e.data.model_dump(exclude_none=True))


def check(
    source: str, body: Any, expected: Expected, summarise: Callable[[DealEvent], Any] = summary
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        events = adapt(source, raw, STAGES)
    except AdapterError as exc:
        event("rejected")
        assert isinstance(expected, Rejected), f"rejected ({exc.reason}); expected {expected}"
        for part in expected.parts:
            assert part in exc.reason
        return
    event("mapped to events" if events else "mapped to no event")
    assert not isinstance(expected, Rejected), f"mapped to {events}; expected {expected}"
    assert [summarise(e) for e in events] == expected


def changes(
    *, created: bool, id: str, env: tuple[str, str, datetime], fields: dict[str, Any], **closure
) -> list[Event]:
    """The documented events of one CRM change (``worker/adapters/base.py``): a closed stage
    becomes a closing event after the other fields (the amount moving into the closure unless
    created), an open stage a stage change, the rest an update."""
    fields = dict(fields)
    stage = fields.get("stage")
    if stage in CLOSED:
        del fields["stage"]
        if not created and "amount" in fields:
            closure.setdefault("amount", fields.pop("amount"))
    out: list[Event] = []
    if created:
        out.append(("deal.created", id, *env, fields))
    elif stage is not None and stage not in CLOSED:
        out.append(("deal.stage_changed", id, *env, fields))
    elif fields:
        out.append(("deal.updated", id, *env, fields))
    if stage in CLOSED:
        out.append((f"deal.{stage}", f"{id}-close" if out else id, *env, closure))
    return out


def batch_of(
    items: list[tuple[Any, Expected]], order: list[int], what: str
) -> tuple[list[Any], Expected]:
    """The batch of ``items`` in ``order`` (indexes, repeated or not) and its expected events
    in that order; or the rejection of its first unmappable item, which names its position."""
    body = [items[i][0] for i in order]
    for pos, i in enumerate(order):
        expected = items[i][1]
        if isinstance(expected, Rejected):
            where = f"{what} [{pos}]: " if len(order) > 1 else f"{what}: "
            return body, Rejected(where, *expected.parts)
    return body, [e for i in order for e in items[i][1]]


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (``integers(0, n) == 0`` would favour 0, its simplest)."""
    return st.sampled_from([False] * (n - 1) + [True])


def entry(draw: st.DrawFn, table: list[st.SearchStrategy], pick: Any) -> Any:
    """A value of one strategy of ``table``: the one at ``pick`` (an index, or a pair whose
    second item is one), or any."""
    if pick is None:
        return draw(draw(st.sampled_from(table)))
    return draw(table[pick[1] if isinstance(pick, tuple) else pick])


orders = st.lists(st.integers(0, 2), min_size=1, max_size=4)  # shuffles and duplicates


# --------------------------------------------------------------------------- values


def ms(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


times = st.integers(
    ms(datetime(1990, 1, 2, tzinfo=UTC)), ms(datetime(2100, 12, 30, tzinfo=UTC))
).map(lambda n: EPOCH + timedelta(milliseconds=n))
dates = st.dates(date(1990, 1, 2), date(2100, 12, 30))


def stamp(at: datetime, form: int) -> int | str:
    """``at`` as vendors send it: epoch milliseconds (a number or text, forms 0-1), or ISO
    8601 with ``Z`` or another offset (forms 2-4)."""
    return [
        ms(at),
        str(ms(at)),
        at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        at.astimezone(timezone(timedelta(hours=-7))).isoformat(timespec="milliseconds"),
    ][form]


stamps = st.tuples(times, st.integers(0, 4))  # (at, form)
iso_stamps = st.tuples(times, st.integers(2, 4))


def _amount(n_form: tuple[int, int]) -> tuple[Any, Decimal]:
    n, form = n_form
    text = str(Decimal(n) / 100)
    return [n / 100, text, n // 100 if n % 100 == 0 else text][form], Decimal(text).quantize(
        Decimal("0.01")
    )


# (an amount as a vendor sends it: float, decimal text or integer; as we map it), up to the
# contract's 1e12
amounts = st.tuples(st.integers(0, 10**14), st.integers(0, 2)).map(_amount)
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
words = st.text(ALNUM + " .,&'-/éßø漢Ω", min_size=1, max_size=16).filter(str.strip)
currencies = st.text(ALNUM[:52], min_size=3, max_size=3)
not_numbers = st.sampled_from(["12k", "1,000", "n/a", [], [1], {"value": 5}, True])


def base62(n: int, width: int) -> str:
    digits = ""
    for _ in range(width):
        n, digit = divmod(n, 62)
        digits = ALNUM[digit] + digits
    return digits


def sf_ids(prefix: str) -> st.SearchStrategy[str]:
    """Salesforce 18-character record ids: a key prefix (006 Opportunity, 005 User) and 15
    case-sensitive characters."""
    return st.integers(0, 62**15 - 1).map(lambda n: prefix + base62(n, 15))


def norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _spelled(entry_form: tuple[tuple[str, str], int]) -> tuple[str, DealStage]:
    (name, ours), form = entry_form
    forms = [name, name.upper(), f"  {name.lower()} ", name.replace(" ", "  ")]
    return forms[form], DealStage(ours)


def known_stage(source: str) -> st.SearchStrategy[tuple[str, DealStage]]:
    """(a stage of ``stages.toml`` as the vendor sends it, in its spelling or with another
    case and spacing, which lookups ignore; the stage it maps to)."""
    table = sorted(STAGE_TABLES[source].items())
    return st.tuples(st.sampled_from(table), st.integers(0, 3)).map(_spelled)


def unknown_stage(source: str, alphabet: str) -> st.SearchStrategy[str]:
    known = {norm(k) for k in STAGE_TABLES[source]}
    return st.text(alphabet, min_size=1, max_size=12).filter(
        lambda s: s.strip() and norm(s) not in known
    )


# --------------------------------------------------------------------------- HubSpot

HS_NOTE = fixture("hubspot", "property_change")[1]  # a deal.propertyChange of the amount
HS_OPTIONAL = ["subscriptionId", "portalId", "appId", "attemptNumber", "changeSource"]


def prop(name: str, values: st.SearchStrategy[tuple[Any, Any]]) -> st.SearchStrategy:
    """(propertyName, propertyValue, outcome) of (value, outcome) pairs."""
    return values.map(lambda vo: (name, *vo))


def _day(day_form: tuple[date, int]) -> tuple[Any, Any]:
    day, form = day_form
    sent = [ms(midnight(day)), str(ms(midnight(day))), day.isoformat()][form]
    return sent, {"expected_close_date": day}


# outcome: the mapped fields, None for no event, or a Rejected
HS_PROPERTIES = [
    prop("amount", amounts.map(lambda p: (p[0], {"amount": p[1]}))),
    prop("dealstage", known_stage("hubspot").map(lambda p: (p[0], {"stage": p[1]}))),
    prop("dealname", words.map(lambda w: (w, {"name": w.strip()}))),
    prop("closedate", st.tuples(dates, st.integers(0, 2)).map(_day)),
    prop("deal_currency_code", currencies.map(lambda c: (c, {"currency": c.upper()}))),
    prop(
        "num_contacted_notes",
        st.tuples(st.integers(0, 10**6), st.booleans()).map(
            lambda p: (str(p[0]) if p[1] else p[0], {"interactions": p[0]})
        ),
    ),
    prop("notes_last_contacted", stamps.map(lambda p: (stamp(*p), {"last_activity_at": p[0]}))),
    st.tuples(  # an emptied stage or currency: nothing to say (a deal always has them)
        st.sampled_from(["dealstage", "deal_currency_code"]),
        st.sampled_from([None, "", "   "]),
        st.none(),
    ),
    st.tuples(  # an emptied field of ours that can be empty: cleared
        st.sampled_from(["amount", "dealname", "closedate", "hubspot_owner_id"]),
        st.sampled_from([None, "", "   "]),
        st.none(),
    ).map(
        lambda p: (
            p[0],
            p[1],
            {
                "cleared": [
                    {"dealname": "name", "closedate": "expected_close_date"}.get(
                        p[0], "owner" if p[0] == "hubspot_owner_id" else p[0]
                    )
                ]
            },
        )
    ),
    st.tuples(  # an untracked property
        st.sampled_from(["pipeline", "hs_lastmodifieddate", "hs_deal_stage_probability"]),
        words,
        st.none(),
    ),
    prop("amount", not_numbers.map(lambda v: (v, Rejected(f"amount {v!r} is not a number")))),
    prop(
        "amount",
        st.integers(1, 10**9).map(
            lambda n: (-n, Rejected("data.amount: Input should be greater than or equal to 0"))
        ),
    ),
    prop(
        "dealstage",
        unknown_stage("hubspot", ALNUM).map(
            lambda v: (v, Rejected(f"unknown hubspot deal stage {v!r}", "[hubspot] table"))
        ),
    ),
    prop(
        "closedate",
        st.sampled_from(["next week", "2025-13-01", "31/12/2025"]).map(
            lambda v: (v, Rejected(f"closedate {v!r} is not a timestamp"))
        ),
    ),
]


def _hs_break(key: str, values: Any, reason: Callable[[Any], Rejected]) -> st.SearchStrategy:
    """(key, bad value, rejection) for a deal.creation notification."""
    strategy = values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)
    return strategy.map(lambda v: (key, v, reason(v)))


HS_BREAKS = [
    _hs_break(
        "subscriptionType",
        ["deal.restore"],
        lambda v: Rejected(f"{v} cannot be applied without re-reading the deal"),
    ),
    _hs_break(
        "subscriptionType",
        ["deal.merge"],
        lambda v: Rejected("notification has no 'newObjectId'"),  # a merge names its deals
    ),
    _hs_break("objectId", [None, ""], lambda v: Rejected("notification has no 'objectId'")),
    _hs_break(
        "objectId", ["15 829", "x" * 121], lambda v: Rejected(f"objectId {v!r} is not a usable id")
    ),
    _hs_break(
        "objectId",
        [[15829437081], 1.5, True],
        lambda v: Rejected(f"objectId must be a string or an integer, got {v!r}"),
    ),
    _hs_break("eventId", [None], lambda v: Rejected("notification has no 'eventId'")),
    _hs_break(
        "occurredAt",
        ["yesterday", "2025-06-31T00:00:00Z", [1755244800000]],
        lambda v: Rejected(f"occurredAt {v!r} is not a timestamp"),
    ),
    _hs_break(
        "occurredAt",
        [ms(datetime(1985, 5, 5, tzinfo=UTC))],
        lambda v: Rejected("deal.created.time: Value error, date 1985-05-05 is outside"),
    ),
    _hs_break(  # the whole notification
        "",
        [42, "deal.creation", None],
        lambda v: Rejected("notification is not a JSON object"),
    ),
]


@st.composite
def hubspot_notes(draw: st.DrawFn, pick: tuple[str, int] | None = None) -> tuple[Any, Expected]:
    """One notification of the Webhooks API v3, mutated, and its expected events; ``pick``:
    ("property", index in HS_PROPERTIES) or ("broken", index in HS_BREAKS)."""
    note = copy.deepcopy(HS_NOTE)
    object_id = draw(st.integers(1, 10**13) | st.integers(1, 10**13).map(str))
    event_id = draw(st.integers(1, 2**53))
    at, form = draw(stamps)
    note.update(objectId=object_id, eventId=event_id, occurredAt=stamp(at, form))
    dropped = draw(st.sets(st.sampled_from(HS_OPTIONAL)))
    for key in dropped:
        del note[key]
    source = "hubspot" if "portalId" in dropped else "hubspot/portal/62515"
    deal = f"hs-{object_id}" if "portalId" in dropped else f"hs-62515-{object_id}"
    env = (deal, source, at)
    base_id = f"{deal}-{ms(at)}-{event_id}"

    kind = (
        pick[0] if pick else draw(st.sampled_from(["property"] * 4 + ["object"] * 2 + ["broken"]))
    )
    if kind == "property":
        name, value, outcome = entry(draw, HS_PROPERTIES, pick)
        note.update(propertyName=name, propertyValue=value)
        if outcome is None or isinstance(outcome, Rejected):
            return note, outcome or []
        return note, changes(created=False, id=f"{base_id}-{name}", env=env, fields=outcome)
    del note["propertyName"], note["propertyValue"]
    if kind == "broken":
        note["subscriptionType"] = "deal.creation"
        key, value, rejected = entry(draw, HS_BREAKS, pick)
        if not key:
            return value, rejected
        note[key] = value
        return note, rejected
    note["subscriptionType"] = kind = draw(
        st.sampled_from(
            [
                *("deal.creation", "deal.deletion", "deal.privacyDeletion"),
                *("deal.associationChange", "contact.creation", "company.propertyChange"),
                "ticket.deletion",
            ]
        )
    )
    if draw(st.booleans()):  # the generic format: object.<action>, the object in objectTypeId
        obj, _, action = kind.partition(".")
        note["subscriptionType"] = f"object.{action}"
        note["objectTypeId"] = {"deal": "0-3", "contact": "0-1", "company": "0-2"}.get(obj, "0-5")
    if draw(st.booleans()):  # HubSpot's documented example names the type eventType
        note["eventType"] = note.pop("subscriptionType")
    if not kind.startswith("deal."):
        return note, []  # another object's notification: skipped, the batch goes on
    if kind == "deal.creation":
        return note, [("deal.created", base_id, *env, {})]
    if kind == "deal.associationChange":
        return note, []
    return note, [("deal.closed_lost", base_id, *env, {"reason": DELETED_REASON})]


def by_time(events: list[Event]) -> list[Event]:
    """HubSpot batches are not ordered: events come out by time, a creation first."""
    return sorted(events, key=lambda e: (e[4], e[0] != "deal.created"))


@given(notes=st.lists(hubspot_notes(), min_size=1, max_size=3), order=orders, bare=st.booleans())
def test_mutated_hubspot_notifications(notes, order, bare):
    batch, expected = batch_of(notes, [i % len(notes) for i in order], "hubspot notification")
    if isinstance(expected, list):
        expected = by_time(expected)
    check("hubspot", batch[0] if bare and len(batch) == 1 else batch, expected)


HS_POOL = [
    note
    for name in ["creation", "property_change", "closed_won", "closed_lost", "deletion"]
    for note in fixture("hubspot", name)
]


@given(picked=st.lists(st.sampled_from(HS_POOL), min_size=1, max_size=12))
def test_a_hubspot_batch_maps_like_its_notifications_one_by_one(picked):
    """The documented notifications shuffled and repeated: a batch's events are each
    notification's, by time (a creation first); a repeat keeps its id (the worker dedupes)."""
    alone = [adapt("hubspot", json.dumps(note).encode(), STAGES) for note in picked]
    check("hubspot", picked, by_time([summary(e) for events in alone for e in events]))


# --------------------------------------------------------------------------- Salesforce

SF_HEADER = fixture("salesforce", "stage_change")["payload"]["ChangeEventHeader"]
SF_FIELDS = {
    "Name": "name",
    "Amount": "amount",
    "CloseDate": "expected_close_date",
    "OwnerId": "owner",
    "CurrencyIsoCode": "currency",
    "StageName": "stage",
}


# Opportunity field -> (a value as CDC sends it, as we map it)
SF_VALUES = {
    "Amount": amounts,
    "CloseDate": st.tuples(dates, st.booleans()).map(  # ISO, or days since 1970 (Pub/Sub API)
        lambda p: ((p[0] - date(1970, 1, 1)).days if p[1] else p[0].isoformat(), p[0])
    ),
    "CurrencyIsoCode": currencies.map(lambda c: (c, c.upper())),
    "StageName": known_stage("salesforce"),
    "OwnerId": sf_ids("005").map(lambda v: (v, v)),
    "Name": words.map(lambda w: (w, w.strip())),
}


@st.composite
def salesforce_values(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Some Opportunity field values as CDC sends them (nulled ones too), and as we map them."""
    sent: dict[str, Any] = {}
    mapped: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(SF_FIELDS)), unique=True)):
        if draw(one_in(6)):  # a nulled field: not expressible, ignored
            sent[name] = None
            continue
        sent[name], mapped[SF_FIELDS[name]] = draw(SF_VALUES[name])
    for name in draw(st.sets(st.sampled_from(["Probability", "IsClosed", "LastModifiedDate"]))):
        sent[name] = 1  # untracked
    return sent, mapped


def _sf_break(
    where: str, key: str, values: Any, reason: Callable[[Any], Rejected], **header: Any
) -> st.SearchStrategy:
    """(where, key, bad value, rejection, header fields the break needs)."""
    strategy = values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)
    return strategy.map(lambda v: (where, key, v, reason(v), header))


READ_ALL = {"changeType": "UPDATE", "changedFields": []}
SF_BREAKS = [
    _sf_break(
        "header",
        "entityName",
        ["Account", "Lead"],
        lambda v: Rejected(f"entity {v!r} is not Opportunity"),
    ),
    _sf_break(
        "header",
        "changeType",
        ["GAP_UPDATE", "GAP_CREATE", "GAP_OVERFLOW"],
        lambda v: Rejected(f"{v} carries no field values: re-read the records"),
    ),
    _sf_break("header", "changeType", ["MERGE"], lambda v: Rejected("unknown changeType 'MERGE'")),
    _sf_break(
        "header",
        "recordIds",
        [[], "0065g00000XyZ12AAB"],
        lambda v: Rejected("ChangeEventHeader.recordIds is not a non-empty list"),
    ),
    _sf_break(
        "header",
        "recordIds",
        [["0065g00000XyZ12AAB", "006 bad"]],
        lambda v: Rejected("recordId '006 bad' is not a usable id"),
        changeType="DELETE",
    ),
    _sf_break(
        "header",
        "commitTimestamp",
        [None],
        lambda v: Rejected("ChangeEventHeader has no 'commitTimestamp'"),
    ),
    _sf_break(
        "header",
        "commitTimestamp",
        ["soon"],
        lambda v: Rejected("commit 'soon' is not a timestamp"),
    ),
    _sf_break(
        "payload",
        "StageName",
        unknown_stage("salesforce", ALNUM + " "),
        lambda v: Rejected(f"unknown salesforce deal stage {v.strip()!r}"),
        **READ_ALL,
    ),
    _sf_break(
        "payload",
        "Amount",
        not_numbers,
        lambda v: Rejected(f"Amount {v!r} is not a number"),
        **READ_ALL,
    ),
    _sf_break(
        "payload",
        "Amount",
        [-1, "-0.5"],
        lambda v: Rejected("data.amount: Input should be greater than or equal to 0"),
        **READ_ALL,
    ),
    _sf_break(
        "payload",
        "CloseDate",
        ["someday", "2025-02-30"],
        lambda v: Rejected(f"CloseDate {v!r} is not a timestamp"),
        **READ_ALL,
    ),
    _sf_break(  # the header under another name, in a bare change event
        "payload", "ChangeEventHeader", [None], lambda v: Rejected("has no ChangeEventHeader")
    ),
]


@st.composite
def salesforce_events(draw: st.DrawFn, pick: int | None = None) -> tuple[Any, Expected]:
    """One OpportunityChangeEvent, mutated, in one of its delivered shapes; broken by
    ``SF_BREAKS[pick]`` when given."""
    header = copy.deepcopy(SF_HEADER)
    records = draw(st.lists(sf_ids("006"), min_size=1, max_size=2))
    at, seq = draw(times), draw(st.integers(0, 999))
    txn, replay = str(draw(st.uuids())), draw(st.integers(1, 10**9))
    change = draw(st.sampled_from(["CREATE", "UPDATE", "UPDATE", "UPDATE", "DELETE", "UNDELETE"]))
    sent, mapped = draw(salesforce_values())
    header.update(
        recordIds=records,
        commitTimestamp=stamp(at, draw(st.integers(0, 1))),
        sequenceNumber=seq,
        transactionKey=txn,
        changeType=change,
        changedFields=[],  # none named: every non-null field counts
    )
    if change == "UPDATE" and sent and draw(st.booleans()):
        named = draw(st.sets(st.sampled_from(sorted(sent)), min_size=1))
        header["changedFields"] = sorted(named)  # the other fields are not read
        mapped = {SF_FIELDS[n]: mapped[SF_FIELDS[n]] for n in named if SF_FIELDS.get(n) in mapped}
    payload = {"ChangeEventHeader": header, **sent}
    shape = draw(st.sampled_from(["flat", "envelope", "cometd"]))
    suffix = f"{txn}-{seq}"

    expected: Expected | None = None
    if pick is not None or draw(one_in(6)):
        where, key, value, expected, needs = entry(draw, SF_BREAKS, pick)
        header.update(needs)
        if key == "ChangeEventHeader":
            payload["Header"] = payload.pop(key)
            shape = "flat"
        else:
            (header if where == "header" else payload)[key] = value
    elif draw(one_in(5)):  # no transaction key: the replay id names the event
        del header["transactionKey"]
        suffix = f"r{replay}"
        if shape == "flat":
            expected = Rejected("change event has neither a transactionKey nor a replayId")
    if expected is None and change == "UNDELETE" and "stage" not in mapped:
        expected = Rejected("UNDELETE without StageName cannot reopen the deal")
    if expected is None:
        expected = []
        for record in records:
            env = (f"sf-{record}", "salesforce/cdc/Opportunity", at + timedelta(microseconds=seq))
            event_id = f"sf-{record}-{ms(at)}-{suffix}"
            if change == "DELETE":
                expected.append(("deal.closed_lost", event_id, *env, {"reason": DELETED_REASON}))
            else:
                expected += changes(created=change == "CREATE", id=event_id, env=env, fields=mapped)

    envelope = {
        "schema": "IeRuaY6cbI_HsV8Rv1Mc5g",
        "payload": payload,
        "event": {"replayId": replay},
    }
    if shape == "flat":
        return payload, expected
    if shape == "envelope":
        return envelope, expected
    return {"data": envelope, "channel": "/data/OpportunityChangeEvent"}, expected


@given(
    items=st.lists(salesforce_events(), min_size=1, max_size=3), order=orders, bare=st.booleans()
)
def test_mutated_salesforce_change_events(items, order, bare):
    """A delivery keeps its order (one set of events per record id); one bad change event
    rejects the whole body."""
    batch, expected = batch_of(items, [i % len(items) for i in order], "salesforce change event")
    check("salesforce", batch[0] if bare and len(batch) == 1 else batch, expected)


# --------------------------------------------------------------------------- Pipedrive

PD_BODY = fixture("pipedrive", "change_value")  # an open deal at stage 1, its value changed
PD_BASE = {  # that deal's fields as we map them (see test_pipedrive.test_create)
    "title": ("name", "Initech - Analytics add-on"),
    "value": ("amount", Decimal("21500.00")),
    "currency": ("currency", "USD"),
    "expected_close_date": ("expected_close_date", date(2025, 9, 15)),
    "owner_id": ("owner", "20987654"),
    "org_id": ("company", None),  # a bare organisation id is not a name
}
PD_ORDER = [  # a later field wins: owner_name over owner_id, org_name over org_id
    "title",
    "value",
    "currency",
    "expected_close_date",
    "owner_id",
    "owner_name",
    "org_id",
    "org_name",
    "last_activity_date",
    "done_activities_count",
]


def _expanded_org(p: tuple[int, str]) -> tuple[Any, tuple[str, Any]]:
    return {"value": p[0], "name": p[1]}, ("company", p[1].strip())


# deal field -> (its value as sent, (our field, our value; None: not mapped))
PD_VALUES: dict[str, st.SearchStrategy[tuple[Any, tuple[str, Any]]]] = {
    "title": words.map(lambda w: (w, ("name", w.strip()))),
    "value": amounts.map(lambda p: (p[0], ("amount", p[1]))),
    "currency": currencies.map(lambda c: (c, ("currency", c.upper()))),
    "expected_close_date": dates.map(lambda d: (d.isoformat(), ("expected_close_date", d))),
    "owner_id": st.integers(1, 10**9).map(lambda n: (n, ("owner", str(n)))),
    "owner_name": words.map(lambda w: (w, ("owner", w.strip()))),
    "org_id": st.integers(1, 10**6).map(lambda n: (n, ("company", None)))
    | st.tuples(st.integers(1, 10**6), words).map(_expanded_org),
    "org_name": words.map(lambda w: (w, ("company", w.strip()))),
    "last_activity_date": dates.map(lambda d: (d.isoformat(), ("last_activity_at", midnight(d)))),
    "done_activities_count": st.integers(0, 10**6).map(lambda n: (n, ("interactions", n))),
}
PD_UNTRACKED = {"probability": 40, "label_ids": [3], "update_time": "2025-07-01T10:30:00Z"}


def _pd_break(where: str, key: str, values: Any, reason: Callable[[Any], Rejected]) -> Any:
    """(where: meta, data or the body; key; bad value; rejection)."""
    strategy = values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)
    return strategy.map(lambda v: (where, key, v, reason(v)))


PD_BREAKS = [
    _pd_break(
        "meta",
        "entity",
        ["person", "organization", "product"],
        lambda v: Rejected(f"pipedrive entity {v!r} is not a deal"),
    ),
    _pd_break(
        "meta",
        "action",
        ["merge", "updated", "added"],
        lambda v: Rejected(f"unsupported pipedrive action {v!r}"),
    ),
    _pd_break("meta", "entity_id", [None, ""], lambda v: Rejected("meta has no 'entity_id'")),
    _pd_break(
        "meta",
        "entity_id",
        ["12 34", "1201?"],
        lambda v: Rejected(f"meta.entity_id {v!r} is not a usable id"),
    ),
    _pd_break("meta", "id", [None], lambda v: Rejected("meta has no 'id'")),
    _pd_break(
        "meta",
        "timestamp",
        ["later", "2025-02-30T10:00:00Z"],
        lambda v: Rejected(f"meta.timestamp {v!r} is not a timestamp"),
    ),
    _pd_break(
        "meta", "version", ["1.0", 1], lambda v: Rejected("webhooks v1 payload without a v1 meta")
    ),
    _pd_break("data", "value", not_numbers, lambda v: Rejected(f"value {v!r} is not a number")),
    _pd_break(
        "data",
        "value",
        [-1, -20000.5],
        lambda v: Rejected("data.amount: Input should be greater than or equal to 0"),
    ),
    _pd_break(
        "data",
        "expected_close_date",
        ["soon", "2025-02-30"],
        lambda v: Rejected(f"expected_close_date {v!r} is not a timestamp"),
    ),
    _pd_break(
        "data",
        "done_activities_count",
        ["many", 1.5],
        lambda v: Rejected(f"done_activities_count {v!r} is not a count"),
    ),
    _pd_break(
        "data",
        "status",
        ["archived", "pending"],
        lambda v: Rejected(f"unknown pipedrive deal status {v!r}"),
    ),
    _pd_break(
        "body",
        "data",
        [None, [1], "deal"],
        lambda v: Rejected("pipedrive change has no deal in 'data'"),
    ),
    _pd_break(
        "body",
        "meta",
        [[1], "deal"],
        lambda v: Rejected("malformed pipedrive payload: AttributeError"),
    ),
    _pd_break(
        "body",
        "current",
        [{"id": 1201}],
        lambda v: Rejected("pipedrive webhooks v1 payload without a v1 meta"),
    ),
]


PD_FIELD = {  # deal field -> ours; those we can empty are cleared when the change empties them
    "title": "name",
    "value": "amount",
    "currency": "currency",
    "expected_close_date": "expected_close_date",
    "owner_id": "owner",
    "owner_name": "owner",
    "org_id": "company",
    "org_name": "company",
    "last_activity_date": "last_activity_at",
    "done_activities_count": "interactions",
}
PD_CLEARABLE = {"name", "amount", "expected_close_date", "owner", "company"}


def pd_events(
    action: str,
    deal: dict[str, Any],
    keys: set[str],
    ours: dict[str, Any],
    envelope: tuple,
    clears: bool = False,
) -> Expected:
    """The documented events of a Pipedrive change of ``keys`` of ``deal`` (``ours``: its
    fields as we map them; ``clears``: ``keys`` are exactly the changed fields, so an emptied
    one is cleared)."""
    event_id, *env = envelope
    if action == "delete" or (deal["status"] == "deleted" and "status" in keys):
        return [("deal.closed_lost", event_id, *env, {"reason": DELETED_REASON})]
    fields: dict[str, Any] = {}
    cleared: list[str] = []
    for key in PD_ORDER:
        if key in keys and ours.get(key, (None, None))[1] is not None:
            field, value = ours[key]
            fields[field] = value
        elif clears and key in keys and deal.get(key) is None:
            cleared.append(PD_FIELD[key])
    emptied = [f for f in dict.fromkeys(cleared) if f in PD_CLEARABLE and f not in fields]
    if emptied:
        fields["cleared"] = emptied
    closure = {}
    status_changed = action == "create" or "status" in keys
    if deal["status"] in ("won", "lost") and status_changed:
        fields["stage"] = DealStage(f"closed_{deal['status']}")
        reason = deal.get("lost_reason")
        if deal["status"] == "lost" and reason and reason.strip():
            closure["reason"] = reason.strip()[:500]
    elif deal["status"] == "open" and (status_changed or "stage_id" in keys):
        stage = STAGE_TABLES["pipedrive"].get(str(deal["stage_id"]))
        if stage is None:
            return Rejected(f"unknown pipedrive deal stage '{deal['stage_id']}'", "[pipedrive]")
        fields["stage"] = DealStage(stage)
    return changes(
        created=action == "create", id=event_id, env=tuple(env), fields=fields, **closure
    )


@st.composite
def pipedrive_bodies(draw: st.DrawFn, pick: int | None = None) -> tuple[Any, Expected]:
    """A webhooks v2 body about a deal, mutated, and its expected events; broken by
    ``PD_BREAKS[pick]`` when given."""
    body = copy.deepcopy(PD_BODY)
    deal, meta = body["data"], body["meta"]
    entity_id, meta_id, (at, form) = (
        draw(st.integers(1, 10**9)),
        str(draw(st.uuids())),
        draw(iso_stamps),
    )
    meta.update(entity_id=str(entity_id) if draw(st.booleans()) else entity_id, id=meta_id)
    meta["timestamp"] = stamp(at, form)
    source = "pipedrive/13414617"
    if draw(st.booleans()):
        del meta["company_id"]
        source = "pipedrive"
    meta["action"] = action = draw(st.sampled_from(["create", "change", "change", "delete"]))

    ours = dict(PD_BASE)
    changed = {"update_time"}
    for key in draw(st.lists(st.sampled_from(sorted(PD_VALUES)), unique=True)):
        changed.add(key)
        if draw(one_in(6)):  # cleared
            deal[key] = None
            ours.pop(key, None)
        else:
            deal[key], ours[key] = draw(PD_VALUES[key])
    for key in draw(st.sets(st.sampled_from(sorted(PD_UNTRACKED)))):
        deal[key] = PD_UNTRACKED[key]
        changed.add(key)
    if draw(st.booleans()):  # a stage of the default pipeline, or of another one
        deal["stage_id"] = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 42, 9999]))
        changed.add("stage_id")
    status = draw(st.sampled_from(["open"] * 4 + ["won", "lost", "reopened", "deleted"]))
    previous = {key: PD_BODY["data"].get(key) for key in changed}
    deal["status"] = "open" if status == "reopened" else status
    if status != "open":
        previous["status"] = "lost" if status == "reopened" else "open"
    if status == "lost":
        deal["lost_reason"] = draw(st.none() | words | st.just(" Went elsewhere " * 40))
    if action == "create" or draw(one_in(10)):  # no previous: all of data
        keys = set(deal)
        body["previous"] = draw(st.sampled_from([None, {}]))
    else:
        keys = set(previous)
        body["previous"] = previous
    if action == "create" and deal["status"] == "deleted":
        deal["status"] = "open"

    deal_id = f"pd-{entity_id}" if source == "pipedrive" else f"pd-13414617-{entity_id}"
    clears = action == "change" and bool(body["previous"])
    expected = pd_events(
        action, deal, keys, ours, (f"{deal_id}-{meta_id}", deal_id, source, at), clears
    )
    if pick is not None or draw(one_in(4)):
        where, key, value, expected = entry(draw, PD_BREAKS, pick)
        if where == "data":  # a change of that field alone, of an open deal
            body["previous"] = {key: None}
            deal["status"] = "open"
        if where == "data" or key == "data":
            meta["action"] = "change"
        (body if where == "body" else body[where])[key] = value
    return body, expected


@given(case=pipedrive_bodies())
def test_mutated_pipedrive_webhooks(case):
    check("pipedrive", *case)


# --------------------------------------------------------------------------- CloudEvents

CE_EVENTS = [fixture("cloudevents", "single"), *fixture("cloudevents", "batch")]
CE_ALL = {e["type"] for e in CE_EVENTS} | {"deal.updated"}
WITH_AMOUNT = {"deal.created", "deal.updated", "deal.stage_changed", "deal.closed_won"}
WITH_STAGE = {"deal.created", "deal.updated", "deal.stage_changed"}


def ce_summary(e: DealEvent) -> Event:
    data = e.data.model_dump(mode="json", exclude_none=True)
    return (e.type, e.id, e.subject, e.source, e.time, data)


# (event types, mutation, rejection: {at} stands for the error location's prefix in a
# batch (``<index>.``), {root} for the item's location, {type} for its event type)
CE_BREAKS: list[tuple[set[str], Callable[[dict[str, Any]], Any] | None, str]] = [
    (
        CE_ALL,
        lambda e: e.update(time="2025-06-02T09:15:04"),
        "{at}{type}.time: Value error, timestamp must carry a UTC offset",
    ),
    (
        CE_ALL,
        lambda e: e.update(time="1985-05-05T10:00:00Z"),
        "{at}{type}.time: Value error, date 1985-05-05 is outside",
    ),
    (
        CE_ALL,
        lambda e: e.update(type="deal.archived"),
        "{root}: Input tag 'deal.archived' found using 'type'",
    ),
    (CE_ALL, lambda e: e.pop("id"), "{at}{type}.id: Field required"),
    (CE_ALL, lambda e: e.update(subject=""), "{at}{type}.subject: String should have at least 1"),
    (
        CE_ALL,
        lambda e: e["data"].update(probability=0.4),
        "{at}{type}.data.probability: Extra inputs are not permitted",
    ),
    (
        WITH_AMOUNT,
        lambda e: e["data"].update(amount="-1"),
        "{at}{type}.data.amount: Input should be greater than or equal to 0",
    ),
    (
        WITH_STAGE,
        lambda e: e["data"].update(currency="usd"),
        "{at}{type}.data.currency: String should match pattern",
    ),
    (
        WITH_STAGE,
        lambda e: e["data"].update(stage="won"),
        "{at}{type}.data.stage: Input should be 'prospecting'",
    ),
    (CE_ALL, None, "{root}: Input should be a valid dictionary or object"),  # not an object
]


@st.composite
def cloud_events(draw: st.DrawFn, pick: int | None = None) -> tuple[Any, Event | str]:
    """One of our own events, mutated, and itself as mapped; or broken (by ``CE_BREAKS[pick]``
    when given), and the fragment of its rejection (with the placeholders of ``CE_BREAKS``)."""
    types = CE_ALL if pick is None else CE_BREAKS[pick][0]
    ev = copy.deepcopy(draw(st.sampled_from([e for e in CE_EVENTS if e["type"] in types])))
    if ev["type"] == "deal.created":
        ev["type"] = draw(st.sampled_from(["deal.created", "deal.updated"]))
    ev["id"] = draw(st.uuids().map(str) | st.integers(0, 10**9).map(lambda n: f"crm:{n}"))
    ev["subject"] = draw(st.integers(0, 62**6).map(lambda n: f"ACME-{base62(n, 6)}"))
    at, form = draw(iso_stamps)
    ev["time"] = stamp(at, form)
    data = ev["data"]
    if ev["type"] in WITH_AMOUNT and draw(st.booleans()):
        data["amount"] = str(Decimal(draw(st.integers(0, 10**14))) / 100)
    if ev["type"] in WITH_STAGE:
        data["stage"] = draw(st.sampled_from(list(DealStage)))
    if ev["type"] in ("deal.created", "deal.updated"):
        for key in draw(st.sets(st.sampled_from(sorted(set(data) - {"stage"})))):
            del data[key]
    for key in draw(st.sets(st.sampled_from(["specversion", "datacontenttype"]))):
        del ev[key]  # their defaults
    if pick is None and not draw(one_in(3)):
        return ev, (ev["type"], ev["id"], ev["subject"], ev["source"], at, data)
    breaks = [b for b in CE_BREAKS if ev["type"] in b[0]]
    _, mutate, fragment = CE_BREAKS[pick] if pick is not None else draw(st.sampled_from(breaks))
    if mutate is None:
        return draw(st.sampled_from([42, "deal", None])), fragment
    fragment = fragment.replace("{type}", ev["type"])
    mutate(ev)
    return ev, fragment


def ce_batch(items: list[tuple[Any, Event | str]], order: list[int], bare: bool) -> tuple:
    """The body of ``items`` in ``order`` (a bare event when asked and alone) and its expected
    events; or the rejection of its first bad event, located in the body."""
    single = bare and len(order) == 1
    body = items[order[0]][0] if single else [items[i][0] for i in order]
    for pos, i in enumerate(order):
        fragment = items[i][1]
        if isinstance(fragment, str):
            at, root = ("", "(root)") if single else (f"{pos}.", str(pos))
            return body, Rejected(fragment.replace("{at}", at).replace("{root}", root))
    return body, [items[i][1] for i in order]


@given(items=st.lists(cloud_events(), min_size=1, max_size=3), order=orders, bare=st.booleans())
def test_mutated_cloudevents(items, order, bare):
    """Our own envelope: mapped as sent, in order (repeats included); the first bad event of a
    batch is named by its index."""
    body, expected = ce_batch(items, [i % len(items) for i in order], bare)
    check("cloudevents", body, expected, ce_summary)


# --------------------------------------------------------------------------- raw bytes

FIXTURE_FILES = sorted(FIXTURES.rglob("*.json"))


def outcome(source: str, raw: bytes) -> Expected:
    try:
        return [summary(e) for e in adapt(source, raw, STAGES)]
    except AdapterError as exc:
        return Rejected(exc.reason)


@st.composite
def fixture_bytes(draw: st.DrawFn) -> tuple[str, bytes, Expected]:
    """A fixture body as other JSON writers send it (same outcome as the fixture), or
    truncated, with a byte that is not UTF-8 or trailing garbage (rejected as not JSON)."""
    path = draw(st.sampled_from(FIXTURE_FILES))
    source, raw = path.parent.name, path.read_bytes().rstrip()
    kind = draw(st.sampled_from(["rewritten"] * 4 + ["truncated", "not utf-8", "trailing"]))
    not_json = Rejected(f"{source} payload is not valid JSON")
    if kind == "truncated":
        return source, raw[: draw(st.integers(0, len(raw) - 1))], not_json
    if kind == "not utf-8":
        at = draw(st.integers(1, len(raw) - 1))
        return (
            source,
            raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\x80"])) + raw[at:],
            not_json,
        )
    if kind == "trailing":
        return source, raw + draw(st.sampled_from([b"}", b"]", b",{}", b"x", b"{}"])), not_json
    text = json.dumps(
        json.loads(raw),
        indent=draw(st.none() | st.integers(0, 4)),
        ensure_ascii=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
    )
    space = st.text(" \t\r\n", max_size=3)
    return source, (draw(space) + text + draw(space)).encode(), outcome(source, raw)


@given(case=fixture_bytes())
def test_fixture_bytes_rewritten_or_corrupted(case):
    check(*case)


# --------------------------------------------------------------------------- every entry

EVERY_ENTRY = [
    *(("hubspot", ("property", i)) for i in range(len(HS_PROPERTIES))),
    *(("hubspot", ("broken", i)) for i in range(len(HS_BREAKS))),
    *(("salesforce", i) for i in range(len(SF_BREAKS))),
    *(("pipedrive", i) for i in range(len(PD_BREAKS))),
    *(("cloudevents", i) for i in range(len(CE_BREAKS))),
]


@settings(max_examples=3)
@given(data=st.data())
def test_every_table_entry(data):
    """Each entry of the tables above, whatever the draws of the tests above favour."""
    for source, pick in EVERY_ENTRY:
        label = f"{source} {pick}"
        if source == "hubspot":
            item = data.draw(hubspot_notes(pick), label=label)
            check(source, *batch_of([item], [0], "hubspot notification"))
        elif source == "salesforce":
            item = data.draw(salesforce_events(pick), label=label)
            check(source, *batch_of([item], [0], "salesforce change event"))
        elif source == "pipedrive":
            check(source, *data.draw(pipedrive_bodies(pick), label=label))
        else:
            item = data.draw(cloud_events(pick), label=label)
            body, expected = ce_batch([item], [0], data.draw(st.booleans()))
            check(source, body, expected, ce_summary)
