"""A realistic demo workload for Xuchang: valid credit codes and ID numbers, real-looking decisions.

Deterministic for a given seed, so the demo, the tests and the benchmarks see the same data.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

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
VIOLATIONS = [
    ("销售不符合食品安全标准的食品", "《中华人民共和国食品安全法》第一百二十四条", ["警告", "罚款"], "general"),
    ("超标排放大气污染物", "《中华人民共和国大气污染防治法》第九十九条", ["罚款"], "general"),
    ("未按规定办理纳税申报", "《中华人民共和国税收征收管理法》第六十二条", ["罚款"], "minor"),
    ("无证生产经营", "《无证无照经营查处办法》第十三条", ["没收违法所得", "罚款"], "serious"),
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


def make_ric(rng: random.Random) -> str:
    # born after 1997, when every one of these county codes existed (older codes: domain.md 2.2)
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
    out = []
    for _ in range(n):
        if rng.random() < persons_share:
            out.append(Subject(make_ric(rng), "RIC", rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)))
        else:
            name = "许昌" + rng.choice(TRADE_NAMES) + rng.choice(TRADES)
            prefix = "92" if rng.random() < 0.15 else "91"
            if prefix == "92":
                name = "许昌市魏都区" + rng.choice(TRADE_NAMES) + "商行"
            out.append(Subject(make_uscc(rng, prefix), "USCC", name))
    return out


def envelope(event_type: str, subject: Subject, department: str, valid_from: date,
             event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()), "event_type": event_type, "schema_version": 1,
        "subject": subject.as_avro(), "source_department": department, "valid_from": valid_from,
        "valid_to": None, "recorded_at": datetime.now(UTC),
    }


def penalty(rng: random.Random, subject: Subject, department: str, seq: int, decided: date | None = None,
            event_id: str | None = None) -> dict[str, Any]:
    authority, authority_code = PENALTY_DEPARTMENTS[department]
    violation, basis, categories, severity = rng.choice(VIOLATIONS)
    decided = decided or (date(2026, 11, 20) - timedelta(days=rng.randrange(0, 300)))
    fine_fen = rng.choice([200_000, 500_000, 1_000_000, 3_000_000, 10_000_000]) if "罚款" in categories else None
    abbrev = {"xc-samr": "许市监罚", "xc-eco-env": "许环罚", "xc-tax": "许税罚"}[department]
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
