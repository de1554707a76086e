"""Rules as data: publication periods, list periods and the department authorization matrix.

The rules live in versioned JSON files in ``ledger/rules/`` (``<name>.v<N>.json``), which the one
loader (``ledger/rules/loader.py``) reads at start; each names its legal sources. This module is
pure and holds the frozen values and what they decide; ``ledger/domain/rules_parse.py`` turns a
document the loader read into them, validating every entry (``RulesError`` names the file, the
entry and the reason):

  * ``PublicationRules`` — administrative-penalty publication windows per regime: from version 2 the
    safer loading rule for 2017 to 2019-06-30 (docs/domain-notes.md §14.2), 发改办财金〔2019〕527号
    (from 2019-07-01), NDRC Order 58 (from 2023-05-01), NDRC Order 36 (from 2026-04-01), chosen by
    the decision date (docs/domain-notes.md §4.1); before the first regime no publication period;
    the class of a penalty from its categories (CF_CFLB, §14.1); listing periods and early removal of the court, tax,
    wage-arrears, procurement and market-regulation lists (docs/domain-notes.md §4.3-4.7).
  * ``DepartmentMatrix`` — which department may emit which event type (docs/design-notes.md §2).

Dates: a period of N months counted from a decision taken on day D ends on the day of the N-th
month that corresponds to D, or on that month's last day if it has none (民法典 arts. 201-202;
``add_months``). Windows are half-open: publication runs from ``start`` up to, not including,
``automatic_end``; repair or early removal may take effect on or after ``earliest_repair`` /
``earliest_removal``, the day after the minimum period ends.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Literal, get_args

from ledger.domain.errors import Rejection

__all__ = [
    "COURT_ONLY_LISTS",
    "EVENT_TYPES",
    "LIST_KINDS",
    "LIST_TITLES",
    "OBJECTION_EVENTS",
    "REPAIR_APPLICATION_EVENTS",
    "PENALTY_WARNING_MESSAGES",
    "SEVERITIES",
    "DepartmentMatrix",
    "Department",
    "EarlyRemoval",
    "ListKindRule",
    "ListingTerms",
    "ListingWindow",
    "PenaltyCategory",
    "Period",
    "PublicationRules",
    "Regime",
    "Severity",
    "SeverityFinding",
    "Window",
    "add_months",
    "court_only_refusal",
]

Severity = Literal["minor", "general", "serious"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
PeriodRule = Literal["fixed", "by_decision", "by_ground"]
PeriodStart = Literal["decision_date", "publication_date"]
EndCondition = Literal["automatic", "automatic_once_corrected"]

# The list kinds the ledger knows; the rules file must define exactly these (docs/domain-notes.md §4.3-4.7).
LIST_KINDS: frozenset[str] = frozenset({
    "dishonest_debtor", "major_tax_violation", "wage_arrears", "procurement_ban", "serious_dishonesty",
})

LIST_TITLES = {
    "dishonest_debtor": "失信被执行人名单", "major_tax_violation": "重大税收违法失信主体名单",
    "wage_arrears": "拖欠农民工工资失信联合惩戒对象名单", "procurement_ban": "政府采购禁止参加名单",
    "serious_dishonesty": "严重违法失信名单",
}
# Only the court deletes a dishonest-debtor listing (法释〔2017〕7号 arts. 6, 10): no credit-repair decision
# of the credit office ends it. docs/domain-notes.md §4.3.
COURT_ONLY_LISTS = frozenset({"dishonest_debtor"})


def court_only_refusal(list_kind: str, field: str) -> Rejection:
    """Why a credit repair (or an application for one) cannot end a listing of ``COURT_ONLY_LISTS``."""
    return Rejection(field, "repair.court_only",
                     f"{LIST_TITLES[list_kind]}只能由执行法院删除（法释〔2017〕7号第十条），不能通过信用修复移出 "
                     f"(only the enforcing court deletes a dishonest judgment debtor listing, SPC provisions 2017 "
                     f"art. 10; a credit repair cannot end it)")

# The first set of event types (docs/design-notes.md §4). schemas/avro must define exactly these.
EVENT_TYPES: frozenset[str] = frozenset({
    "AdministrativeLicenceGranted", "AdministrativeLicenceChanged", "AdministrativeLicenceRevoked",
    "AdministrativePenaltyImposed", "AdministrativePenaltyRevoked",
    "DishonestDebtorListed", "DishonestDebtorDelisted",
    "MajorTaxViolationListed", "MajorTaxViolationDelisted", "TaxCreditRated",
    "WageArrearsListed", "WageArrearsDelisted",
    "ProcurementBanImposed", "CreditRepaired", "HonourAwarded", "CreditCommitmentMade",
    "EntityRegistered", "PunishmentFeedbackReported", "ListingExpired",
    "HonourRevoked", "HonourExpired",  # red-list validity and exit (docs/domain-notes.md §13)
    # the credit office's own work (docs/design-notes.md §2; docs/domain-notes.md §9): objections and
    # repair applications, each step an event
    "ObjectionFiled", "ObjectionForwarded", "ObjectionAnswered",
    "RepairApplied", "RepairAccepted", "RepairRefused", "RepairDecided",
    "ListReleaseApproved",  # the credit office's numbered 红黑榜 release (docs/domain-notes.md §11)
})
OBJECTION_EVENTS: frozenset[str] = frozenset({"ObjectionFiled", "ObjectionForwarded", "ObjectionAnswered"})
REPAIR_APPLICATION_EVENTS: frozenset[str] = frozenset({"RepairApplied", "RepairAccepted", "RepairRefused",
                                                       "RepairDecided"})


# The warnings a penalty may be accepted with (docs/domain-notes.md §14.1-14.2), in the departments' words.
PENALTY_WARNING_MESSAGES: dict[str, str] = {
    "publication.no_period": "处罚决定日期早于 2017-01-01，当时没有适用的公示期限规定：已收录，不予公示 "
    "(the decision predates the first publication-period regime, 2017-01-01: recorded, not published)",
    "penalty.severity_differs_from_categories": "报送的失信严重程度与按处罚类别（CF_CFLB）得出的不一致，"
    "按报送部门明确的严重程度处理，请核对 (the severity given differs from the one the penalty categories imply; "
    "the department's explicit severity is applied: please check)",
    "penalty.category_unknown": "处罚类别（CF_CFLB）中有不在《行政处罚法》第九条种类中的值，按一般失信计 "
    "(a penalty category is not one of the types of the Administrative Penalty Law art. 9; counted as general)",
    "penalty.category_before_law": "通报批评、限制开展生产经营活动、责令关闭、限制从业自 2021-07-15 起才是行政处罚种类，"
    "早于该日的决定不应使用，请核对 (these penalty types exist only from 2021-07-15; an earlier decision "
    "cannot carry them: please check)",
    "penalty.publicity_until_differs": "公示截止期（CF_GSJZQ）与按公示期限规定计算的最长公示期末日不一致，"
    "以计算结果为准 (the publication end date given differs from the last day of the computed window; "
    "the computed window is applied)",
}


def add_months(d: date, months: int) -> date:
    """``d`` moved by ``months`` calendar months, clamped to the end of the month.

    ``add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)``;
    ``add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)``.
    """
    year, month0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(year, month0 + 1, min(d.day, calendar.monthrange(year, month0 + 1)[1]))


def _day_after_months(start: date, months: int) -> date:
    """First day after a period of ``months`` months counted from ``start`` (``start`` if 0)."""
    return start if months == 0 else add_months(start, months) + timedelta(days=1)


# --------------------------------------------------------------------------- publication periods


@dataclass(frozen=True)
class Period:
    """Minimum and maximum publication period, in months."""

    min_months: int
    max_months: int


@dataclass(frozen=True)
class Regime:
    """A publication-period regime, in force for decisions taken from ``in_force_from`` to
    ``in_force_until`` (inclusive; ``None`` = still in force).

    ``period_start`` and ``end_condition`` are kept as the regime states them (docs/domain-notes.md
    §14.2): 527号 counts from the decision date; the Order 36 draft from the publication date and ends
    automatically only once the subject has corrected the conduct. ``withdrawn_at_cut_over``: a
    window whose maximum ended before that date ends on it instead (the safer loading rule for
    decisions before 527号). ``category_severity`` maps each penalty category (CF_CFLB) to its class
    under this regime (empty in rules files that predate the mapping)."""

    id: str
    title: str
    legal_source: str
    in_force_from: date
    in_force_until: date | None
    periods: Mapping[str, Period]
    period_start: PeriodStart = "decision_date"
    end_condition: EndCondition = "automatic"
    withdrawn_at_cut_over: date | None = None
    category_severity: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def covers(self, d: date) -> bool:
        return self.in_force_from <= d and (self.in_force_until is None or d <= self.in_force_until)


@dataclass(frozen=True)
class PenaltyCategory:
    """A penalty category (处罚类别, CF_CFLB) as the rules file names it: its legal source, the first
    decision date it can be given on (``None``: always), and other spellings found in files."""

    name: str
    legal_source: str
    since: date | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class SeverityFinding:
    """The class of a penalty derived from its categories, with the warning codes the derivation
    raised (``penalty.category_unknown``, ``penalty.category_before_law``). ``severity`` is ``None``
    when the rules have no category mapping for the decision date (no regime, or an old rules file)."""

    severity: str | None
    warnings: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    too_early: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """Publication window of a penalty: shown in ``[start, automatic_end)``; repair may take
    effect on or after ``earliest_repair``. ``regime`` is ``None`` for a decision before the first
    regime: no publication period, an empty window (``start == automatic_end``)."""

    start: date
    earliest_repair: date
    automatic_end: date
    regime: str | None = field(default=None, compare=False)  # the regime's id; None: no publication period


@dataclass(frozen=True)
class EarlyRemoval:
    """When a listed subject may be removed before the period ends."""

    requires_correction: bool
    min_months_after_listing: int
    min_months_after_correction: int


@dataclass(frozen=True)
class ListKindRule:
    """Listing period and early-removal rule of one list kind.

    ``period_rule``: ``fixed`` (``fixed_months``), ``by_decision`` (the listing decision gives the
    period, within ``decision_months``) or ``by_ground`` (``months_by_ground``; ``None`` = no fixed
    period; an extension within ``extension_months`` may be added). ``early_removal`` is ``None``
    where the law provides none.
    """

    kind: str
    title: str
    legal_source: str
    period_rule: PeriodRule
    fixed_months: int | None
    decision_months: tuple[int, int] | None
    months_by_ground: Mapping[int, int | None] | None
    extension_months: tuple[int, int] | None
    early_removal: EarlyRemoval | None


@dataclass(frozen=True)
class ListingTerms:
    """What the listing decision says: inclusion ground (court list, 1-6), period in months (when
    the decision gives it), extension in months (court list)."""

    ground: int | None = None
    period_months: int | None = None
    extension_months: int = 0


@dataclass(frozen=True)
class ListingWindow:
    """Listed in ``[start, automatic_end)`` (``None`` = until removed); early removal possible on
    or after ``earliest_removal`` (``None`` = never), subject to the correction conditions."""

    start: date
    earliest_removal: date | None
    automatic_end: date | None


@dataclass(frozen=True)
class PublicationRules:
    """Publication windows and repair eligibility (``publication_periods.vN.json``).

    The loader gives every process the newest version, holding the earlier ones in ``earlier``:
    ``at(n)`` is version ``n``, so a result judged under an older version is recomputed under it
    (docs/domain-notes.md §14.3)."""

    version: int
    legal_sources: tuple[str, ...]
    regimes: tuple[Regime, ...]
    list_kinds: Mapping[str, ListKindRule]
    categories: Mapping[str, PenaltyCategory] = field(default_factory=lambda: MappingProxyType({}))
    earlier: Mapping[int, PublicationRules] = field(default_factory=lambda: MappingProxyType({}),
                                                    compare=False, repr=False)

    def at(self, version: int | None) -> PublicationRules:
        """The rules of ``version`` (this one for ``None``); ``KeyError`` for a version never loaded."""
        if version is None or version == self.version:
            return self
        found = self.earlier.get(version)
        if found is None:
            raise KeyError(f"publication_periods v{version} is not loaded (loaded: "
                           f"{', '.join(str(v) for v in sorted([*self.earlier, self.version]))})")
        return found

    def regime_for(self, decision_date: date) -> Regime | None:
        """The regime in force on the decision date; ``None`` before the first regime (no
        publication period: the record is accepted with the warning ``publication.no_period``)."""
        for regime in self.regimes:
            if regime.covers(decision_date):
                return regime
        return None

    def penalty_window(self, decision_date: date, severity: str) -> Window:
        """Publication window of an administrative penalty under the regime of its decision date;
        an empty window (no publication period) before the first regime."""
        if severity not in SEVERITIES:
            raise Rejection(
                "severity", "penalty.severity_unknown",
                f"未知的失信严重程度“{severity}”，应为 minor/general/serious（轻微/一般/严重） "
                f"(unknown severity '{severity}'; expected minor, general or serious)")
        regime = self.regime_for(decision_date)
        if regime is None:
            return Window(decision_date, decision_date, decision_date, None)
        period = regime.periods[severity]
        end = _day_after_months(decision_date, period.max_months)
        if regime.withdrawn_at_cut_over is not None and end < regime.withdrawn_at_cut_over:
            end = regime.withdrawn_at_cut_over
        return Window(
            start=decision_date,
            earliest_repair=_day_after_months(decision_date, period.min_months),
            automatic_end=end,
            regime=regime.id,
        )

    def severity_for(self, decision_date: date, categories: Iterable[str]) -> SeverityFinding:
        """The class of a penalty from its categories (CF_CFLB) under the regime of its decision date:
        of several categories the one with the longest maximum period (docs/domain-notes.md §14.1).
        A category the rules do not know counts as general and is named in ``unknown``; a category
        given on a decision before the law created it is named in ``too_early``; both are warnings,
        never refusals (history is loaded as it was decided)."""
        regime = self.regime_for(decision_date)
        if regime is None or not regime.category_severity:
            return SeverityFinding(None, ())
        classes: list[str] = []
        unknown: list[str] = []
        too_early: list[str] = []
        for given in categories:
            category = self.category_named(given)
            if category is None:
                unknown.append(given)
                classes.append("general")
                continue
            if category.since is not None and decision_date < category.since:
                too_early.append(given)
            classes.append(regime.category_severity[category.name])
        if not classes:
            return SeverityFinding(None, ())
        chosen = max(classes, key=lambda c: (regime.periods[c].max_months, regime.periods[c].min_months,
                                             SEVERITIES.index(c)))
        warnings = (("penalty.category_unknown",) if unknown else ()) + (
            ("penalty.category_before_law",) if too_early else ())
        return SeverityFinding(chosen, warnings, tuple(unknown), tuple(too_early))

    def category_named(self, text: str) -> PenaltyCategory | None:
        """The category a CF_CFLB value names (its name or an alias, spaces ignored), or ``None``."""
        wanted = "".join(text.split())
        for category in self.categories.values():
            if wanted == category.name or wanted in category.aliases:
                return category
        return None

    def listing_window(
        self, list_kind: str, listed_on: date, terms: ListingTerms | None = None
    ) -> ListingWindow:
        """Listing window of a list entry; ``Rejection`` if the terms do not fit the list's rule."""
        rule = self._list_kind(list_kind)
        months = _listing_months(rule, terms or ListingTerms())
        removal = rule.early_removal
        return ListingWindow(
            start=listed_on,
            earliest_removal=None if removal is None else _day_after_months(
                listed_on, removal.min_months_after_listing),
            automatic_end=None if months is None else _day_after_months(listed_on, months),
        )

    def repair_allowed(
        self,
        subject: str,
        decision_date: date,
        repair_date: date,
        *,
        corrected_on: date | None = None,
        terms: ListingTerms | None = None,
        field: str = "repair_date",
    ) -> Rejection | None:
        """``None`` if repair (early end of publication) may take effect on ``repair_date``, else
        the ``Rejection`` to return to the emitter (not raised).

        ``subject`` is a penalty severity (minor/general/serious): repair only after the minimum
        publication period of the regime in force on the decision date, and only while the
        information is still published. Or a list kind, with ``decision_date`` the listing date:
        the list's early-removal rule, where ``corrected_on`` is the date the subject corrected the
        dishonest act (paid, performed, repaid wages). Invalid input (unknown severity or list kind,
        terms that do not fit the list) is returned as a ``Rejection`` too.
        """
        try:
            return self._repair_check(subject, decision_date, repair_date, corrected_on, terms, field)
        except Rejection as rejection:
            return rejection

    def _repair_check(self, subject: str, decision_date: date, repair_date: date, corrected_on: date | None,
                      terms: ListingTerms | None, field: str) -> Rejection | None:
        if repair_date < decision_date:
            return Rejection(field, "repair.before_decision",
                             f"修复日期 {repair_date} 早于决定日期 {decision_date} "
                             f"(the repair date is before the decision date {decision_date})")
        if subject not in SEVERITIES and subject not in self.list_kinds:
            known = ", ".join([*SEVERITIES, *sorted(self.list_kinds)])
            return Rejection("severity", "repair.subject_unknown",
                             f"无法判断“{subject}”的修复条件：既不是失信严重程度也不是名单类型 "
                             f"(unknown severity or list kind '{subject}'; expected one of {known})")
        if subject in SEVERITIES:
            window = self.penalty_window(decision_date, subject)
            regime = self.regime_for(decision_date)
            title = "无公示期限的记录" if regime is None else regime.title
            return _check_window(field, repair_date, window.earliest_repair, window.automatic_end, title)
        rule = self._list_kind(subject)
        if rule.early_removal is None:
            return Rejection(field, "repair.not_allowed",
                             f"{rule.title}不能提前移出，期满后自动移出 "
                             f"(a {subject} entry cannot be removed early; it ends with its period)")
        listing = self.listing_window(subject, decision_date, terms)
        assert listing.earliest_removal is not None
        too_early = _check_window(field, repair_date, listing.earliest_removal, listing.automatic_end,
                                  rule.title)
        if too_early is not None:
            return too_early
        return _check_correction(field, rule, repair_date, corrected_on)

    def _list_kind(self, list_kind: str) -> ListKindRule:
        rule = self.list_kinds.get(list_kind)
        if rule is None:
            raise Rejection("list_kind", "list.kind_unknown",
                            f"未知的名单类型“{list_kind}” (unknown list kind '{list_kind}'; expected one of "
                            f"{', '.join(sorted(self.list_kinds))})")
        return rule


def _check_window(
    field: str, repair_date: date, earliest: date, end: date | None, source: str
) -> Rejection | None:
    if repair_date < earliest:
        return Rejection(field, "repair.before_minimum_period",
                         f"按{source}，最短公示期未满，最早可于 {earliest} 修复 "
                         f"(the minimum publication period has not ended; "
                         f"repair is possible from {earliest})")
    if end is not None and repair_date >= end:
        return Rejection(field, "repair.publication_ended",
                         f"公示期已于 {end} 届满，信息已停止公示，无需修复 "
                         f"(publication already ended on {end}; there is nothing to repair)")
    return None


def _check_correction(
    field: str, rule: ListKindRule, repair_date: date, corrected_on: date | None
) -> Rejection | None:
    removal = rule.early_removal
    assert removal is not None
    if not removal.requires_correction:
        return None
    if corrected_on is None or corrected_on > repair_date:
        return Rejection(field, "repair.correction_required",
                         f"{rule.title}须在纠正失信行为（履行义务）后方可提前移出，请提供纠正日期 "
                         "(early removal requires the dishonest act to be corrected first; "
                         "give the correction date)")
    months = removal.min_months_after_correction
    earliest = _day_after_months(corrected_on, months)
    if repair_date < earliest:
        return Rejection(field, "repair.too_soon_after_correction",
                         f"{rule.title}须在纠正满{months}个月后方可提前移出，最早 {earliest} "
                         f"(early removal is possible {months} months after the correction, from {earliest})")
    return None


def _listing_months(rule: ListKindRule, terms: ListingTerms) -> int | None:
    """Months listed under ``terms``; ``None`` for no fixed period."""
    if rule.period_rule == "fixed":
        return rule.fixed_months
    if rule.period_rule == "by_decision":
        assert rule.decision_months is not None
        low, high = rule.decision_months
        given = terms.period_months
        if given is None or not low <= given <= high:
            raise Rejection("period_months", "list.period_out_of_range",
                            f"{rule.title}的期限应由决定确定，为{low}至{high}个月，收到 {given} "
                            f"(the decision must give a period of {low} to {high} months, got {given})")
        return given
    assert rule.months_by_ground is not None
    ground = terms.ground
    if ground is None or ground not in rule.months_by_ground:
        grounds = sorted(rule.months_by_ground)
        raise Rejection("ground", "list.ground_unknown",
                        f"{rule.title}的纳入情形应为 {grounds} 之一，收到 {ground} "
                        f"(the inclusion ground must be one of {grounds}, got {ground})")
    months = rule.months_by_ground[ground]
    if terms.extension_months:
        low, high = rule.extension_months or (0, 0)
        if months is None or not low <= terms.extension_months <= high:
            raise Rejection("extension_months", "list.extension_out_of_range",
                            f"{rule.title}的延长期限应为{low}至{high}个月且仅适用于有固定期限的情形，"
                            f"收到 {terms.extension_months} (an extension must be {low} to {high} months and "
                            f"applies only to grounds with a fixed period, got {terms.extension_months})")
        return months + terms.extension_months
    return months


# --------------------------------------------------------------------------- departments


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    # public: the credit subjects themselves (the public intake attests what they file); it never
    # signs with a key of its own (DepartmentMatrix.authorize_own_signature)
    kind: Literal["emitter", "system", "sector", "public"]
    legal_source: str
    may_emit: frozenset[str]
    intakes: frozenset[str] = frozenset()  # the intakes that may attest submissions for it (v3 on)


@dataclass(frozen=True)
class Intake:
    """A service that receives a department's submissions and signs an attestation of them with its
    own key (the HTTP gateway: what the department's bearer token sent), from version 3 on."""

    id: str
    name: str
    legal_source: str


@dataclass(frozen=True)
class DepartmentMatrix:
    """Which department may emit which event type, and through which intake (``departments.vN.json``)."""

    version: int
    legal_sources: tuple[str, ...]
    departments: Mapping[str, Department]
    intakes: Mapping[str, Intake] = field(default_factory=lambda: MappingProxyType({}))

    def authorize_intake(self, intake: str, department: str) -> None:
        """Return if ``intake`` may attest submissions for ``department``; raise ``Rejection`` (field
        ``signer``: ``intake.unknown``, ``intake.not_allowed``; ``department.unknown``) otherwise."""
        known = self.intakes.get(intake)
        if known is None:
            raise Rejection("signer", "intake.unknown",
                            f"“{intake}”不是登记的受理方，不能代部门签名 (the signer '{intake}' is not an intake "
                            f"of the department matrix; only a registered intake may attest for a department)")
        dept = self.departments.get(department)
        if dept is None:
            raise Rejection("source_department", "department.unknown",
                            f"未登记的报送部门“{department}” (unknown source department '{department}')")
        if intake not in dept.intakes:
            raise Rejection("signer", "intake.not_allowed",
                            f"{dept.name}（{department}）不得经{known.name}（{intake}）报送，应以本部门密钥直接签名报送 "
                            f"(department {department} may not submit through the intake {intake}; it signs its "
                            f"submissions with its own key)")

    def authorize_own_signature(self, department: str) -> None:
        """Return if ``department`` may sign its submissions with its own key; raise ``Rejection`` (field
        ``signer``, ``signer.intake_required``) for the public, who file only through an intake that
        attests what they sent (an unknown department is left to ``authorize``)."""
        known = self.departments.get(department)
        if known is not None and known.kind == "public":
            raise Rejection("signer", "signer.intake_required",
                            f"{known.name}（{department}）只能经受理窗口提交，由受理方签名证明 "
                            f"(the public file only through an intake, which signs an attestation; "
                            f"'{department}' has no signature of its own)")

    def authorize(self, department: str, event_type: str) -> None:
        """Return if ``department`` may emit ``event_type``; raise ``Rejection`` otherwise
        (``department.unknown``, ``event_type.unknown``, ``department.not_authorized``)."""
        known = self.departments.get(department)
        if known is None:
            raise Rejection("source_department", "department.unknown",
                            f"未登记的报送部门“{department}” (unknown source department '{department}')")
        if event_type not in EVENT_TYPES:
            raise Rejection("event_type", "event_type.unknown",
                            f"未知的事件类型 {event_type} (this event type is not known to the ledger)")
        if event_type not in known.may_emit:
            raise Rejection("source_department", "department.not_authorized",
                            f"{known.name}（{department}）无权报送 {event_type} 类事件 "
                            f"(department {department} may not emit {event_type})")
