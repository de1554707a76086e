"""A realistic demo workload for Xuchang: valid credit codes and ID numbers, real-looking decisions.

Deterministic for a given seed, so the demo, the tests and the benchmarks see the same data.
"""

from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from ops.root import CLOCK  # the sequencer's clock: the same China Standard Time today

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
XUCHANG_DIVISIONS = ["411002", "411003", "411024", "411025", "411081", "411082"]
TRADE_NAMES = ["瑞祥", "恒通", "鑫源", "华安", "豫发", "金穗", "宏达", "中原", "许都", "钧瓷", "龙腾", "德丰"]
TRADES = ["食品有限公司", "建筑工程有限公司", "商贸有限公司", "机械制造有限公司", "物流有限公司", "发制品有限公司",
          "环保科技有限公司", "医药连锁有限公司"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞"]

def _with_check(code17: str) -> str:
    return code17 + stdnum_uscc.calc_check_digit(code17)


# Illustrative codes of the authorities (government organs, prefix 11), with correct check characters.
PENALTY_DEPARTMENTS = {
    "xc-samr": ("许昌市市场监督管理局", _with_check("11411000MB179633" + "8")),
    "xc-eco-env": ("许昌市生态环境局", _with_check("11411000MB179555" + "6")),
    "xc-tax": ("国家税务总局许昌市税务局", _with_check("11411000MB0Y4778" + "1")),
}
# The other source departments of departments.v2 that decide penalties (docs/domain-notes.md §3.5):
# name, the abbreviation of their decision numbers, and a violation typical of each. Illustrative
# authority codes (prefix 11, division 411000 许昌市), built with correct check characters.
SOURCE_DEPARTMENTS: dict[str, tuple[str, str, tuple[str, str, list[str], str]]] = {
    "xc-hrss": ("许昌市人力资源和社会保障局", "许人社罚", ("拒不支付劳动报酬", "《保障农民工工资支付条例》第五十四条", ["罚款"], "general")),
    "xc-finance": ("许昌市财政局", "许财罚", ("政府采购中提供虚假材料", "《中华人民共和国政府采购法》第七十七条", ["罚款"], "serious")),
    "xc-housing": ("许昌市住房和城乡建设局", "许建罚", ("未取得施工许可证擅自施工", "《中华人民共和国建筑法》第六十四条", ["罚款"], "general")),
    "xc-transport": ("许昌市交通运输局", "许交罚", ("未取得道路运输经营许可擅自从事道路运输经营", "《中华人民共和国道路运输条例》第六十三条", ["没收违法所得", "罚款"], "general")),
    "xc-education": ("许昌市教育局", "许教罚", ("擅自举办民办学校", "《中华人民共和国民办教育促进法》第六十四条", ["警告"], "minor")),
    "xc-health": ("许昌市卫生健康委员会", "许卫罚", ("未取得医疗机构执业许可证擅自执业", "《医疗机构管理条例》第四十三条", ["没收违法所得", "罚款"], "serious")),
    "xc-civil-affairs": ("许昌市民政局", "许民罚", ("社会团体未按规定接受年度检查", "《社会团体登记管理条例》第三十条", ["警告"], "minor")),
    "xc-public-security": ("许昌市公安局", "许公罚", ("旅馆未按规定登记住宿旅客信息", "《中华人民共和国治安管理处罚法》第五十六条", ["罚款"], "minor")),
    "xc-emergency": ("许昌市应急管理局", "许应急罚", ("未按规定对从业人员进行安全生产教育和培训", "《中华人民共和国安全生产法》第九十七条", ["罚款"], "general")),
    "xc-agriculture": ("许昌市农业农村局", "许农罚", ("经营假种子", "《中华人民共和国种子法》第七十四条", ["没收违法所得", "罚款"], "serious")),
    "xc-culture-tourism": ("许昌市文化广电和旅游局", "许文旅罚", ("旅行社未与旅游者签订旅游合同", "《中华人民共和国旅游法》第一百条", ["罚款"], "general")),
    "xc-natural-resources": ("许昌市自然资源和规划局", "许自然资罚", ("未经批准非法占用土地", "《中华人民共和国土地管理法》第七十七条", ["罚款"], "serious")),
    "xc-medical-insurance": ("许昌市医疗保障局", "许医保罚", ("定点医药机构串换药品骗取医保基金", "《医疗保障基金使用监督管理条例》第四十条", ["罚款"], "serious")),
    "xc-water": ("许昌市水利局", "许水罚", ("未经批准擅自取水", "《中华人民共和国水法》第六十九条", ["罚款"], "general")),
    "xc-commerce": ("许昌市商务局", "许商罚", ("发卡企业未按规定备案单用途商业预付卡", "《单用途商业预付卡管理办法（试行）》第三十六条", ["警告", "罚款"], "minor")),
    "xc-urban-management": ("许昌市城市管理局", "许城管罚", ("擅自占用城市道路摆摊设点", "《城市市容和环境卫生管理条例》第三十六条", ["罚款"], "minor")),
    "xc-forestry": ("许昌市林业局", "许林罚", ("滥伐林木", "《中华人民共和国森林法》第七十六条", ["罚款"], "general")),
    "xc-statistics": ("许昌市统计局", "许统罚", ("提供不真实统计资料", "《中华人民共和国统计法》第四十一条", ["警告", "罚款"], "general")),
    "xc-justice": ("许昌市司法局", "许司罚", ("律师事务所未按规定办理变更登记", "《中华人民共和国律师法》第五十条", ["警告"], "minor")),
    "xc-pbc": ("中国人民银行许昌市分行", "许银罚", ("未按规定履行客户身份识别义务", "《中华人民共和国反洗钱法》第三十二条", ["罚款"], "general")),
}
VIOLATIONS = [
    ("销售不符合食品安全标准的食品", "《中华人民共和国食品安全法》第一百二十四条", ["警告", "罚款"], "general"),
    ("超标排放大气污染物", "《中华人民共和国大气污染防治法》第九十九条", ["罚款"], "general"),
    ("未按规定办理纳税申报", "《中华人民共和国税收征收管理法》第六十二条", ["罚款"], "general"),
    # severity as the categories give it (docs/domain-notes.md §14.1): a revocation is serious
    ("生产、销售国家明令淘汰的产品，情节严重", "《中华人民共和国产品质量法》第五十一条", ["没收违法所得", "罚款", "吊销许可证件"],
     "serious"),
    ("虚假广告宣传", "《中华人民共和国广告法》第五十五条", ["罚款"], "general"),
]


def make_uscc(rng: random.Random, prefix: str = "91", division: str | None = None) -> str:
    body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    code17 = prefix + (division or rng.choice(XUCHANG_DIVISIONS)) + body + _org_check(body)
    return code17 + stdnum_uscc.calc_check_digit(code17)


def _org_check(body: str) -> str:
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    r = (11 - sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True)) % 11) % 11
    return "X" if r == 10 else str(r)


# Every department the demo submits penalties from: the three above (which the benchmarks, the
# fold's golden digest and the tests draw from, so unchanged) and the other source departments.
ALL_PENALTY_DEPARTMENTS = {**PENALTY_DEPARTMENTS, **{
    department: (name, _with_check(f"11411000MB2{i:05d}" + _org_check(f"MB2{i:05d}")))
    for i, (department, (name, _, _)) in enumerate(SOURCE_DEPARTMENTS.items(), start=1)
}}


def make_ric(rng: random.Random) -> str:
    # born after 1997, when every one of these county codes existed (older codes: docs/domain-notes.md §2.2)
    birth = date(1998, 1, 1) + timedelta(days=rng.randrange(0, 8 * 365))
    first17 = rng.choice(["411002", "411024", "411025", "411081", "411082"]) + birth.strftime("%Y%m%d") + \
        f"{rng.randrange(0, 1000):03d}"
    return first17 + stdnum_ric.calc_check_digit(first17 + "0")  # stdnum drops the last character


@dataclass(frozen=True)
class Subject:
    id: str
    id_type: str
    name: str

    def as_avro(self) -> dict[str, str]:
        return {"id": self.id, "id_type": self.id_type, "name": self.name}


def subjects(rng: random.Random, n: int, persons_share: float = 0.2) -> list[Subject]:
    """`n` distinct subjects: an identifier drawn twice (ID numbers come from about 15 million, so 400
    subjects with 80 persons repeat one in about 5,000 calls) is drawn again."""
    out: list[Subject] = []
    seen: set[str] = set()
    while len(out) < n:
        if rng.random() < persons_share:
            subject = Subject(make_ric(rng), "RIC", rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN))
        else:
            name = "许昌" + rng.choice(TRADE_NAMES) + rng.choice(TRADES)
            prefix = "92" if rng.random() < 0.15 else "91"
            if prefix == "92":
                name = "许昌市魏都区" + rng.choice(TRADE_NAMES) + "商行"
            subject = Subject(make_uscc(rng, prefix), "USCC", name)
        if subject.id not in seen:
            seen.add(subject.id)
            out.append(subject)
    return out


def envelope(event_type: str, subject: Subject, department: str, valid_from: date,
             event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()), "event_type": event_type, "schema_version": 1,
        "subject": subject.as_avro(), "source_department": department, "valid_from": valid_from,
        "valid_to": None, "recorded_at": CLOCK.now(),
    }


def penalty(rng: random.Random, subject: Subject, department: str, seq: int, decided: date | None = None,
            event_id: str | None = None) -> dict[str, Any]:
    authority, authority_code = ALL_PENALTY_DEPARTMENTS[department]
    violation, basis, categories, severity = rng.choice(VIOLATIONS) if department not in SOURCE_DEPARTMENTS else \
        SOURCE_DEPARTMENTS[department][2]
    # most decisions reach the ledger within days (a few late ones fall outside 7 working days)
    decided = decided or (CLOCK.today() - timedelta(days=rng.choice([0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 12, 20])))
    fine_fen = rng.choice([200_000, 500_000, 1_000_000, 3_000_000, 10_000_000]) if "罚款" in categories else None
    abbrev = {"xc-samr": "许市监罚", "xc-eco-env": "许环罚", "xc-tax": "许税罚"}.get(department) or \
        SOURCE_DEPARTMENTS[department][1]
    return {
        "envelope": envelope("AdministrativePenaltyImposed", subject, department, decided, event_id),
        "counterparty_type": "自然人" if subject.id_type == "RIC" else
        ("个体工商户" if subject.id.startswith("92") else "法人及非法人组织"),
        "legal_representative": None if subject.id_type == "RIC" else rng.choice(SURNAMES) + rng.choice(GIVEN),
        "decision_no": f"{abbrev}〔{decided.year}〕{seq}号",
        "violation_type": violation,
        "facts": f"经查，当事人{violation}，事实清楚，证据确凿。",
        "legal_basis": basis,
        "penalty_categories": categories,
        "content": "、".join(categories) + (f"，罚款人民币{fine_fen // 100}元" if fine_fen else ""),
        "fine_fen": fine_fen,
        "confiscation_fen": None,
        "licence_affected": None,
        "severity": severity,
        "decision_date": decided,
        "penalty_valid_until": None,
        "publicity_until": None,
        "authority": authority,
        "authority_code": authority_code,
        "data_source": authority,
        "data_source_code": authority_code,
        "remarks": None,
    }


# --------------------------------------------------------------------------- every event family

COURT = "许昌市中级人民法院"
TAX_AUTHORITY = "国家税务总局许昌市税务局"
HRSS = "许昌市人力资源和社会保障局"
FINANCE = "许昌市财政局"
CREDIT_OFFICE = "许昌市发展和改革委员会（市社会信用体系建设领导小组办公室）"


def _env(event_type: str, subject: Subject, department: str, valid_from: date) -> dict[str, Any]:
    return envelope(event_type, subject, department, valid_from)


def registered(subject: Subject, on: date) -> tuple[str, dict[str, Any]]:
    kind = "individual_business" if subject.id.startswith("92") else "enterprise"
    return "xc-samr", {
        "envelope": _env("EntityRegistered", subject, "xc-samr", on),
        "registration_authority": "许昌市市场监督管理局", "registered_on": on, "entity_kind": kind,
        "legal_representative": None, "registered_capital_fen": 500_000_000, "address": "河南省许昌市魏都区",
    }


def licence_granted(subject: Subject, licence_no: str, on: date) -> tuple[str, dict[str, Any]]:
    authority, code = PENALTY_DEPARTMENTS["xc-samr"]
    return "xc-samr", {
        "envelope": _env("AdministrativeLicenceGranted", subject, "xc-samr", on),
        "counterparty_type": "法人及非法人组织", "legal_representative": None,
        "decision_document_name": "食品经营许可决定书", "decision_no": f"许市监许〔{on.year}〕{licence_no[-4:]}号",
        "licence_category": "普通", "certificate_name": "食品经营许可证", "licence_no": licence_no,
        "content": "预包装食品销售（含冷藏冷冻食品）", "decision_date": on, "valid_from": on,
        "valid_to": date(on.year + 5, on.month, min(on.day, 28)), "authority": authority, "authority_code": code,
        "status": "valid", "data_source": authority, "data_source_code": code, "remarks": None,
    }


def licence_changed(subject: Subject, licence_no: str, on: date) -> tuple[str, dict[str, Any]]:
    authority, code = PENALTY_DEPARTMENTS["xc-samr"]
    return "xc-samr", {
        "envelope": _env("AdministrativeLicenceChanged", subject, "xc-samr", on),
        "licence_no": licence_no, "reason": "经营项目变更", "counterparty_type": "法人及非法人组织",
        "decision_document_name": "食品经营许可变更决定书", "decision_no": f"许市监许变〔{on.year}〕{licence_no[-4:]}号",
        "decision_date": on, "legal_representative": None, "licence_category": None, "certificate_name": None,
        "content": "预包装食品销售（含冷藏冷冻食品）、散装食品销售", "valid_from": None, "valid_to": None, "status": None,
        "authority": authority, "authority_code": code, "data_source": authority, "data_source_code": code,
        "remarks": None,
    }


def licence_revoked(subject: Subject, licence_no: str, on: date) -> tuple[str, dict[str, Any]]:
    authority, code = PENALTY_DEPARTMENTS["xc-samr"]
    return "xc-samr", {
        "envelope": _env("AdministrativeLicenceRevoked", subject, "xc-samr", on),
        "licence_no": licence_no, "reason": "以欺骗手段取得许可", "counterparty_type": "法人及非法人组织",
        "legal_representative": None, "decision_document_name": "撤销行政许可决定书",
        "decision_no": f"许市监撤〔{on.year}〕{licence_no[-4:]}号", "decision_date": on, "authority": authority,
        "authority_code": code, "data_source": authority, "data_source_code": code, "remarks": None,
    }


def penalty_revoked(subject: Subject, decision_no: str, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-samr", {
        "envelope": _env("AdministrativePenaltyRevoked", subject, "xc-samr", on),
        "penalty_decision_no": decision_no, "revocation_reason": "行政复议撤销",
        "revocation_decision_no": f"许政复决〔{on.year}〕{zlib.crc32(decision_no.encode()) % 1000}号",
        "revoking_body": "许昌市人民政府", "decision_date": on,
    }


def debtor_listed(subject: Subject, case_no: str, on: date, ground: int = 4) -> tuple[str, dict[str, Any]]:
    return "xc-court", {
        "envelope": _env("DishonestDebtorListed", subject, "xc-court", on),
        "case_no": case_no, "court": COURT, "enforcement_basis_no": case_no.replace("执", "民初"),
        "enforcement_basis_unit": COURT, "filing_date": on - timedelta(days=90),
        "duty": "于判决生效之日起十日内支付货款人民币356000元及利息。", "performance": "not_performed",
        "performed_part": None, "unperformed_part": "356000元及利息", "ground": ground, "extension_months": None,
        "dishonest_conduct": "有履行能力而拒不履行生效法律文书确定义务" if ground == 1 else "违反财产报告制度",
        "legal_representative": None, "listed_on": on,
    }


def debtor_delisted(subject: Subject, case_no: str, on: date, reason: str = "performed") -> tuple[str, dict[str, Any]]:
    return "xc-court", {
        "envelope": _env("DishonestDebtorDelisted", subject, "xc-court", on),
        "case_no": case_no, "delisting_reason": reason, "corrected_on": on if reason == "performed" else None,
        "delisted_on": on,
    }


def tax_listed(subject: Subject, case_no: str, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-tax", {
        "envelope": _env("MajorTaxViolationListed", subject, "xc-tax", on),
        "case_no": case_no, "violation": "虚开增值税专用发票", "amount_evaded_fen": 120_000_000,
        "determination_date": on - timedelta(days=20), "listed_on": on, "tax_authority": TAX_AUTHORITY,
    }


def tax_delisted(subject: Subject, case_no: str, on: date, paid_on: date) -> tuple[str, dict[str, Any]]:
    return "xc-tax", {
        "envelope": _env("MajorTaxViolationDelisted", subject, "xc-tax", on),
        "case_no": case_no, "reason": "paid_in_full", "paid_on": paid_on, "delisted_on": on,
    }


def tax_rated(subject: Subject, year: int, level: str, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-tax", {
        "envelope": _env("TaxCreditRated", subject, "xc-tax", on),
        "year": year, "level": level, "score": {"A": 95, "B": 80, "M": 75, "C": 55, "D": 30}[level], "rated_on": on,
    }


def wage_listed(subject: Subject, decision_no: str, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-hrss", {
        "envelope": _env("WageArrearsListed", subject, "xc-hrss", on),
        "decision_no": decision_no, "arrears_fen": 86_500_000, "workers_affected": 37, "listed_on": on,
        "responsible_persons": [{"name": "王强", "role": "法定代表人"}],
    }


def wage_delisted(subject: Subject, decision_no: str, on: date, corrected_on: date) -> tuple[str, dict[str, Any]]:
    return "xc-hrss", {
        "envelope": _env("WageArrearsDelisted", subject, "xc-hrss", on),
        "decision_no": decision_no, "reason": "early_removal_after_correction", "corrected_on": corrected_on,
        "delisted_on": on,
    }


def procurement_ban(subject: Subject, decision_no: str, on: date, months: int = 24) -> tuple[str, dict[str, Any]]:
    return "xc-finance", {
        "envelope": _env("ProcurementBanImposed", subject, "xc-finance", on),
        "decision_no": decision_no, "ban_months": months, "violation": "提供虚假材料谋取中标",
        "contract_amount_fen": 2_350_000_000, "fine_fen": 17_625_000, "decision_date": on, "authority": FINANCE,
    }


def repaired(subject: Subject, target_kind: str, target_ref: str, on: date,
             corrected_on: date | None = None) -> tuple[str, dict[str, Any]]:
    return "xc-credit-office", {
        "envelope": _env("CreditRepaired", subject, "xc-credit-office", on),
        "target_kind": target_kind, "target_ref": target_ref, "decision_date": on, "corrected_on": corrected_on,
        "repair_no": f"许信修〔{on.year}〕{zlib.crc32(target_ref.encode()) % 1000}号", "authority": CREDIT_OFFICE,
    }


def honour(subject: Subject, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-credit-office", {
        "envelope": _env("HonourAwarded", subject, "xc-credit-office", on),
        "honour": "守合同重信用企业", "list_kind": "red", "awarding_body": "许昌市人民政府", "awarded_on": on,
        "valid_until": date(on.year + 2, on.month, min(on.day, 28)), "document_no": f"许政〔{on.year}〕18号",
    }


def commitment(subject: Subject, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-credit-office", {
        "envelope": _env("CreditCommitmentMade", subject, "xc-credit-office", on),
        "commitment_type": "审批替代型", "content": "本单位承诺所提交材料真实有效，如有虚假自愿接受惩戒。",
        "made_on": on, "document_no": None,
    }


def feedback(subject: Subject, trigger_event_id: str, on: date) -> tuple[str, dict[str, Any]]:
    return "sector-procurement", {
        "envelope": _env("PunishmentFeedbackReported", subject, "sector-procurement", on),
        "measure_code": "bar-government-procurement", "action": "applied", "trigger_event_id": trigger_event_id,
        "business_ref": f"XCZC-{on.year}-{zlib.crc32(trigger_event_id.encode()) % 10000:04d}", "acted_on": on, "note": None,
    }


def expired(subject: Subject, list_kind: str, target_ref: str, target_event_id: str,
            on: date) -> tuple[str, dict[str, Any]]:
    """The expiry exactly as the scheduler submits it (same event id, same bytes, the newest version of
    the publication periods as its rule version), so that whichever of the two reaches the sequencer
    second is a duplicate."""
    from consumers.scheduler import core as scheduler

    due = scheduler.Due("", list_kind, target_ref, target_event_id, on, 0, 0)
    return scheduler.DEPARTMENT, scheduler.expiry_record(due, subject.as_avro(), _newest_version("publication_periods"))


@cache
def _book() -> Any:
    from ledger.rules import loader

    return loader.load()


def _newest_version(name: str) -> int:
    """The newest version of a rules file, as the scheduler names it on the expiries it submits."""
    return _book().stamp[name]


def key_person_registered(subject: Subject, category: str, on: date) -> tuple[str, dict[str, Any]]:
    """A natural person reported by the register of a key-person group (docs/domain-notes.md §12.2)."""
    department = sorted(_book().key_persons.categories[category].registers)[0]
    return department, {
        "envelope": _env("EntityRegistered", subject, department, on),
        "registration_authority": _book().departments.departments[department].name, "registered_on": on,
        "entity_kind": "natural_person", "legal_representative": None, "registered_capital_fen": None,
        "address": None, "key_person_categories": [category],
    }


def release_approved(number: int, period: str, entries: list[dict[str, Any]], approved_on: date,
                     corrects: int | None = None, note: str | None = None) -> tuple[str, dict[str, Any]]:
    """The credit office's approval of release ``number`` with these entries (as drafted: ISO dates),
    drawn the day after the period, reviewed and approved on ``approved_on``."""
    from ledger.domain import releases
    from projections.releases import content

    p = releases.period_of(period)
    body = {"period": p.text, "title": content.title_of(_book(), p, corrects), "corrects": corrects,
            "entries": entries}
    drawn = datetime.combine(p.end + timedelta(days=1), time(2), tzinfo=UTC)
    return content.approval_record(
        _book(), releases.content_of(body), release_no=number, drawn_at=drawn, drawn_positions={0: 0},
        drafted_by="李明", reviewed_by="王芳", reviewed_on=approved_on, approved_by="张强", approved_on=approved_on,
        recorded_at=CLOCK.now(), correction_note=note)


Phase = list[tuple[str, dict[str, Any]]]


def life(rng: random.Random, subject: Subject, n: int) -> list[Phase]:
    """A plausible history of one organisation using every event family, all valid against the rules
    in force (dates chosen so that repairs and expiries are allowed by 2026-11-27). Two phases:
    what starts (listings, penalties, licences) and what ends or refers to it; within a phase the
    events do not depend on each other, except through one department (whose producer keeps order)."""
    d = date
    tag = f"{n:05d}"
    penalty_a = workload_penalty(rng, subject, "xc-samr", f"许市监罚〔2025〕A{tag}号", d(2025, 3, 3), "general")
    penalty_b = workload_penalty(rng, subject, "xc-samr", f"许市监罚〔2025〕B{tag}号", d(2025, 6, 2), "general")
    penalty_c = workload_penalty(rng, subject, "xc-samr", f"许市监罚〔2026〕C{tag}号", d(2026, 9, 1), "general")
    debtor = debtor_listed(subject, f"（2024）豫10执{tag}号", d(2024, 5, 10), ground=4)
    debtor_until_paid = debtor_listed(subject, f"（2025）豫10执{tag}号", d(2025, 2, 10), ground=1)
    events = [
        registered(subject, d(2019, 4, 1)),
        licence_granted(subject, f"JY141100{tag}", d(2023, 3, 1)),
        licence_changed(subject, f"JY141100{tag}", d(2024, 2, 5)),
        tax_rated(subject, 2023, "B", d(2024, 4, 20)),
        penalty_a, penalty_b, penalty_c,
        debtor, debtor_until_paid,
        tax_listed(subject, f"许税稽罚〔2025〕{tag}号", d(2025, 1, 15)),
        wage_listed(subject, f"许人社欠薪〔2024〕{tag}号", d(2024, 12, 2)),
        procurement_ban(subject, f"许财采罚〔2026〕{tag}号", d(2026, 2, 2)),
        commitment(subject, d(2025, 7, 1)),
    ]
    endings = [
        repaired(subject, "administrative_penalty", penalty_b[1]["decision_no"], d(2025, 10, 10)),
        expired(subject, "administrative_penalty_publication", penalty_a[1]["decision_no"],
                penalty_a[1]["envelope"]["event_id"], d(2026, 3, 4)),
        penalty_revoked(subject, penalty_c[1]["decision_no"], d(2026, 10, 9)),
        tax_delisted(subject, f"许税稽罚〔2025〕{tag}号", d(2025, 8, 1), paid_on=d(2025, 6, 1)),
        wage_delisted(subject, f"许人社欠薪〔2024〕{tag}号", d(2025, 10, 1), corrected_on=d(2025, 3, 3)),
        feedback(subject, debtor[1]["envelope"]["event_id"], d(2024, 6, 3)),
        expired(subject, "dishonest_debtor", debtor[1]["case_no"], debtor[1]["envelope"]["event_id"],
                d(2026, 5, 11)),
        licence_revoked(subject, f"JY141100{tag}", d(2026, 1, 12)),
        debtor_delisted(subject, debtor_until_paid[1]["case_no"], d(2025, 9, 1), reason="performed"),
    ]
    return [events, endings]


def workload_penalty(rng: random.Random, subject: Subject, department: str, decision_no: str, decided: date,
                     severity: str) -> tuple[str, dict[str, Any]]:
    rec = penalty(rng, subject, department, 0, decided=decided)
    rec["decision_no"], rec["severity"] = decision_no, severity
    # categories that give this class (docs/domain-notes.md §14.1; 警告 is minor from Order 36, 2026-04-01)
    rec["penalty_categories"] = [CATEGORY_OF[severity]]
    rec["content"] = CATEGORY_OF[severity] + (f"，罚款人民币{rec['fine_fen'] // 100}元" if rec["fine_fen"] else "")
    if severity != "general":
        rec["content"], rec["fine_fen"] = CATEGORY_OF[severity], None
    return department, rec


def honour_revoked(subject: Subject, document_no: str, on: date) -> tuple[str, dict[str, Any]]:
    return "xc-credit-office", {
        "envelope": _env("HonourRevoked", subject, "xc-credit-office", on),
        "document_no": document_no, "revoked_on": on, "decision_no": f"许信撤〔{on.year}〕{zlib.crc32(document_no.encode()) % 100}号",
        "reason": "未按规定持续履行守信承诺，经认定单位复核撤销（河南省社会信用条例第三十七条）",
    }


def honour_expired(subject: Subject, award: tuple[str, dict[str, Any]], on: date) -> tuple[str, dict[str, Any]]:
    """The honour's expiry exactly as the scheduler submits it (same event id, same bytes)."""
    from consumers.scheduler import core as scheduler

    rec = award[1]
    due = scheduler.Due("", scheduler.RED, rec["document_no"], rec["envelope"]["event_id"], on, 0, 0)
    return scheduler.DEPARTMENT, scheduler.expiry_record(due, subject.as_avro(), _newest_version("punishment_catalogue"))


def honour_history(subject: Subject) -> list[Phase]:
    """Red-list honours that end: one whose two years ran out (expired by the scheduler) and one the
    awarding department revoked. Two phases, like life(): the awards, then their ends."""
    old = ("xc-credit-office", {
        "envelope": _env("HonourAwarded", subject, "xc-credit-office", date(2023, 3, 1)),
        "honour": "守合同重信用企业", "list_kind": "red", "awarding_body": "许昌市人民政府", "awarded_on": date(2023, 3, 1),
        "valid_until": date(2025, 2, 28), "document_no": "许政〔2023〕7号"})
    model = ("xc-credit-office", {
        "envelope": _env("HonourAwarded", subject, "xc-credit-office", date(2025, 1, 10)),
        "honour": "诚信示范企业", "list_kind": "red", "awarding_body": "许昌市社会信用体系建设领导小组", "awarded_on":
            date(2025, 1, 10), "valid_until": None, "document_no": "许信办〔2025〕2号"})
    return [[old, model], [honour_expired(subject, old, date(2025, 3, 1)),
                           honour_revoked(subject, "许信办〔2025〕2号", date(2025, 12, 1))]]


CATEGORY_OF = {"minor": "警告", "general": "罚款", "serious": "吊销许可证件"}


def honoured_life(subject: Subject, today: date | None = None) -> Phase:
    """A clean organisation: registered, rated A, honoured (red list), with a commitment. With
    `today`, the rating, the honour and the commitment are recent (the honour 30 days before today),
    so the honour is in force whatever the date; without it, fixed dates of 2026."""
    if today is None:
        rated, honoured, committed = date(2026, 4, 15), date(2026, 5, 20), date(2026, 6, 1)
    else:
        rated, honoured, committed = (today - timedelta(days=45), today - timedelta(days=30),
                                      today - timedelta(days=10))
    return [registered(subject, date(2018, 9, 1)), tax_rated(subject, rated.year - 1, "A", rated),
            honour(subject, honoured), commitment(subject, committed)]


def every_family(rng: random.Random, subject: Subject, n: int) -> list[Phase]:
    """One organisation with an event of every family (life() and honour_history()), in an order the
    rules accept: its honours awarded, the older one expired, then its life (whose black listings
    suspend the other honour), then the endings and the suspended honour's revocation."""
    events, endings = life(rng, subject, n)
    awards, (expiry, revocation) = honour_history(subject)
    return [awards, [expiry], events, endings + [revocation]]


def every_family_on_display(rng: random.Random, subject: Subject, n: int, today: date) -> list[Phase]:
    """every_family(), then a penalty and a licence still on public display on `today` (the licence
    changed since): what a credit report of the organisation shows in every section."""
    recent = workload_penalty(rng, subject, "xc-samr", f"许市监罚〔{today.year}〕R{n:05d}号", today - timedelta(days=3),
                              "general")
    licence_no = f"JY2411{n:06d}"
    return every_family(rng, subject, n) + [[recent, licence_granted(subject, licence_no, today - timedelta(days=20))],
                                             [licence_changed(subject, licence_no, today - timedelta(days=6))]]
