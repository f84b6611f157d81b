"""Text handling for the query index: normalisation, jieba segmentation, n-grams, exact ids.

Everything here is shared by index building and query parsing so that a record and a
question are cut the same way. jieba is imported and its dictionary loaded once per
process, lazily, into a private ``jieba.Tokenizer`` (so words we add do not leak into
other users of ``jieba.dt``); the dictionary is read from jieba's marshal cache in the
temp directory, which jieba writes on the first load.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

# Longest raw input we look at: citizens' questions are short, and anything longer is
# noise that must not cost time (WeChat allows 2 048 characters per text message).
MAX_RAW_CHARS = 256
# Longest in-vocabulary sub-word emitted from inside a long token.
MAX_SUBWORD = 8
_MEMO_LIMIT = 200_000

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN_RE = re.compile(f"[0-9a-z{_CJK}]+")
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_CJK_CHAR_RE = re.compile(f"[{_CJK}]")
_SPACE_RE = re.compile(r"\s+")
# Characters outside the common ranges, which normalize() checks one by one.
_ODD_CHAR_RE = re.compile(f"[^\\x20-\\x7e\\u3000-\\u303f\\uff01-\\uff60\\u2010-\\u2027{_CJK}]")
# Brackets and separators that people write in many ways inside identifiers.
_ID_NOISE_RE = re.compile(
    r"[\s\[\]()（）〔〕【】［］{}<>《》「」〖〗﹝﹞'\"·.,，。:：、_\-—–~～/\\]+"
)
_DIGITS_RE = re.compile(r"\d{3,}")
_DIGIT_SEP_RE = re.compile(r"(?<=\d)[\s\-—–]+(?=\d)")
_WENHAO_RE = re.compile(r"((?:19|20)\d{2})年?第?(\d{1,4})号")

# Function words and particles that carry no topic (dropped from records and questions).
STOP_WORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嘛 啦 哈 么 嗯 噢 诶 哎 呗 咧 滴 地 得 着 过 之 其 而 且 与 及 或
    和 跟 同 对 把 被 让 给 从 向 往 于 以 为 因 由 在 是 有 就 都 也 又 还 再 才 只 很 太 更
    最 好 不 没 没有 这 那 这个 那个 这些 那些 这里 那里 这样 那样 个 些 一 一个 一下 一些
    我 你 您 他 她 它 我们 你们 他们 咱 咱们 自己 人家 大家 请 请问 问 问下 问一下 想 想问
    想知道 我想 我要 要 需要 能 能不能 可以 可不可以 可否 会 会不会 是否 是不是 有没有 要不要
    什么 啥 怎么 怎样 怎么样 如何 哪 哪个 哪些 为什么 为何 多少 几 谁 吗 么 嘛 呢 你好 您好
    谢谢 麻烦 帮 帮忙 帮我 一直 已经 现在 然后 但是 可是 所以 如果 因为 还是 或者 以及 等 等等
    等于 里 上 下 中 内 外 前 后 时 时候 啊 去 来 到 用 拿 做 弄 搞 办 该 应该 得 可 能否
    """.split()
)

# Words that are on topic only together with others; they count little on their own.
WEAK_WORDS = frozenset(
    """
    今天 明天 昨天 后天 最近 近期 目前 今年 明年 去年 本周 下周 周末 早上 晚上 上午 下午 点 号
    东西 事情 事 问题 情况 方面 相关 有关 关于 一般 具体 正常 可能 应该 知道 了解 告诉 看看
    说 讲 找 查 查询 咨询 打 开 走 坐 用 买 交 办理 泉州 泉州市 市里 我市 本市 市民 群众
    """.split()
)

# Colloquial phrases: (phrases, terms they stand for, record kinds they point to).
# The phrase is removed from the question and its terms join as optional terms.
QUESTION_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("打什么电话", "打哪个电话", "电话是多少", "电话多少", "号码是多少", "号码多少", "打几号",
      "找谁", "联系方式", "怎么联系", "打电话"), ("电话", "热线"), ("hotline",)),
    (("多少钱", "收费吗", "收不收费", "要钱吗", "要不要钱", "贵不贵", "费用多少", "交多少"),
     ("收费", "费用"), ("guide", "faq")),
    (("在哪里", "在哪儿", "在哪", "去哪里", "去哪儿", "去哪", "到哪里", "到哪", "哪里", "哪儿",
      "什么地方", "啥地方"), ("地址", "窗口", "地点", "办理"), ()),
    (("几点上班", "几点下班", "几点开门", "几点", "上班时间", "什么时候上班", "营业时间"),
     ("时间",), ()),
    (("带什么", "要什么材料", "需要什么材料", "什么材料", "要准备什么", "准备什么", "需要什么",
      "要什么"), ("材料",), ("guide",)),
    (("怎么办理", "如何办理", "怎样办理", "怎么申请", "如何申请", "怎么办", "咋办", "怎么弄",
      "怎么搞", "怎么处理", "手续"), ("办理", "申请", "流程"), ("guide", "faq")),
    (("多久", "几天", "多长时间", "要多长时间", "多少天"), ("时限", "工作日"), ("guide",)),
    (("开不开", "还开吗", "开吗", "停不停", "停了吗", "停没停", "有没有停", "通不通", "能不能走",
      "能走吗", "还有没有", "正常吗"), ("停航", "停运", "恢复", "运行", "调整"), ("notice",)),
    (("什么时候通车", "什么时候建好", "什么时候完工", "啥时候通", "建得怎么样", "建到哪",
      "修好了没", "修到哪", "进展", "进度"), ("进展", "通车", "完工", "建设"), ("project",)),
    (("什么规定", "有什么政策", "政策解读", "文件"), ("规定", "政策", "办法"), ("policy",)),
)

# Pure filler that is removed before segmentation (longest first when applied).
FILLERS: tuple[str, ...] = (
    "我想问一下", "想问一下", "麻烦问一下", "请问一下", "我想知道", "我想了解", "想了解一下",
    "请问", "你好", "您好", "我想问", "想问下", "谢谢你", "谢谢", "麻烦你", "麻烦", "帮我查",
    "帮我看", "可以吗", "行不行", "是不是", "有没有", "能不能", "可不可以", "应该",
)

_lock = threading.RLock()
_tokenizer: Any = None
_memo: dict[str, tuple[tuple[str, ...], ...]] = {}


def tokenizer() -> Any:
    """Return the process-wide jieba tokenizer, loading its dictionary on first use."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import jieba  # deferred: importing jieba costs time and sets up logging

                jieba.setLogLevel(logging.WARNING)
                tk = jieba.Tokenizer()
                tk.initialize()
                _tokenizer = tk
    return _tokenizer


def normalize(text: object, limit: int | None = None) -> str:
    """NFKC, lower-case, drop control/format/emoji characters, collapse white space."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if limit is not None:
        text = text[:limit]
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        text = _ODD_CHAR_RE.sub(_drop_odd_char, text)
    return _SPACE_RE.sub(" ", text).strip()


def _drop_odd_char(match: re.Match) -> str:
    """Replace control, format, surrogate and symbol (emoji) characters by a space."""
    ch = match.group()
    cat = unicodedata.category(ch)
    return " " if cat[0] == "C" or cat in ("So", "Sk") else ch


def is_cjk(text: str) -> bool:
    """Whether the string consists of CJK characters only."""
    return bool(text) and _CJK_CHAR_RE.sub("", text) == ""


def add_words(words: Iterable[str]) -> None:
    """Add domain words to the jieba dictionary so that they are cut out whole."""
    tk = tokenizer()
    added = False
    with _lock:
        freq_table = tk.FREQ
        for raw in words:
            for word in _RUN_RE.findall(normalize(raw)):
                if len(word) < 2 or freq_table.get(word):
                    continue
                # Long words: any small frequency beats splitting them; short ones get
                # jieba's own estimate of what keeps them whole.
                freq = 10 if len(word) >= 5 else tk.suggest_freq(word)
                tk.add_word(word, freq)
                added = True
        if added:
            _memo.clear()


def _cut_run(run: str) -> tuple[tuple[str, ...], ...]:
    """Cut one run of word characters into words, each followed by its sub-words."""
    cached = _memo.get(run)
    if cached is not None:
        return cached
    tk = tokenizer()
    freq_table = tk.FREQ
    out: list[tuple[str, ...]] = []
    for tok in tk.cut(run, HMM=False):
        if tok in STOP_WORDS:
            continue
        group = [tok]
        size = len(tok)
        if size >= 3 and not tok.isascii():
            # Search-engine style: also index the dictionary words inside a long word,
            # so "公交卡补办" still matches a question about "补办".
            for i in range(size - 1):
                for j in range(i + 2, min(size, i + MAX_SUBWORD) + 1):
                    sub = tok[i:j]
                    if j - i < size and freq_table.get(sub) and sub not in STOP_WORDS:
                        group.append(sub)
        out.append(tuple(group))
    result = tuple(out)
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[run] = result
    return result


def cut_terms(text: str) -> list[str]:
    """Segment normalised text into index terms (words plus their sub-words)."""
    terms: list[str] = []
    for run in _RUN_RE.findall(text):
        for group in _cut_run(run):
            terms.extend(group)
    return terms


def cut_words(text: str) -> list[tuple[str, ...]]:
    """Segment normalised text into words, each as (word, sub-word, ...)."""
    groups: list[tuple[str, ...]] = []
    for run in _RUN_RE.findall(text):
        groups.extend(_cut_run(run))
    return groups


def cjk_runs(text: str) -> list[str]:
    """Runs of CJK characters in normalised text."""
    return _CJK_RUN_RE.findall(text)


def bigrams(run: str) -> list[str]:
    """Character bigrams of one CJK run."""
    return [run[i : i + 2] for i in range(len(run) - 1)]


def canon_id(text: str) -> str:
    """Canonical form of an identifier: normalised, without brackets or separators."""
    return _ID_NOISE_RE.sub("", normalize(text))


def wenhao_key(canon: str) -> tuple[str, str, int] | None:
    """Split a canonical 文号 into (issuer prefix, year, number), or None."""
    match = _WENHAO_RE.search(canon)
    if match is None or match.end() != len(canon) or match.start() == 0:
        return None
    return canon[: match.start()], match.group(1), int(match.group(2))


def wenhao_mentions(canon_query: str) -> list[tuple[str, str, int]]:
    """(text before, year, number) for every 文号-like mention in a canonical query."""
    found = []
    for match in _WENHAO_RE.finditer(canon_query):
        found.append((canon_query[: match.start()], match.group(1), int(match.group(2))))
    return found


def digit_runs(text: str) -> set[str]:
    """Runs of 3+ digits in normalised text, as written and with separators removed."""
    joined = _DIGIT_SEP_RE.sub("", text)
    return set(_DIGITS_RE.findall(text)) | set(_DIGITS_RE.findall(joined))
