"""The fold's output, byte for byte, on a fixed input: an optimisation of projections/rows.py must not
change a single written value (the rebuild's digest comparison with the live views depends on it).

The input is bench/fold.py's reproducible workload (real signed submissions sealed into LedgerEntry
records, fixed clock and event ids): 3,000 entries, half of them from full life() histories, so that
every family and every table is written. GOLDEN was recorded with the fold as it was before the
optimisations (commit 89e2766), and recorded again when the workload and the feedback rules changed
(the merge of the scheduler and trigger work): the unoptimised fold of commit 25b4222 and the
optimised one gave the same digest on the new input; recorded again when publicity rows gained their
last column (provisional) and the short_deadlines rows were added (with that column dropped and
those rows left out the digest was still the one before); when the state began to keep red-list
entries one by one (honours with their status, A-level ratings) and the grade to imply tax level D
during a major tax violation listing; when the workload's penalties took the severity their
categories give (docs/domain-notes.md §14.1: with the old workload the fold with rules versions gave
the old digest); and when the ledger copy's envelope took the entry's rules versions. The last
three were recorded together when those changes were merged. Recorded again when submissions
became batch-signed (each signature over a batch of one), and again when the workload's entries
kept their batch proofs (LedgerEntry v3): both times every entry's hash (a column of the ledger
copy) changed, and nothing else (the digest of every other table was the same). Recorded again when
HonourAwarded v2 (schema id 122, the optional document_url) became the newest: the workload's honours
are written with it, so their ledger copy rows (bytes, hash, the record with document_url null) changed,
and nothing else (every other table's digest was the same). Recorded again when entities, list
entries and publicity rows gained the county (and entities the key-person groups) and EntityRegistered
v2 (schema id 131, key_person_categories) became the newest: with those columns dropped, every table's
digest but the ledger copy's was the one before, and the ledger copy changed only in the workload's
registrations (written with v2: their bytes, hash and the record with key_person_categories []). jsonb
columns are compared as values, everything else as text.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import fold
from ledger.domain.model import EntityState
from ledger.rules import loader
from projections.rows import Folder, Loaded, state_from_json, state_json

GOLDEN = "554b666d08955bd9e874227a38fc21936524d492fc13defb4ba047d091899717"


@pytest.fixture(scope="module")
def work():
    return fold.batches(fold.fixed_entries(3000, 11, life_share=0.5), 700)


@pytest.fixture(scope="module")
def folder():
    rules = loader.load()
    return Folder(rules)


def test_the_fold_writes_exactly_what_it_wrote_before(work, folder) -> None:
    out = fold.fold_all(folder, work, keep=True)
    assert sum(o.applied for o in out) == 3000
    for table in ("ledger_copy", "states", "entities", "list_inserts", "list_updates", "publicity_inserts",
                  "publicity_updates", "deadlines"):
        assert any(getattr(o, table) for o in out), f"the input writes no {table}: the test would prove nothing"
    assert fold.digest(out) == GOLDEN


def test_a_batch_delivered_again_is_skipped_whole(work, folder) -> None:
    first = folder.fold(work[0], Loaded({}, set()))
    states = {k: (v, EntityState.from_json(s)) for k, (v, s) in first.states.items()}
    again = folder.fold(work[0], Loaded(states, set()))
    assert again.applied == 0 and again.skipped == len(work[0])
    assert not (again.ledger_copy or again.states or again.entities or again.publicity_inserts)


_text = st.text(max_size=12)  # any code point but lone surrogates (never in decoded Avro strings)
_leaf = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1), _text)
_maps = st.dictionaries(_text, st.dictionaries(_text, _leaf, max_size=4), max_size=4)


@settings(max_examples=300, deadline=None)
@given(version=st.integers(0, 10**9), registered=st.one_of(st.none(), _text), licences=_maps, penalties=_maps,
       listings=_maps, tax=st.dictionaries(_text, _text, max_size=3), honours=_maps,
       counts=st.dictionaries(_text, st.integers(0, 10**9), max_size=5), requests=_maps, key_persons=_maps,
       releases=_maps)
def test_state_json_is_to_json_byte_for_byte(version, registered, licences, penalties, listings, tax, honours,
                                             counts, requests, key_persons, releases) -> None:
    state = EntityState(version, registered, licences, penalties, listings, tax, honours, counts,
                        requests=requests, key_persons=key_persons, releases=releases)
    text = state_json(state)
    # an entity with no objections, key-person groups or releases has the state text it had before they were kept
    top = json.loads(text)
    assert ("requests" in top) == bool(requests)
    assert ("key_persons" in top) == bool(key_persons) and ("releases" in top) == bool(releases)
    assert text == state.to_json()
    assert state_from_json(text) == EntityState.from_json(text)
