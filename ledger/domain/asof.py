"""An entity's state as of a valid date and as the ledger knew it at a moment, with `evolve`.

Two times (docs/design-notes.md section 2): the valid time of an event is when its decision takes effect
(the envelope's valid_from, given by the emitter); its ledger time is when the sequencer appended
it (sequenced_at). A late correction has a valid time before events already in the ledger.

    state_as_of(history, valid_on=D, known_at=T)

folds, in ledger order (entity version), the events the ledger had appended by T (sequenced_at
<= T) whose valid time began by D (valid_from <= D), with the same `evolve` the sequencer and the
projections use. Either bound may be None (no bound). Folding a subset can meet an event that
refers to something outside it (a delisting dated on or before D of a listing dated after D,
because the emitter's dates disagree): `evolve` cannot apply it, so it is skipped and reported in
`not_applicable`, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from ledger.domain.model import EntityState, Event, evolve


@dataclass(frozen=True)
class Recorded:
    """One ledger entry of the entity: its version, its ledger time and the event."""

    version: int
    sequenced_at: datetime
    event: Event


@dataclass(frozen=True)
class AsOf:
    state: EntityState
    applied: list[int] = field(default_factory=list)  # versions folded
    not_applicable: list[tuple[int, str]] = field(default_factory=list)  # (version, why)
    known_version: int = 0  # the entity's last version the ledger had appended by known_at


def in_effect(r: Recorded, valid_on: date | None, known_at: datetime | None) -> bool:
    return ((valid_on is None or r.event.valid_from <= valid_on)
            and (known_at is None or r.sequenced_at <= known_at))


def state_as_of(history: Sequence[Recorded], valid_on: date | None = None,
                known_at: datetime | None = None) -> AsOf:
    """The fold described above. `history` is the entity's entries in version order."""
    state = EntityState()
    applied: list[int] = []
    skipped: list[tuple[int, str]] = []
    known = 0
    for r in history:
        if known_at is not None and r.sequenced_at > known_at:
            continue
        known = r.version
        if valid_on is not None and r.event.valid_from > valid_on:
            continue
        try:
            nxt = evolve(state, r.event)
        except KeyError as e:
            skipped.append((r.version, f"refers to {e.args[0]!r}, which is not in effect as of that date"))
            continue
        state = nxt
        applied.append(r.version)
    return AsOf(state, applied, skipped, known)
