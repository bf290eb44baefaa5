"""Where a product comes from: copy may name a place of origin only if the product's data does.
Small models invent origins ("manufactured in Europe"; "来自广东潮州凤凰山，产自福建省"), and a
false origin is a false claim about the goods."""

from __future__ import annotations

import re

from ..i18n import gettext_noop
from .flags import WARNING, Flag, _flag
from .matching import _in_facts

# China's provinces, municipalities and regions, and the countries and regions goods in a shop
# are most often said to come from.
ZH_PLACES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
    "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港",
    "澳门",
    "日本", "韩国", "法国", "意大利", "德国", "英国", "美国", "瑞典", "丹麦", "挪威", "芬兰",
    "西班牙", "葡萄牙", "瑞士", "荷兰", "比利时", "澳大利亚", "新西兰", "泰国", "越南", "印度",
    "斯里兰卡", "欧洲",
)
_ZH_PLACE_RE = re.compile("|".join(sorted(ZH_PLACES, key=len, reverse=True)))
# English copy names an origin after a verb of making or sourcing: "made in Portugal",
# "sourced from the Yunnan highlands". The place is the capitalised words that follow. Not
# "built": "built in Bluetooth" is a feature, not a place.
_EN_ORIGIN_RE = re.compile(
    r"\b(?i:made|manufactured|produced|crafted|handmade|hand-made|sourced|imported|grown|"
    r"harvested|woven|forged|fired|printed)\s+(?:in|from)\s+(?:the\s+)?"
    r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+)?)"
)


def _check_places(text: str, blob: str, zh: bool) -> list[Flag]:
    flags = []
    if zh:
        found = [(m.start(), m.end(), m.group(0)) for m in _ZH_PLACE_RE.finditer(text)]
    else:
        found = [(m.start(1), m.end(1), m.group(1)) for m in _EN_ORIGIN_RE.finditer(text)]
    for start, end, place in found:
        if _in_facts(place, blob) or (not zh and _in_facts(place.split()[0], blob)):
            continue
        flags.append(_flag(
            "ungrounded_origin", WARNING,
            gettext_noop('The place "%(place)s" is not in the product data; check that the '
                         "product comes from there."),
            start, end, place=place,
        ))
    return flags
