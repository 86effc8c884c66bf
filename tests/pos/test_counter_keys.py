"""The counter's key hints: keys drawn as keys, each named and explained in Chinese."""

from __future__ import annotations

import re

from tests.helpers.pages import sign_in


def test_the_key_hints_name_the_keys_in_chinese(client, counter):
    sign_in(client, counter.clerk.username)
    page = client.get("/counter").get_data(as_text=True)
    hints = page[page.index('class="hint keys"') :]
    hints = hints[: hints.index("</p>")]
    keys = re.findall(r"<kbd>(.*?)</kbd>", hints)
    assert keys == ["↑", "↓", "+", "−", "删除键", "*3", "回车键", "Esc 键"]
    words = re.sub(r"<[^>]+>", "", hints)
    assert "Delete" not in words and "Enter" not in words
    assert "删掉选中的一行" in words and "清空顾客和购物清单" in words
    ask = page[page.index('class="ask-keys"') :]
    assert re.findall(r"<kbd>(.*?)</kbd>", ask[: ask.index("</p>")]) == ["回车键", "Esc 键"]
