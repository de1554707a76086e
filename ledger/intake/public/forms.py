"""The public's two forms, pure: an objection to a record (信用信息异议) and a credit repair application
(信用修复申请), from the submitted fields to the family record the public intake attests, or the
problems, each naming the form field and saying in Chinese what to correct.

What is checked here is what a member of the public can correct on the form: the subject's identifier
(as the sequencer will check it: ``submissions.check_subject``), the record chosen, the texts (none
empty or too long, no control character, no ID number written into a free text: the record is on
the ledger forever and its texts reach the views), the telephone number, the dates, the commitment.
Whether the record is the subject's and whether it may be objected to or repaired is the sequencer's
judgement (ledger/domain/objections.py); its refusal is shown on the form the same way.

The receipt number is the filing's event id: ``YY`` (异议) or ``XF`` (修复), the day received and eight
random characters (``new_receipt``).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.domain.model import check_event_id
from ledger.domain.objections import GROUNDS_TITLES
from ledger.records import submissions

__all__ = ["FORMS", "GROUNDS", "ID_TYPES", "PUBLIC", "Form", "Invalid", "Problem", "is_receipt", "new_receipt",
           "problem_of_refusal", "record_of_form"]

PUBLIC = "public"  # the department of the matrix the public file as (departments.v4.json)
RECEIPT = re.compile(r"(YY|XF)[0-9]{8}-[0-9A-Z]{8}")
PHONE = re.compile(r"1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}")  # a mobile or a landline with its area code
GROUNDS = GROUNDS_TITLES
ID_TYPES = {"USCC": "统一社会信用代码", "RIC": "居民身份证号码"}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Problem:
    field: str  # the form field
    code: str
    message: str  # in Chinese, for the person filling the form


class Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Form:
    """One of the two forms: its family, its receipt prefix, its own text fields (name, label, longest,
    required) and what its page calls it."""

    kind: str  # objection | repair
    family: str
    prefix: str
    title: str
    texts: tuple[tuple[str, str, int, bool], ...]


OBJECTION = Form("objection", "ObjectionFiled", "YY", "信用信息异议申请", (
    ("reason", "异议理由", 1000, True), ("evidence", "证明材料", 500, False)))
REPAIR = Form("repair", "RepairApplied", "XF", "信用修复申请", (("statement", "申请说明", 1000, True),))
FORMS = {f.kind: f for f in (OBJECTION, REPAIR)}
COMMON_TEXTS = (("subject_name", "主体名称", 100, True), ("contact_name", "联系人", 50, True))


def new_receipt(prefix: str, today: date) -> str:
    """A receipt number nobody can guess: the prefix, the day, eight random characters, the first a
    letter, so that the day and what follows never read as an ID number (which every public text and
    report would mask: ledger/domain/identity.py ID_NUMBER_RUN allows a hyphen between digits)."""
    letters, alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ", "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return (f"{prefix}{today:%Y%m%d}-" + secrets.choice(letters)
            + "".join(secrets.choice(alphabet) for _ in range(7)))


def holds_id_number(text: str) -> bool:
    """Whether free text holds something that could be a resident ID number (full-width digits too)."""
    return identity.ID_NUMBER_RUN.search(unicodedata.normalize("NFKC", text)) is not None


def is_receipt(text: str) -> bool:
    return RECEIPT.fullmatch(text) is not None


def _text(values: Mapping[str, str], name: str, label: str, longest: int, required: bool,
          problems: list[Problem]) -> str | None:
    value = (values.get(name) or "").strip()
    if not value:
        if required:
            problems.append(Problem(name, "required", f"请填写{label}"))
        return None
    if len(value) > longest:
        problems.append(Problem(name, "too_long", f"{label}最多 {longest} 个字，现有 {len(value)} 个字"))
    elif _CONTROL.search(value):
        problems.append(Problem(name, "control_character", f"{label}含有不可见的控制字符，请删除后重新填写"))
    elif holds_id_number(value):
        problems.append(Problem(name, "id_number", f"请勿在{label}中填写身份证号码：该内容将长期保存并公开处理结果"))
    return value


def _subject(values: Mapping[str, str], problems: list[Problem]) -> dict[str, str] | None:
    id_type = values.get("id_type", "")
    if id_type not in ID_TYPES:
        problems.append(Problem("id_type", "required", "请选择主体标识类型：统一社会信用代码或居民身份证号码"))
        return None
    raw = (values.get("subject_id") or "").strip()
    if not raw:
        problems.append(Problem("subject_id", "required", f"请填写{ID_TYPES[id_type]}"))
        return None
    try:
        ident = submissions.check_subject({"id": raw, "id_type": id_type})
    except Rejection as r:  # the message is the identity check's own (Chinese first); never the number itself
        problems.append(Problem("subject_id", r.code, f"{ID_TYPES[id_type]}有误：{identity.mask_id_numbers(r.message)}"))
        return None
    return {"id": ident.normalised, "id_type": id_type}


def _record_id(values: Mapping[str, str], problems: list[Problem]) -> str | None:
    value = (values.get("record") or "").strip()
    if not value:
        problems.append(Problem("record", "required", "请从信用主体的公示页面选择要提出的记录（记录编号不能为空）"))
        return None
    try:
        return check_event_id(value, field="record")
    except Rejection:
        problems.append(Problem("record", "record.malformed", "记录编号格式有误，请从信用主体的公示页面进入本表单"))
        return None


def _phone(values: Mapping[str, str], problems: list[Problem]) -> str | None:
    value = re.sub(r"[\s()（）]", "", values.get("contact_phone") or "")
    if not value:
        problems.append(Problem("contact_phone", "required", "请填写联系电话"))
        return None
    if not PHONE.fullmatch(value):
        problems.append(Problem("contact_phone", "phone.malformed",
                                "联系电话格式有误：请填写 11 位手机号码，或带区号的固定电话（如 0374-1234567）"))
        return None
    return value


def _date(values: Mapping[str, str], name: str, label: str, today: date, problems: list[Problem]) -> date | None:
    value = (values.get(name) or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        problems.append(Problem(name, "date.malformed", f"{label}格式有误，请按 年-月-日 填写（如 2026-03-20）"))
        return None
    if day > today:
        problems.append(Problem(name, "date.future", f"{label}不能晚于今天（{today}）"))
    return day


def record_of_form(form: Form, values: Mapping[str, str], receipt: str, today: date,
                   now: datetime) -> dict[str, Any]:
    """The family record of a submitted form (the envelope names the public and the receipt number as
    its event id; the day received is today), or Invalid listing every problem of the form."""
    problems: list[Problem] = []
    subject = _subject(values, problems)
    texts = {name: _text(values, name, label, longest, required, problems)
             for name, label, longest, required in (*COMMON_TEXTS, *form.texts)}
    target = _record_id(values, problems)
    phone = _phone(values, problems)
    body: dict[str, Any] = {}
    if form is OBJECTION:
        grounds = values.get("grounds", "")
        if grounds not in GROUNDS:
            problems.append(Problem("grounds", "required", "请选择异议类型"))
        body = {"grounds": grounds, "reason": texts["reason"], "evidence": texts["evidence"]}
    else:
        corrected = _date(values, "corrected_on", "纠正日期", today, problems)
        if values.get("commitment") != "yes":
            problems.append(Problem("commitment", "required", "申请信用修复须作出信用承诺，请阅读并勾选承诺"))
        body = {"statement": texts["statement"], "corrected_on": corrected, "commitment": True}
    if problems:
        raise Invalid(problems)
    assert subject is not None and texts["subject_name"] is not None
    envelope = {"event_id": receipt, "event_type": form.family, "schema_version": 1,
                "subject": {**subject, "name": texts["subject_name"]}, "source_department": PUBLIC,
                "valid_from": today, "valid_to": None, "recorded_at": now}
    return {"envelope": envelope, "target_event_id": target, **body, "contact_name": texts["contact_name"],
            "contact_phone": phone, "received_on": today}


# the form field a refusal of the sequencer is about (its Rejection.field), to show it where it belongs
SEQUENCER_FIELDS = {"subject.id": "subject_id", "subject.name": "subject_name", "target_event_id": "record",
                    "received_on": "record", "corrected_on": "corrected_on", "reason": "reason",
                    "statement": "statement", "contact_name": "contact_name", "contact_phone": "contact_phone"}


def problem_of_refusal(reason: Mapping[str, str]) -> Problem:
    """A refusal on credit.outcomes as a problem of the form: the field it names, its Chinese sentence
    (the part before the English in brackets), any ID number masked."""
    message = identity.mask_id_numbers(reason.get("message", ""))
    chinese = message.split(" (", 1)[0].strip() or message
    return Problem(SEQUENCER_FIELDS.get(reason.get("field", ""), "record"), reason.get("code", "rejected"), chinese)
