"""Word lists of the query index: stop words, filler, question phrases, colloquial verbs.

These describe how citizens phrase questions in general; words for the bureau's own
domain ("的士" = "出租车") belong in the engine's domain lexicon (domain_lexicon.toml,
domain.py) or a content pack's [[synonym]] records instead.
"""

from __future__ import annotations

# Function words and particles that carry no topic (dropped from records and questions).
STOP_WORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嘛 啦 哈 么 嗯 噢 诶 哎 呗 咧 滴 地 得 着 过 之 其 而 且 与 及 或
    和 跟 同 对 把 被 让 给 从 向 往 于 以 为 因 由 在 是 有 就 都 也 又 还 再 才 只 很 太 更
    最 好 不 没 没有 这 那 这个 那个 这些 那些 这里 那里 这样 那样 个 些 一 一个 一下 一些
    我 你 您 他 她 它 我们 你们 他们 咱 咱们 自己 人家 大家 请 请问 问 问下 问一下 想 想问
    想知道 我想 想要 我要 要 需要 能 能不能 可以 可不可以 可否 会 会不会 是否 是不是 有没有
    要不要 什么 啥 怎么 怎样 怎么样 如何 哪 哪个 哪些 为什么 为何 多少 几 谁 你好 您好 谢谢
    麻烦 帮 帮忙 帮我 一直 已经 然后 但是 可是 所以 如果 因为 还是 或者 以及 等 等等 里 上
    下 中 内 外 时 时候 去 来 到 用 拿 做 弄 搞 办 该 应该 可 能否 干嘛 干啥 之内 以内 之前 之后
    以后 以前 的话 时间段
    """.split()
)

# Words that are on topic only together with others; they count little on their own.
WEAK_WORDS = frozenset(
    """
    今天 明天 昨天 后天 最近 近期 目前 现在 今年 明年 去年 前年 本周 下周 周末 早上 晚上 上午
    下午 点 号 东西 事情 事 问题 情况 方面 相关 有关 关于 一般 具体 正常 可能 知道 了解
    告诉 看看 说 讲 找 查 咨询 打 开 走 坐 乘 用 买 交 办理 泉州 泉州市 市里 我市 本市 市民
    群众 一点 时间 新 老 大 小 多 少 长 高 低 能 行 看 出来 起来 新的 以后 之前 之后 这几年
    几年 未来 开始 最后 什么时候 啥时候 那段 这段 那边 这边 旁边 里面 一家 一段 一份 一班
    几级 很大 不会 不能 大型 不好 好的 有人 门口 附近 重新 春天 夏天 秋天 冬天 天气
    """.split()
)

# Colloquial phrases: (phrases, terms they stand for, record kinds they point to, boost).
# The phrase is removed from the question; its terms join as optional terms, and records
# of the kinds named are boosted (asking for a telephone number or for the materials to
# bring names the kind of record wanted more surely than "怎么办" does).
QUESTION_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], float], ...] = (
    (("打什么电话", "打哪个电话", "电话是多少", "电话多少", "号码是多少", "号码多少", "打几号",
      "打哪个号码", "哪个号码", "联系方式", "怎么联系", "联系电话", "电话号码", "打电话",
      "什么电话"), ("电话", "热线"), ("hotline",), 2.0),
    (("找谁", "向谁反映", "找哪个部门"), ("电话", "投诉"), ("hotline", "faq"), 1.5),
    (("多少钱", "收费吗", "收不收费", "要钱吗", "要不要钱", "贵不贵", "费用多少", "交多少",
      "太贵"),
     ("收费", "费用"), (), 1.0),
    (("不要钱", "不收钱", "不花钱", "免费吗"), ("免费",), (), 1.0),
    (("在哪里", "在哪儿", "在哪", "去哪里", "去哪儿", "去哪", "到哪里", "到哪", "哪里", "哪儿",
      "什么地方", "啥地方"), ("地址", "窗口", "地点", "办理"), (), 1.0),
    (("几点上班", "几点下班", "几点开门", "几点", "上班时间", "什么时候上班", "营业时间"),
     ("时间",), (), 1.0),
    (("带什么", "带啥", "要什么材料", "需要什么材料", "什么材料", "哪些材料", "要准备什么",
      "准备什么", "需要什么", "要什么", "需要准备", "要准备", "准备"), ("材料",), ("guide",), 2.0),
    (("怎么办理", "如何办理", "怎样办理", "怎么申请", "如何申请", "怎么办", "咋办", "怎么弄",
      "怎么搞", "怎么处理", "手续", "怎么个流程"), ("办理", "申请", "流程"), ("guide", "faq"),
     1.5),
    (("多久", "几天", "多长时间", "要多长时间", "多少天"), ("时限", "工作日"), (), 1.0),
    (("开不开", "还开吗", "开吗", "停不停", "停了吗", "停没停", "停了没有", "有没有停", "通不通",
      "能不能走", "能走吗", "能过吗", "正常吗"), ("停航", "停运", "恢复", "运行", "调整"),
     ("notice", "faq"), 1.5),
    (("什么时候通车", "什么时候建好", "什么时候完工", "啥时候通", "建得怎么样", "建到哪",
      "修好了没", "修好了吗", "修到哪", "什么时候通", "什么时候开始修", "什么时候动工",
      "开工了吗", "完工", "通车"), ("通车", "完工", "建设", "开工"), ("project",), 1.5),
    (("什么规定", "有什么政策", "怎么规定", "新规", "政策解读"), ("规定", "政策", "办法"),
     ("policy",), 1.5),
    # "which were approved / punished": the published results (公示), not how to apply
    (("批了哪些", "批准了哪些", "批了多少", "许可了哪些"), ("许可", "结果", "公示"),
     ("disclosure",), 1.5),
    (("了哪些企业", "了哪些公司", "了哪些单位"), ("结果", "公示"), ("disclosure",), 1.5),
)

# Pure filler that is removed before segmentation (phrases are applied longest first).
FILLERS: tuple[str, ...] = (
    "我想问一下", "想问一下", "麻烦问一下", "请问一下", "我想知道", "我想了解", "想了解一下",
    "请问", "你好", "您好", "我想问", "想问下", "谢谢你", "谢谢", "麻烦你", "麻烦", "帮我查",
    "帮我看", "可以吗", "行不行", "是不是", "有没有", "能不能", "可不可以", "应该", "我想",
    "想要", "我要", "好不好", "对不对",
)

# Colloquial verbs and phrases and the words records use for them (one-directional).
COLLOQUIAL: dict[str, tuple[str, ...]] = {
    "补": ("补办", "补发", "补领", "补卡"),
    "丢": ("丢失", "遗失", "挂失"),
    "掉": ("丢失", "遗失"),
    "罚": ("处罚", "罚款"),
    "批": ("审批", "许可", "批准"),
    "考": ("考试", "考取"),
    "换": ("换发", "更换", "换证"),
    "修": ("维修", "修理", "改造"),
    "退": ("退票", "退款"),
    "坏": ("损坏", "损毁", "故障", "病害"),
    "卖": ("预售", "售票", "购买"),
    "买": ("购买", "购票"),
    "偷": ("丢失", "遗失"),
    "查": ("查询",),
    "落": ("失物", "遗失", "遗落"),
    "堵": ("拥堵", "封闭", "管制"),
    "封": ("封闭", "管制"),
    "通": ("通车",),
    "建": ("建设",),
    "管": ("管理",),
    "号码": ("电话", "热线"),
}

# Content words that point to a record kind, and the boost they give it.
KIND_WORDS: dict[str, str] = {
    "电话": "hotline", "热线": "hotline", "号码": "hotline",
    "规定": "policy", "政策": "policy", "办法": "policy", "细则": "policy", "解读": "policy",
    "规划": "policy", "进度": "project", "进展": "project", "公示": "disclosure",
}
KIND_WORD_BOOST = 1.3

# What marks a question as being about the account itself ("这个公众号能干嘛"), and a
# record as being about it (its title names one of ACCOUNT_TITLE_WORDS): such records
# only rank for such questions, never on top of ordinary ones (issue 8, item 4).
ACCOUNT_PHRASES: tuple[str, ...] = (
    "公众号", "服务号", "本号", "这个号", "你们能", "你能做", "你能干", "你能查", "什么功能",
    "能查什么", "可以查什么",
)
ACCOUNT_TITLE_WORDS: tuple[str, ...] = ("公众号", "服务号", "本号")

# How a referral record opens its answer: another agency's business (驾照 -> 交警, 火车票 ->
# 12306), "clearly marked as not our service" (issue 8, item 3; the sample pack's
# faq-ref-* records). A referral answers a question that names its topic (one of its
# keywords) or that none of our own records answers; it never outranks our own answer.
REFERRAL_MARK = "【非交通运输局业务】"

# The last character of a word naming a document a citizen holds (身份证, 从业资格证, 车票,
# 公交卡, 驾照). Chinese compounds put the head last, so two such words with different
# modifiers are different documents: a record about 从业资格证 (which lists 身份证 among
# the materials) does not answer "身份证过期了怎么换".
DOCUMENT_HEADS = frozenset("证票卡照")
# A verb before such a head makes an action on a document, not a document: 买票, 办证, 补卡,
# 换证, 退票, 刷卡, 拍照.
DOCUMENT_VERBS = frozenset("买购订取退改补换办领考查验挂刷充拍")

# Relative year words and their offset from the current year.
RELATIVE_YEARS: dict[str, int] = {"今年": 0, "去年": -1, "明年": 1, "前年": -2, "后年": 2}
