"""The sequencer's judgement of one event against the entity's state, pure:

    decide(state, event, today, rules, catalogue) -> warnings, or raise Rejection

Each event type has its check (the table `_CHECKS`): required fields, dates not in the future and in
order, the licence / penalty / listing it refers to known and in the right status, periods and early
removal under the publication rules in force on the decision date (ledger/domain/rules.py). What an
accepted event then does to the state is `evolve` (ledger/domain/model.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ledger.domain import objections
from ledger.domain.errors import Rejection
from ledger.domain.key_persons import check_categories
from ledger.domain.model import HONOUR, LIST_TITLES, EntityState, Event, as_date
from ledger.domain.releases import APPROVAL_EVENT, check_approval
from ledger.domain.rules import (
    COURT_ONLY_LISTS,
    ListingTerms,
    PublicationRules,
    add_months,
    court_only_refusal,
)

if TYPE_CHECKING:
    from ledger.domain.key_persons import KeyPersonRules
    from ledger.domain.objection_rules import ObjectionRules
    from ledger.domain.punishment import Catalogue
    from ledger.domain.releases import ReleaseRules


# =========================================================================== decide


def decide(state: EntityState, event: Event, today: date, rules: PublicationRules,
           catalogue: Catalogue | None = None, *, requests: ObjectionRules | None = None,
           key_persons: KeyPersonRules | None = None, releases: ReleaseRules | None = None) -> list[str]:
    """Judge an event against the entity's state. Returns warning codes, or raises Rejection.
    Feedback on a joint-punishment measure (PunishmentFeedbackReported) is judged against the
    punishment catalogue too, which must then be given (the sequencer loads it with the rules); an
    objection or a repair application (ledger/domain/objections.py) against the objection rules
    (`requests`: who the credit office is); a registration naming key-person categories against the
    key-person rules, a 红黑榜 release approval against the release rules (docs/domain-notes.md §11-12)."""
    if event.valid_from > today:
        raise Rejection("valid_from", "time.future",
                        f"生效日期 {event.valid_from} 晚于今天 {today} (the decision cannot take effect in the future)")
    if event.valid_to is not None and event.valid_to < event.valid_from:
        raise Rejection("valid_to", "time.order",
                        f"有效期至 {event.valid_to} 早于生效日期 {event.valid_from} (valid_to is before valid_from)")
    if event.event_type in objections.CHECKS:
        if requests is None:
            raise TypeError(f"judging {event.event_type} needs the objection rules")
        return objections.CHECKS[event.event_type](state, event, today, requests.credit_office)
    check = _CHECKS.get(event.event_type)
    if check is None:
        raise Rejection("event_type", "event_type.unknown",
                        f"未知的事件类型 {event.event_type} (this event type is not known to the ledger)")
    warnings = check(state, event, today, rules)
    with_catalogue = _CATALOGUE_CHECKS.get(event.event_type)
    if with_catalogue is not None:
        if catalogue is None:
            raise TypeError(f"judging {event.event_type} needs the punishment catalogue")
        with_catalogue(state, event, catalogue)
    if event.event_type == "EntityRegistered" and event.body.get("key_person_categories"):
        if key_persons is None:
            raise TypeError("judging a key-person registration needs the key-person rules")
        check_categories(list(event.body["key_person_categories"]), event.department,
                         event.entity_id.startswith("ric:"), event.body["entity_kind"],
                         frozenset(state.key_persons), key_persons)
    if event.event_type == APPROVAL_EVENT:
        if releases is None:
            raise TypeError(f"judging {APPROVAL_EVENT} needs the release rules")
        check_approval(state, event, today, releases)
    return warnings


def _not_future(body: Mapping[str, Any], name: str, today: date, label: str) -> None:
    if body.get(name) is not None and body[name] > today:
        raise Rejection(name, "time.future", f"{label} {body[name]} 晚于今天 {today} (the date {name} is in the future)")


def _required(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not str(body.get(name) or "").strip():
            raise Rejection(name, "required", f"{name} 不能为空 (this field is required)")


def _not_before(body: Mapping[str, Any], later: str, earlier_value: date, earlier_label: str) -> None:
    if body[later] < earlier_value:
        raise Rejection(later, "time.order", f"{later} {body[later]} 早于{earlier_label} {earlier_value} "
                                             f"({later} is before the {earlier_label})")


def _non_negative(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if body.get(name) is not None and body[name] < 0:
            raise Rejection(name, "money.negative", f"{name} 金额不能为负数 (an amount cannot be negative)")


# --- licences (双公示: 行政许可) ------------------------------------------------------------


def _check_licence_granted(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "licence_no", "decision_no", "content", "authority")
    _not_future(b, "decision_date", today, "许可决定日期")
    if b.get("valid_to") is not None and b["valid_to"] < b["valid_from"]:
        raise Rejection("valid_to", "time.order", "有效期至早于有效期自 (XK_YXQZI is before XK_YXQZ)")
    known = state.licences.get(b["licence_no"])
    if known is not None and known["status"] == "valid":
        raise Rejection("licence_no", "licence.exists",
                        f"许可编号 {b['licence_no']} 的许可已存在且有效，变更请报送许可变更事件 "
                        f"(a valid licence with this number exists; report a change instead)")
    return []


def _known_valid_licence(state: EntityState, b: Mapping[str, Any]) -> Mapping[str, str]:
    known = state.licences.get(b["licence_no"])
    if known is None:
        raise Rejection("licence_no", "licence.unknown",
                        f"该主体没有许可编号为 {b['licence_no']} 的许可 (this entity has no licence with this number)")
    if known["status"] != "valid":
        raise Rejection("licence_no", "licence.not_valid",
                        f"许可 {b['licence_no']} 已被撤销，不能再变更或撤销 (this licence was already revoked)")
    return known


def _check_licence_changed(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    _required(e.body, "reason", "decision_no")
    _not_future(e.body, "decision_date", today, "变更决定日期")
    known = _known_valid_licence(state, e.body)
    _not_before(e.body, "decision_date", as_date(known["decision_date"]), "原许可决定日期")
    return []


def _check_licence_revoked(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    _required(e.body, "reason", "decision_no")
    _not_future(e.body, "decision_date", today, "撤销决定日期")
    known = _known_valid_licence(state, e.body)
    _not_before(e.body, "decision_date", as_date(known["decision_date"]), "原许可决定日期")
    return []


# --- penalties (双公示: 行政处罚) -----------------------------------------------------------


def _check_penalty(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _not_future(b, "decision_date", today, "处罚决定日期")
    _non_negative(b, "fine_fen", "confiscation_fen")
    if not b["penalty_categories"]:
        raise Rejection("penalty_categories", "required",
                        "处罚类别不能为空 (at least one penalty category, CF_CFLB, is required)")
    _required(b, "decision_no", "violation_type", "facts", "legal_basis", "content", "authority")
    if b["decision_no"] in state.penalties:
        raise Rejection("decision_no", "penalty.decision_no_exists",
                        f"该主体已有文号为 {b['decision_no']} 的处罚决定 "
                        f"(this entity already has a penalty with this decision number)")
    return _penalty_warnings(b, rules)


def _penalty_warnings(b: Mapping[str, Any], rules: PublicationRules) -> list[str]:
    """What a penalty is accepted with (docs/domain-notes.md §14.1-14.2): no publication period before
    the first regime; a severity other than its categories imply (the department's explicit one is
    kept: a sector rule that classifies wins); categories unknown or before the law created them; a
    公示截止期 other than the computed window's last day."""
    window = rules.penalty_window(b["decision_date"], b["severity"])
    if window.regime is None:
        return ["publication.no_period"]
    finding = rules.severity_for(b["decision_date"], b["penalty_categories"])
    warnings = list(finding.warnings)
    if finding.severity is not None and finding.severity != b["severity"]:
        warnings.append("penalty.severity_differs_from_categories")
    given = b.get("publicity_until")
    if given is not None and given != window.automatic_end - timedelta(days=1):
        warnings.append("penalty.publicity_until_differs")
    return warnings


def _judged_under(rules: PublicationRules, known: Mapping[str, Any]) -> PublicationRules:
    """The publication rules a penalty or listing of the state was judged under (version 1 when the
    state does not say: docs/domain-notes.md §14.3)."""
    return rules.at(known.get("publication_rules", 1))


def _known_penalty(state: EntityState, decision_no: str, field_name: str) -> Mapping[str, str]:
    known = state.penalties.get(decision_no)
    if known is None:
        raise Rejection(field_name, "penalty.unknown",
                        f"该主体没有文号为 {decision_no} 的行政处罚 (this entity has no penalty with this decision number)")
    return known


def _check_penalty_revoked(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "revocation_reason", "revocation_decision_no")
    _not_future(b, "decision_date", today, "撤销决定日期")
    known = _known_penalty(state, b["penalty_decision_no"], "penalty_decision_no")
    if known["status"] == "revoked":
        raise Rejection("penalty_decision_no", "penalty.already_revoked",
                        f"文号为 {b['penalty_decision_no']} 的行政处罚已被撤销 (this penalty was already revoked)")
    _not_before(b, "decision_date", as_date(known["decision_date"]), "原处罚决定日期")
    return []


# --- lists ---------------------------------------------------------------------------------


def _not_already_listed(state: EntityState, list_kind: str, ref_field: str, ref: str) -> None:
    known = state.listing(list_kind, ref)
    if known is not None and known["status"] == "active":
        raise Rejection(ref_field, "list.already_listed",
                        f"该主体已因 {ref} 列入{LIST_TITLES[list_kind]} (the entity is already listed under this number)")


def _active_listing(state: EntityState, list_kind: str, ref_field: str, ref: str) -> Mapping[str, Any]:
    known = state.listing(list_kind, ref)
    if known is None or known["status"] != "active":
        raise Rejection(ref_field, "list.not_listed",
                        f"该主体未因 {ref} 列入{LIST_TITLES[list_kind]}，不能移出 "
                        f"(the entity is not on this list under this number, so it cannot be removed)")
    return known


def _terms(listing: Mapping[str, Any]) -> ListingTerms:
    return ListingTerms(ground=listing.get("ground"), period_months=listing.get("period_months"),
                        extension_months=listing.get("extension_months") or 0)


def _check_expired(rules: PublicationRules, listing: Mapping[str, Any], on: date, field_name: str) -> date:
    window = _judged_under(rules, listing).listing_window(listing["list_kind"], as_date(listing["listed_on"]), _terms(listing))
    if window.automatic_end is None:
        raise Rejection(field_name, "list.no_fixed_period",
                        f"该{LIST_TITLES[listing['list_kind']]}条目没有固定期限，不会期满 (this entry has no fixed period)")
    if on < window.automatic_end:
        raise Rejection(field_name, "list.period_not_ended",
                        f"列入期限至 {window.automatic_end} 才届满 (the listing period ends on {window.automatic_end})")
    return window.automatic_end


def _early_removal(rules: PublicationRules, listing: Mapping[str, Any], on: date, corrected_on: date | None,
                   field_name: str) -> None:
    rejection = _judged_under(rules, listing).repair_allowed(listing["list_kind"], as_date(listing["listed_on"]), on,
                                     corrected_on=corrected_on, terms=_terms(listing), field=field_name)
    if rejection is not None:
        raise rejection


# 法释〔2017〕7号 art. 10(2): "有纳入期限的，不适用前款第一项规定" — for a listing with a fixed term (grounds
# 2-6, art. 2) only art. 10(1) (obligations performed, or executed in full) is excluded; the other art. 10
# grounds (settlement performed, the applicant's request, no assets after 终结本次执行, suspension for
# retrial or bankruptcy, a non-enforcement ruling, termination of execution) and an art. 12 correction
# still end it early. docs/domain-notes.md §4.3.
FIXED_TERM_NOT_SHORTENED_BY = frozenset({"performed"})


def _check_debtor_listed(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "case_no", "court", "enforcement_basis_no", "duty", "dishonest_conduct")
    _not_future(b, "listed_on", today, "纳入日期")
    _not_before(b, "listed_on", b["filing_date"], "立案日期")
    _not_already_listed(state, "dishonest_debtor", "case_no", b["case_no"])
    if e.subject_birth_date is not None and _age_on(e.subject_birth_date, b["listed_on"]) < 18:
        raise Rejection("subject.id", "debtor.minor",
                        "未成年人不得纳入失信被执行人名单（法释〔2017〕7号第四条） "
                        "(a minor may not be listed as a dishonest judgment debtor)")
    rules.listing_window("dishonest_debtor", b["listed_on"],
                         ListingTerms(ground=b["ground"], extension_months=b.get("extension_months") or 0))
    return []


def _age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _check_debtor_delisted(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _not_future(b, "delisted_on", today, "删除日期")
    listing = _active_listing(state, "dishonest_debtor", "case_no", b["case_no"])
    _not_before(b, "delisted_on", as_date(listing["listed_on"]), "纳入日期")
    if b["delisting_reason"] == "period_expired":
        _check_expired(rules, listing, b["delisted_on"], "delisted_on")
    elif b["delisting_reason"] in FIXED_TERM_NOT_SHORTENED_BY:
        end = _judged_under(rules, listing).listing_window(
            "dishonest_debtor", as_date(listing["listed_on"]), _terms(listing)).automatic_end
        if end is not None and b["delisted_on"] < end:
            raise Rejection("delisting_reason", "debtor.fixed_term_not_shortened",
                            f"该名单有纳入期限（至 {end} 届满），履行完毕不能提前删除，期满后三个工作日内删除"
                            f"（法释〔2017〕7号第二条、第十条第二款） (this listing has a fixed term ending on {end}; "
                            f"performance does not shorten it: the court deletes it within 3 working days after "
                            f"the term, SPC provisions 2017 arts. 2 and 10(2))")
    return []


def _check_tax_listed(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "case_no", "violation", "tax_authority")
    _not_future(b, "listed_on", today, "公布日期")
    _not_before(b, "listed_on", b["determination_date"], "确定日期")
    _non_negative(b, "amount_evaded_fen")
    _not_already_listed(state, "major_tax_violation", "case_no", b["case_no"])
    return []


def _check_tax_delisted(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _not_future(b, "delisted_on", today, "停止公布日期")
    listing = _active_listing(state, "major_tax_violation", "case_no", b["case_no"])
    _not_before(b, "delisted_on", as_date(listing["listed_on"]), "公布日期")
    if b["reason"] == "paid_in_full":
        if b.get("paid_on") is None:
            raise Rejection("paid_on", "required", "缴清税款、滞纳金和罚款的日期不能为空 "
                                                   "(the date the taxes, late fees and fines were paid is required)")
        _early_removal(rules, listing, b["delisted_on"], b["paid_on"], "delisted_on")
    elif b["reason"] == "period_expired":
        _check_expired(rules, listing, b["delisted_on"], "delisted_on")
    return []


def _check_tax_rated(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _not_future(b, "rated_on", today, "评价日期")
    if b["year"] > today.year or b["year"] < 2014:
        raise Rejection("year", "tax_rating.year", f"评价年度 {b['year']} 不在有效范围内 "
                                                   f"(the assessment year must be between 2014 and {today.year})")
    if b.get("score") is not None and not 0 <= b["score"] <= 100:
        raise Rejection("score", "tax_rating.score", "纳税信用评价得分应在0至100之间 (the score must be 0 to 100)")
    if b["level"] == "A" and state.active_listings("major_tax_violation"):
        raise Rejection("level", "tax_rating.listed_major_violation",
                        "该主体正列于重大税收违法失信主体名单，纳税信用直接判为D级，不能评为A级（国家税务总局令第54号） "
                        "(a subject listed for a major tax violation is rated D directly and cannot be rated A)")
    return []


def _check_wage_listed(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "decision_no")
    _not_future(b, "listed_on", today, "列入日期")
    if b["arrears_fen"] <= 0:
        raise Rejection("arrears_fen", "money.not_positive", "拖欠工资金额应大于零 (the arrears must be positive)")
    _not_already_listed(state, "wage_arrears", "decision_no", b["decision_no"])
    return []


def _check_wage_delisted(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _not_future(b, "delisted_on", today, "移出日期")
    listing = _active_listing(state, "wage_arrears", "decision_no", b["decision_no"])
    _not_before(b, "delisted_on", as_date(listing["listed_on"]), "列入日期")
    if b["reason"] == "early_removal_after_correction":
        if b.get("corrected_on") is None:
            raise Rejection("corrected_on", "required", "提前移出须填写改正（清偿工资）日期 "
                                                        "(early removal requires the date the wages were repaid)")
        _early_removal(rules, listing, b["delisted_on"], b["corrected_on"], "delisted_on")
    elif b["reason"] == "period_expired":
        _check_expired(rules, listing, b["delisted_on"], "delisted_on")
    return []


def _check_procurement_ban(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "decision_no", "violation", "authority")
    _not_future(b, "decision_date", today, "处罚决定日期")
    _non_negative(b, "contract_amount_fen", "fine_fen")
    _not_already_listed(state, "procurement_ban", "decision_no", b["decision_no"])
    try:
        rules.listing_window("procurement_ban", b["decision_date"], ListingTerms(period_months=b["ban_months"]))
    except Rejection as r:
        raise Rejection("ban_months", r.code, r.message) from None
    return []


# --- repair, expiry, red list, commitments, register, feedback ------------------------------


def _check_repaired(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "target_ref", "repair_no", "authority")
    _not_future(b, "decision_date", today, "修复决定日期")
    if b["target_kind"] == "administrative_penalty":
        penalty = _known_penalty(state, b["target_ref"], "target_ref")
        if penalty["status"] != "published":
            raise Rejection("target_ref", "penalty.not_published",
                            f"该行政处罚信息当前不在公示中（状态：{penalty['status']}），无需修复 "
                            f"(this penalty is not being published any more, status {penalty['status']})")
        rejection = _judged_under(rules, penalty).repair_allowed(
            penalty["severity"], as_date(penalty["decision_date"]), b["decision_date"], field="decision_date")
        if rejection is not None:
            raise rejection
        return []
    if b["target_kind"] in COURT_ONLY_LISTS:
        raise court_only_refusal(b["target_kind"], "target_kind")
    listing = _active_listing(state, b["target_kind"], "target_ref", b["target_ref"])
    _early_removal(rules, listing, b["decision_date"], b.get("corrected_on"), "decision_date")
    return []


def _expiry_dates(e: Event, today: date) -> None:
    """An expiry is not in the future and takes effect on its expiry date."""
    _not_future(e.body, "expired_on", today, "期满日期")
    if e.valid_from != e.body["expired_on"]:
        raise Rejection("valid_from", "expiry.valid_from",
                        f"期满事件的生效日期 {e.valid_from} 应与期满日期 {e.body['expired_on']} 相同 "
                        f"(an expiry takes effect on its expiry date)")


def _check_expiry(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _expiry_dates(e, today)
    if b["list_kind"] == "administrative_penalty_publication":
        penalty = _known_penalty(state, b["target_ref"], "target_ref")
        if penalty["status"] != "published":
            raise Rejection("target_ref", "penalty.not_published",
                            f"该行政处罚信息已不在公示中（状态：{penalty['status']}） (this penalty is no longer published)")
        if penalty["event_id"] != b["target_event_id"]:
            raise Rejection("target_event_id", "expiry.target_mismatch",
                            "期满事件指向的账本事件与该处罚不符 (the target event is not the one that imposed this penalty)")
        end = _judged_under(rules, penalty).penalty_window(as_date(penalty["decision_date"]),
                                                           penalty["severity"]).automatic_end
        if b["expired_on"] < end:
            raise Rejection("expired_on", "publication.period_not_ended",
                            f"公示期至 {end} 才届满 (the publication period ends on {end})")
        _expiry_on_legal_end(b["expired_on"], end)
        return []
    listing = _active_listing(state, b["list_kind"], "target_ref", b["target_ref"])
    if listing["event_id"] != b["target_event_id"]:
        raise Rejection("target_event_id", "expiry.target_mismatch",
                        "期满事件指向的账本事件与该名单条目不符 (the target event is not the one that listed this entry)")
    end = _check_expired(rules, listing, b["expired_on"], "expired_on")
    _expiry_on_legal_end(b["expired_on"], end)
    return []


def _expiry_on_legal_end(expired_on: date, end: date) -> None:
    """An expiry records the day the period ended, however late the scheduler submits it (after a
    downtime, say), so the views' valid time is the legal one."""
    if expired_on != end:
        raise Rejection("expired_on", "expiry.not_legal_end",
                        f"期满日期应为法定届满日 {end}，而不是 {expired_on} "
                        f"(expired_on must be the day the period ended, {end})")


def _check_honour(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "honour", "awarding_body", "document_no")
    _not_future(b, "awarded_on", today, "授予日期")
    if b.get("valid_until") is not None and b["valid_until"] < b["awarded_on"]:
        raise Rejection("valid_until", "time.order", "有效期至早于授予日期 (valid_until is before awarded_on)")
    black = state.active_listings()
    if black:
        kinds = "、".join(sorted({LIST_TITLES[x["list_kind"]] for x in black}))
        raise Rejection("honour", "honour.blacklisted",
                        f"该主体正列于{kinds}，不得列入红名单 (an entity on a black list cannot receive a red-list honour)")
    known = state.honour(b["document_no"])
    if known is not None and known["status"] in ("active", "suspended"):
        raise Rejection("document_no", "honour.exists",
                        f"认定文件 {b['document_no']} 的荣誉已在红名单中（状态：{known['status']}） "
                        f"(an honour under this document number is already on the red list, status {known['status']})")
    return []


def _check_honour_validity(state: EntityState, e: Event, catalogue: Catalogue) -> None:
    """A stated end within the kind's maximum validity (河南省社会信用条例 art. 37: the designating body
    sets it; the maxima are in the punishment catalogue's honour_kinds)."""
    b = e.body
    kind = catalogue.honour_kind(b["honour"])
    if kind is None or b.get("valid_until") is None:
        return
    latest = add_months(b["awarded_on"], kind.max_months)
    if b["valid_until"] > latest:
        raise Rejection("valid_until", "honour.validity_too_long",
                        f"“{b['honour']}”的有效期最长{kind.max_months}个月，有效期至最晚为 {latest}，收到 {b['valid_until']} "
                        f"(an honour of this kind holds at most {kind.max_months} months, until {latest} at the latest; "
                        f"source: {kind.legal_source})")


def _honour_in_force(state: EntityState, ref: str, statuses: tuple[str, ...]) -> Mapping[str, Any]:
    known = state.honour(ref)
    if known is None or known["kind"] != HONOUR:
        raise Rejection("document_no", "honour.unknown",
                        f"该主体没有认定文件为 {ref} 的红名单荣誉 (this entity has no red-list honour under this document number)")
    if known["status"] not in statuses:
        raise Rejection("document_no", "honour.ended",
                        f"认定文件 {ref} 的荣誉已结束（状态：{known['status']}） (this honour has already ended: {known['status']})")
    return known


def _check_honour_revoked(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    """Only the awarding department revokes (河南省社会信用条例 art. 34(8), art. 37); a suspended honour
    may be revoked: that is the designating body's decision the suspension waits for."""
    b = e.body
    _required(b, "document_no", "decision_no", "reason")
    _not_future(b, "revoked_on", today, "撤销日期")
    known = _honour_in_force(state, b["document_no"], ("active", "suspended"))
    if known["department"] != e.department:
        raise Rejection("source_department", "honour.not_awarding_department",
                        f"只有授予单位（{known['department']}）可以撤销该荣誉 "
                        f"(only the awarding department {known['department']} may revoke this honour)")
    _not_before(b, "revoked_on", as_date(known["awarded_on"]), "授予日期")
    return []


def _check_honour_expired(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _expiry_dates(e, today)
    known = _honour_in_force(state, b["document_no"], ("active",))
    if known["event_id"] != b["target_event_id"]:
        raise Rejection("target_event_id", "expiry.target_mismatch",
                        "期满事件指向的账本事件与该荣誉不符 (the target event is not the one that awarded this honour)")
    return []


def _check_honour_end(state: EntityState, e: Event, catalogue: Catalogue) -> None:
    b = e.body
    known = state.honours[b["document_no"]]
    valid_until = known["valid_until"]
    end = catalogue.honour_end(known["title"], as_date(known["awarded_on"]),
                               None if valid_until is None else as_date(valid_until))
    if end is None:
        raise Rejection("document_no", "honour.no_fixed_period",
                        "该荣誉没有有效期，不会期满 (this honour has no validity period)")
    if b["expired_on"] < end:
        raise Rejection("expired_on", "honour.period_not_ended", f"荣誉有效期至 {end} 才届满 (the honour holds until {end})")
    _expiry_on_legal_end(b["expired_on"], end)


def _check_commitment(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    _required(e.body, "commitment_type", "content")
    _not_future(e.body, "made_on", today, "承诺日期")
    return []


def _check_registered(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    """A registration; a second one only from another register naming the person in a key-person group
    (its categories are then judged with the key-person rules, in ``decide``)."""
    _required(e.body, "registration_authority")
    _not_future(e.body, "registered_on", today, "登记日期")
    if state.registered_on is not None and not e.body.get("key_person_categories"):
        raise Rejection("registered_on", "entity.already_registered",
                        f"该主体已于 {state.registered_on} 登记 (this entity is already registered)")
    return []


def _check_release(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    """A 红黑榜 release approval: judged in ``decide`` with the release rules (ledger/domain/releases.py)."""
    return []


def _check_feedback(state: EntityState, e: Event, today: date, rules: PublicationRules) -> list[str]:
    b = e.body
    _required(b, "measure_code", "trigger_event_id", "business_ref")
    _not_future(b, "acted_on", today, "实施日期")
    triggers = {x["event_id"] for x in state.listings.values()} | {x["event_id"] for x in state.penalties.values()}
    if b["trigger_event_id"] not in triggers:
        raise Rejection("trigger_event_id", "feedback.unknown_trigger",
                        "反馈所依据的事件不是该主体的名单或处罚事件 "
                        "(the trigger is not a listing or penalty event of this entity)")
    return []


def _check_feedback_measure(state: EntityState, e: Event, catalogue: Catalogue) -> None:
    """The measure must be in the catalogue, the reporting department one of its implementing
    departments, and, when the trigger is a listing, the measure one that listing brings."""
    b = e.body
    measure = catalogue.measures.get(b["measure_code"])
    if measure is None:
        raise Rejection("measure_code", "feedback.unknown_measure",
                        f"惩戒措施编号“{b['measure_code']}”不在联合惩戒措施清单（第{catalogue.version}版）中 "
                        f"(not a measure of the joint-punishment catalogue v{catalogue.version}; known: "
                        f"{', '.join(sorted(catalogue.measures))})")
    if e.department not in measure.departments:
        raise Rejection("source_department", "feedback.not_implementing_department",
                        f"{e.department} 不是措施“{measure.name}”的实施部门 (the reporting department does not "
                        f"implement {measure.id}; its implementing departments: {', '.join(measure.departments)})")
    listing = next((x for x in state.listings.values() if x["event_id"] == b["trigger_event_id"]), None)
    if listing is not None and listing["list_kind"] not in measure.list_kinds:
        raise Rejection("measure_code", "feedback.measure_not_triggered",
                        f"措施“{measure.name}”不适用于{LIST_TITLES[listing['list_kind']]} "
                        f"(a {listing['list_kind']} listing does not bring the measure {measure.id}; it follows "
                        f"from {', '.join(sorted(measure.list_kinds))})")


_CATALOGUE_CHECKS: dict[str, Callable[[EntityState, Event, Catalogue], None]] = {
    "PunishmentFeedbackReported": _check_feedback_measure,
    "HonourAwarded": _check_honour_validity,
    "HonourExpired": _check_honour_end,
}
_Check = Callable[[EntityState, Event, date, PublicationRules], list[str]]
_CHECKS: dict[str, _Check] = {
    "AdministrativeLicenceGranted": _check_licence_granted,
    "AdministrativeLicenceChanged": _check_licence_changed,
    "AdministrativeLicenceRevoked": _check_licence_revoked,
    "AdministrativePenaltyImposed": _check_penalty,
    "AdministrativePenaltyRevoked": _check_penalty_revoked,
    "DishonestDebtorListed": _check_debtor_listed,
    "DishonestDebtorDelisted": _check_debtor_delisted,
    "MajorTaxViolationListed": _check_tax_listed,
    "MajorTaxViolationDelisted": _check_tax_delisted,
    "TaxCreditRated": _check_tax_rated,
    "WageArrearsListed": _check_wage_listed,
    "WageArrearsDelisted": _check_wage_delisted,
    "ProcurementBanImposed": _check_procurement_ban,
    "CreditRepaired": _check_repaired,
    "HonourAwarded": _check_honour,
    "HonourRevoked": _check_honour_revoked,
    "HonourExpired": _check_honour_expired,
    "CreditCommitmentMade": _check_commitment,
    "EntityRegistered": _check_registered,
    "PunishmentFeedbackReported": _check_feedback,
    "ListingExpired": _check_expiry,
    APPROVAL_EVENT: _check_release,
}
