"""A reply's visible text: what its sender wrote, without the earlier mail it quotes.

Mail clients mark a quoted message in one of three ways, and a reply is read
line by line for all three:

- an *attribution* ("On Mon, 1 Jan 2024, Ann <a@x> wrote:", "Am … schrieb …:",
  "2024年1月1日(月) 10:00 Ann <a@x>:", in many languages; up to six lines, as
  clients wrap it) or an Outlook-style *header block* ("From: … / Sent: …", bold
  "*From:*", "Von: … / Gesendet: …", a "-----Original Message-----" rule);
- ``>`` at the start of each quoted line (``|`` right below an attribution);
- in HTML, a quote container (see ``html_text``), rendered here as ``>`` lines.

A notification service's reply delimiter ("-- REPLY ABOVE THIS LINE --") ends
the reply wherever it stands.

An attribution or header block followed by ``>`` lines only introduces the
quote: the reply may go on below it (bottom-posting) or between its parts
(interleaving), and those lines are kept. Followed by unmarked text, it starts
the earlier message, which runs to the end. ``>`` lines with nothing saying
they quote (no attribution, a single line between lines of text, as in
">>> look here <<<") are kept unless the mail quotes elsewhere.

Every check looks at a line and at most the twelve after it, on lines of at most
``MAX_LINE`` characters, with string methods and regular expressions without
nested repetition: the work grows linearly with the mail, whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Attributions and header lines are short; a longer line is never one, which bounds the work per line.
MAX_LINE = 400
# Clients wrap an attribution over up to three lines; Polymail spreads one over six.
MAX_ATTRIBUTION_LINES = 6

# Words an attribution starts with: "On <date>, <who> wrote:" and its translations.
_INTRO = re.compile(
    r"(?:On|Le|El|Il|In data|Em|Am|Op|W dniu|Dnia|Wiadomość napisana przez|Den|den|På|Vào|Dne|Pe|pe|Ngày|В|в"
    r"|Στις|في|在|於|Dana)(?=[\s,])"
)
# The verbs that end an attribution ("… wrote:"), longest first so "napisał(a)" wins over "napisał".
_ON_MID_LINE = re.compile(r"[\s-]On\s")
_VERBS_AT_END = sorted(
    [
        "wrote", "writes", "sent",  # English
        "a écrit", "écrit",  # French
        "escribió", "escribio",  # Spanish
        "ha scritto", "scritto",  # Italian
        "escreveu",  # Portuguese
        "schrieb", "geschrieben",  # German
        "schreef", "geschreven", "verzond",  # Dutch
        "skrev",  # Danish, Norwegian, Swedish
        "napisał", "napisała", "napisał(a)", "pisze",  # Polish
        "napsal", "napsala", "napsal(a)",  # Czech
        "napisao je", "napisala je", "je napisao", "je napisala", "napisao/la je",  # Croatian, Serbian, Bosnian
        "kirjoitti",  # Finnish
        "írta",  # Hungarian
        "yazdı",  # Turkish
        "написал", "написала", "написал(а)", "пишет",  # Russian
        "написав", "написала", "пише",  # Ukrainian
        "έγραψε",  # Greek
        "a scris",  # Romanian
        "كتب", "كتبت", "كتب/كتبت",  # Arabic
        "đã viết", "viết",  # Vietnamese
        "写道", "寫道",  # Chinese
        "書きました", "のメッセージ",  # Japanese
        "작성", "작성함", "작성하였습니다",  # Korean
    ],
    key=len,
    reverse=True,
)
_VERB_AT_END = re.compile("(?:" + "|".join(map(re.escape, _VERBS_AT_END)) + r")\Z")
_LONGEST_VERB = len(_VERBS_AT_END[0])
# How many blank lines may follow an attribution that ends the text ("Ann wrote:", its quote cut off).
MAX_TRAILING_BLANKS = 12
# A verb and its colon inside a line, where a flattened quote runs on after the attribution.
_VERB_COLON = re.compile("(?:" + "|".join(map(re.escape, _VERBS_AT_END)) + r")[ \t]?[:：]")
# Languages that put the verb before the sender: "Am <date> schrieb <who> <addr>:".
_VERBS_BEFORE_NAME = re.compile(r"\b(?:schrieb|schreef|skrev|napisał|napisała|pisze|napisana przez)\b")
# The sender first, then the verb and the date: "Ann <a@x> schrieb am Mo., 1. Jan. 2024:", "a@x wrote on …:".
_VERB_THEN_DATE = re.compile(r"\b(?:schrieb am|schreef op|skrev den|wrote on|a écrit le|escribió el|ha scritto il)\b")
# Marks a reader does not see: bidirectional controls (Arabic, Hebrew clients) and zero-width characters.
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
_LETTER_BEFORE = re.compile(r"\w")

# "-----Original Message-----" and its translations, compared without case, dashes or spaces.
_ORIGINAL_MESSAGE = {
    "original message", "reply message", "ursprüngliche nachricht", "antwort nachricht",
    "oprindelig meddelelse", "oprindelig besked", "opprinnelig melding", "ursprungligt meddelande",
    "original nachricht", "oorspronkelijk bericht", "message d'origine", "message d’origine", "mensaje original",
    "messaggio originale", "mensagem original", "wiadomość oryginalna", "oryginalna wiadomość",
    "исходное сообщение", "původní zpráva", "alkuperäinen viesti", "原始邮件", "原始郵件",
    "元のメッセージ", "원본 메시지", "tin nhắn gốc", "thư gốc",
}
# "Message" in those languages, for a rule's label with a word not listed ("-----Reply Message-----").
_MESSAGE_WORDS = frozenset({
    "message", "nachricht", "bericht", "meddelelse", "besked", "melding", "meddelande", "mensaje", "messaggio",
    "mensagem", "wiadomość", "сообщение", "zpráva", "viesti", "üzenet", "mesaj", "邮件", "郵件", "メッセージ", "메시지",
})
# A forwarded message is content the sender chose to send, not a quote: nothing after it is cut.
_FORWARDED = {
    "forwarded message", "begin forwarded message", "weitergeleitete nachricht", "message transféré",
    "début du message réexpédié", "mensaje reenviado", "messaggio inoltrato", "mensagem encaminhada",
    "doorgestuurd bericht", "videresendt meddelelse", "videresendt melding", "vidarebefordrat meddelande",
    "przekazana wiadomość", "пересылаемое сообщение", "転送されたメッセージ", "转发的邮件", "轉寄的郵件",
    "전달된 메시지", "forwarded message follows",
}

# The fields of a quoted header block, per language: (name, is it the block's sender or date).
_FIELDS = {
    "from": ["From", "Von", "De", "Van", "Fra", "Från", "Od", "Da", "От", "Từ", "发件人", "寄件者", "差出人",
             "送信者", "보낸 사람", "보낸사람", "Lähettäjä", "Kimden", "Feladó", "من", "Από", "Nadawca"],
    "date": ["Date", "Sent", "Datum", "Gesendet", "Envoyé", "Enviado", "Enviada", "Inviato", "Verzonden",
             "Sendt", "Skickat", "Wysłano", "Data", "Fecha", "Dato", "Отправлено", "Дата", "Đã gửi", "Ngày",
             "发送时间", "日期", "寄件日期", "送信日時", "日付", "보낸 날짜", "날짜", "Lähetetty", "Odesláno",
             "Gönderildi", "Tarih", "Enviado el", "Enviada em", "Envoyé le", "Message du", "Envoye",
             "تم الإرسال", "التاريخ", "Στάλθηκε", "Ημερομηνία"],
    "other": ["To", "Subject", "Cc", "Bcc", "Reply-To", "An", "Betreff", "Antwort an", "À", "A", "Objet",
              "Para", "Asunto", "Assunto", "Oggetto", "Aan", "Onderwerp", "Til", "Emne", "Till", "Ämne", "Do",
              "Temat", "DW", "Кому", "Тема", "Копия", "Đến", "Tới", "Chủ đề", "收件人", "主题", "抄送",
              "收件者", "主旨", "副本", "宛先", "件名", "받는 사람", "받는사람", "제목", "참조", "Komu",
              "Předmět", "Kopie", "Vastaanottaja", "Aihe", "Kime", "Konu", "Kopia", "Kopi", "Importance",
              "Priority", "Attachments", "Sujet", "Copie à", "إلى", "الموضوع", "نسخة",
              "Προς", "Θέμα", "Κοιν", "Adresat"],
}
_FIELD_KIND = {name.casefold(): kind for kind, names in _FIELDS.items() for name in names}
_FIELD = re.compile(
    r"[ \t\xa0\u200e\u200f\u202a-\u202e]*\*{0,2}[ \t]?("
    + "|".join(sorted(map(re.escape, _FIELD_KIND), key=len, reverse=True))
    + r")[ \t\xa0\u202f]?\*{0,2}[ \t\xa0\u202f]?[:：]",  # French puts a (narrow) no-break space before ":"
    re.IGNORECASE,
)
_SUPERCITE = re.compile(r"[A-Za-z]{1,10}>")
# Gmail's oldest attribution, when the sender had no address to show: "2016-03-03 17:21 GMT+01:00 Ann Example".
_GMAIL_DATED = re.compile(r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} GMT[+-]\d{2}:\d{2} \S")
_WEEKDAY_START = re.compile(r"\w{2,4}[.,]?[ \t]+\d")
_DATE_START = re.compile(r"\d{1,4}[-/.年]\d{1,2}[-/.月]\d{1,4}|\d{4}년")
_PAREN_LINK = re.compile(r"\(https?://[^\s()]*\)[\s>]*")
_RULE_CHARS = frozenset("-_=—*")


def _quoted(line: str) -> bool:
    """A quoted line: ">" first, or Supercite's initials before it ("C> …", "Richard> …")."""
    stripped = line.lstrip()
    return stripped.startswith(">") or _SUPERCITE.match(stripped) is not None


def _is_rule(stripped: str, shortest: int = 5) -> bool:
    """A line drawn across, as Outlook puts above a quoted header block: five or more of ``-_=``."""
    return len(stripped) >= shortest and set(stripped) <= _RULE_CHARS


def _opens_original(stripped: str) -> bool:
    """ "-----Original Message-----", "-----Original-Nachricht-----", or such a rule with the header after it."""
    words = stripped.lstrip("-_=*> \t").casefold().replace("-", " ")
    if any(words.startswith(phrase) for phrase in _ORIGINAL_MESSAGE) or words.strip(" _=*:") in _ORIGINAL_MESSAGE:
        return True
    # Between rules, any two words with "message" among them, however the other is spelt ("Ursrpüngliche").
    pair = words.strip(" _=*:").split()
    return (stripped.startswith("---") and stripped.endswith("---") and len(pair) == 2
            and (pair[0] in _MESSAGE_WORDS or pair[1] in _MESSAGE_WORDS))


def _label(stripped: str) -> str:
    """A marker line's words, without the dashes around them: "----- Original Message -----" → "original message"."""
    return stripped.strip("-_=*>:：[] \t").casefold()


def _ends_with_verb(text: str) -> bool:
    tail = text[-_LONGEST_VERB - 1 :]  # the verb is at the end: only the tail is searched
    found = _VERB_AT_END.search(tail)
    if found is None:
        return False
    verb, before = found.group(), tail[: found.start()]
    # A whole word ("wrote", not "overwrote"), except in scripts written without spaces (写道, 작성).
    return not before or verb[0] > "\u2fff" or not _LETTER_BEFORE.fullmatch(before[-1])


def _is_attribution(joined: str) -> bool:
    """Does this text (one to six lines joined by spaces) introduce a quoted message?"""
    bare = joined.strip().strip(_INVISIBLE).strip()
    dashed = bare.startswith("-") and bare.rstrip().endswith("-")
    body = bare.strip("-").strip()
    colon = body.endswith((":", "："))
    if colon:
        body = body[:-1].rstrip()
    intro = _INTRO.match(body) is not None
    dated = any(char.isdigit() for char in body)
    addressed = "@" in body
    if _ends_with_verb(body) and (colon or dashed):
        return intro or dated or addressed or dashed
    if _ends_with_verb(body) and intro and dated and addressed:
        return True  # "On <date> <who> <address> wrote", the colon lost
    if colon and dated and ((intro and _VERBS_BEFORE_NAME.search(body)) or _VERB_THEN_DATE.search(body)):
        return True
    # Gmail's fallback and several languages': "<date> <who> <address>:", no verb at all.
    return colon and addressed and dated and body.endswith((">", "]", ")"))


def _ends_like_attribution(line: str) -> bool:
    """The cheap test of an attribution's last line, made before any joining."""
    tail = line.rstrip().rstrip(_INVISIBLE).rstrip().rstrip("-").rstrip()
    if not tail or len(line) > MAX_LINE:
        return False
    if tail.endswith((":", "：")):
        return True
    return _ends_with_verb(tail) and line.strip().endswith("-")


@dataclass(frozen=True)
class _Split:
    """Where the quoted part starts: line ``start``, column ``column``; its introduction spans ``lines`` lines."""

    start: int
    column: int
    lines: int


def _attribution_at(lines: list[str], index: int, ends: list[bool]) -> _Split | None:
    first = lines[index]
    if len(first) > MAX_LINE or _quoted(first) or not first.strip():
        return None
    stripped = first.strip().strip(_INVISIBLE)
    # One line may end with the verb alone ("On … <a@x> wrote"); a wrapped one ends with its colon.
    if (ends[index] or _ends_with_verb(stripped.rstrip())) and _is_attribution(stripped):
        return _Split(index, _reply_before(first), 1)
    # The date and an address, without a colon, right above a ">" quote (Gmail's oldest form), maybe wrapped.
    if _DATE_START.match(stripped):
        if "@" in stripped and _next_is_quote(lines, index + 1, bars=True):
            return _Split(index, 0, 1)
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        wrapped = stripped.endswith("<") and "@" in following and len(following) <= MAX_LINE
        if wrapped and _next_is_quote(lines, index + 2):
            return _Split(index, 0, 2)
    if _GMAIL_DATED.match(stripped):
        return _Split(index, 0, 1)
    rest = lines[index + 1 : index + MAX_TRAILING_BLANKS + 1]
    last = index + MAX_TRAILING_BLANKS >= len(lines) and not any(line.strip() for line in rest)
    if last and ends[index] and _ends_with_verb(stripped.rstrip(":： ")):
        return _Split(index, _reply_before(first), 1)  # "Ann wrote:" whose quote is gone (below a delimiter)
    if _INTRO.match(stripped) and (verb := _VERB_COLON.search(stripped)) and _is_attribution(stripped[: verb.end()]):
        return _Split(index, 0, 1)  # "On … wrote:Email Notification …": the quote runs on in the line
    # Most open with "On" or the date; some with the sender ("Ann <a@x> schrieb am Fr., 28.\nApr. 2017 …:").
    if not any(ends[index + 1 : index + MAX_ATTRIBUTION_LINES]):
        return None  # no line below could end one
    if not (_opens_attribution(stripped) or ("@" in stripped and _VERB_THEN_DATE.search(stripped))):
        return None
    dated = any(char.isdigit() for char in stripped)
    parts = [stripped]
    for count in range(2, MAX_ATTRIBUTION_LINES + 1):
        end = index + count - 1
        if end >= len(lines) or len(lines[end]) > MAX_LINE or (count > 3 and not dated):
            return None  # only a dated first line may spread as far as Polymail's six
        part = lines[end].strip()
        if (not part and not dated) or (part.startswith(">") and len(part) > 12):
            return None  # a blank line, or a quoted line beyond a lone "> wrote:", ends it
        # "> wrote:" loses its ">", a wrapped address's ">:" keeps it.
        parts.append(part if part.startswith(">:") else part.lstrip(">").strip())
        if ends[end] and _is_attribution(" ".join(p for p in parts if p)):
            if not part or any(_attribution_whole(lines, later, end) for later in range(index + 1, end + 1)):
                return None  # a later line starts it: this one is the reply's
            return _Split(index, 0, count)
    return None


def _attribution_whole(lines: list[str], start: int, end: int) -> bool:
    text = " ".join(line.strip() for line in lines[start : end + 1] if line.strip())
    # A wrapped address ("416ffd…@example.com> wrote:") starts with a digit too, but not with a date.
    opens = _INTRO.match(text) is not None or _DATE_START.match(text) is not None or text.startswith("-")
    return opens and _is_attribution(text)


def _opens_attribution(stripped: str) -> bool:
    """Could an attribution start here: "On", a date, a weekday's abbreviation and a date ("tir. 18.", "ср, 30")?"""
    return (_INTRO.match(stripped) is not None or stripped[:1].isdigit() or stripped.startswith("-")
            or _WEEKDAY_START.match(stripped) is not None)


def _reply_before(line: str) -> int:
    """The column an attribution starts at on a line that holds the reply's end too ("Thanks. On … wrote:")."""
    stripped = line.lstrip()
    # A line opening with "On" or a weekday is the attribution; one opening with a digit may be a reply
    # ("11 would be best On … wrote:") unless no "On" further on starts one.
    if _opens_attribution(stripped) and not (stripped[:1].isdigit() and _ON_MID_LINE.search(line)):
        return 0
    # Only English's capitalised "On" is told from a sentence's words mid-line ("в", "den" are common words).
    for found in _ON_MID_LINE.finditer(line):
        at = found.start() + 1
        if _is_attribution(line[at:]):
            return at
    return 0


def _next_is_quote(lines: list[str], index: int, bars: bool = False) -> bool:
    """Is the next line with text within three a quoted one (with ``bars``, "| " counts too)?"""
    for line in lines[index : index + 3]:
        if line.strip():
            return _quoted(line) or (bars and _barred(line))
    return False


def _barred(line: str) -> bool:
    """A line quoted with a bar, as some clients quote below an attribution: "| text"."""
    return line.lstrip().startswith("|")


def _bar_run(lines: list[str], index: int) -> int:
    """Where the run of "|" lines (blank lines between them allowed) that starts near ``index`` ends."""
    end = next_text = index
    while next_text < len(lines) and (not lines[next_text].strip() or _barred(lines[next_text])):
        if lines[next_text].strip():
            end = next_text + 1
        next_text += 1
    return end


# Fields some clients write in lower case (Lotus Notes' "cc:"); no sentence starts with them.
_LOWER_FIELDS = frozenset({"cc", "bcc"})


def _field(line: str) -> str | None:
    if len(line) > MAX_LINE:
        return None
    found = _FIELD.match(line)
    if found is None or (found.group(1)[0].islower() and found.group(1) not in _LOWER_FIELDS):
        return None  # clients write "From:" or "FROM:"; "from: the start, …" is a sentence
    return _FIELD_KIND[found.group(1).casefold()]


# A header block some clients run into one line: "…From: Ann <a@x>Sent: Monday …To: Bob …Subject: …".
_INLINE_HEADERS = (("From:", "Sent:"), ("From:", "Date:"), ("Von:", "Gesendet:"), ("De:", "Enviado:"),
                   ("De :", "Envoyé :"), ("Van:", "Verzonden:"), ("Od:", "Wysłano:"), ("Fra:", "Sendt:"))
MAX_INLINE_HEADER = 4000


_LONGEST_FIELD = max(map(len, _FIELD_KIND))
# A header block run into one line has a colon per field and a few in times and links; more is other text.
MAX_INLINE_COLONS = 12


def _fields_in(line: str) -> list[tuple[int, str]]:
    """Each field name before a colon in ``line``, not inside a word: (column, kind). "13:46Nadawca:" holds one."""
    found: list[tuple[int, str]] = []
    colon = line.find(":")
    while colon > 0:
        end = colon - 1 if line[colon - 1] in " \t" else colon
        for start in range(max(0, end - _LONGEST_FIELD), end):  # the longest name first
            name = line[start:end]
            kind = _FIELD_KIND.get(name.casefold())
            if kind and not name[0].islower() and (start == 0 or not line[start - 1].isalpha()):
                found.append((start, kind))
                break
        colon = line.find(":", colon + 1)
    return found



def _inline_header_at(lines: list[str], index: int) -> _Split | None:
    line = lines[index]
    if len(line) > MAX_INLINE_HEADER:
        return None
    for sender, date in _INLINE_HEADERS:
        at = line.find(sender)
        if at >= 0 and line.find(date, at) > 0 and ("To:" in line[at:] or "Subject:" in line[at:] or at == 0):
            return _Split(index, at, 1)
    # Other orders and languages: three fields or more, the sender among them ("Temat: … Nadawca: … Adresat:").
    if len(line) > MAX_LINE or not 3 <= line.count(":") <= MAX_INLINE_COLONS:
        return None
    found = _fields_in(line)
    if len(found) >= 3 and any(kind == "from" for _, kind in found):
        return _Split(index, found[0][0], 1)
    return None


def _header_block_at(lines: list[str], index: int) -> _Split | None:
    """An Outlook-style quoted header: a sender or date field and at least one more, wrapped lines allowed."""
    kind = _field(lines[index])
    if kind is None:
        return None
    fields, loose, end = 1, 0, index
    kinds = {kind}
    for number in range(index + 1, min(index + 12, len(lines))):
        line = lines[number]
        if not line.strip():
            if number + 1 < len(lines) and _field(lines[number + 1]):
                continue  # newer Outlook puts a blank line between the fields
            break
        if found := _field(line):
            fields, loose, end = fields + 1, 0, number
            kinds.add(found)
        elif loose < 2:
            loose += 1  # a wrapped value ("[mailto:\n bob@example.com]")
        else:
            break
    single = kind == "from" and "@" in lines[index] and _next_is_quote(lines, index + 1)
    # A block opens with its sender or date, or has three fields and one of them ("To:, From:, Cc:, …").
    sender_or_date = bool(kinds & {"from", "date"})
    if not (single or (fields >= 2 and kind != "other" and sender_or_date) or (fields >= 3 and sender_or_date)):
        return None
    start = index
    previous = index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    above = lines[previous].strip() if previous >= 0 else ""
    if _is_rule(above, 3) or (len(above) <= MAX_LINE and _INTRO.match(above) and _VERBS_BEFORE_NAME.search(above)):
        start = previous  # the rule above the block, or an attribution that lost its colon, goes with it
    elif previous < 0 and "date" not in kinds and not any("@" in lines[number] for number in range(index, end + 1)):
        return None  # opening the text without a date or an address, "From: Ann / To: Support" is the reply's memo
    return _Split(start, 0, end - start + 1)


def _marker_at(lines: list[str], index: int) -> _Split | None:
    stripped = lines[index].strip()
    if stripped.startswith(("-", "_", "=", "*")) and _opens_original(stripped):
        return _Split(index, 0, 1)
    return None


def forward_marker(line: str) -> bool:
    """Does this line announce a forwarded message ("---------- Forwarded message ---------")?"""
    stripped = line.strip()
    return len(stripped) <= MAX_LINE and _label(stripped) in _FORWARDED


def _splits(lines: list[str]) -> list[_Split]:
    """Every quote introduction outside quoted lines, in order, up to a forwarded message."""
    ends = [_ends_like_attribution(line) for line in lines]
    found: list[_Split] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _quoted(line) or not line.strip():
            index += 1
            continue
        if forward_marker(line):
            break
        split = (_marker_at(lines, index) or _header_block_at(lines, index) or _attribution_at(lines, index, ends)
                 or _inline_header_at(lines, index))
        if split is None:
            index += 1
            continue
        found.append(split)
        index = split.start + split.lines
    return found


def _continues_quote(lines: list[str], index: int) -> bool:
    """A line that broke out of the quote around it: a wrapped link, or the rest of a parenthesis."""
    if index == 0 or index + 1 >= len(lines) or not (_quoted(lines[index - 1]) and _quoted(lines[index + 1])):
        return False
    line, above = lines[index], lines[index - 1]
    if len(line) > MAX_LINE or len(above) > MAX_LINE:
        return False
    unclosed = (above.count("(") > above.count(")") and ")" in line) or (above.count('"') % 2 and '"' in line)
    # A long quoted line the client wrapped without marking the rest: it goes on in lower case.
    wrapped = len(above) >= 50 and line[:1].islower()
    return unclosed or wrapped or _PAREN_LINK.fullmatch(line.strip()) is not None


# Notification services ask for the reply above a line of theirs: "-- REPLY ABOVE THIS LINE --",
# "##- Please type your reply above this line -##". It and all below it are their message.
_ABOVE_THIS_LINE = "above this line"
# How far before "above this line" the delimiter's dashes or hashes may open it ("-- Please type your reply ").
MAX_DELIMITER_LEAD = 40


def _above_delimiter(lines: list[str]) -> list[str]:
    """The lines above a reply delimiter, and the part of its line before it; all lines when there is none."""
    for number, line in enumerate(lines):
        at = line.casefold().find(_ABOVE_THIS_LINE) if len(line) <= MAX_LINE else -1
        if at < 0:
            continue
        following = next((later for later in lines[number + 1 : number + 4] if later.strip()), "")
        if _quoted(line) and _quoted(following):
            continue  # quoted with the service's message below it: the quote itself says where it ends
        opened = max(line.rfind("--", 0, at), line.rfind("##", 0, at))
        if opened >= 0 and at - opened <= MAX_DELIMITER_LEAD:
            return [*lines[:number], line[:opened].rstrip(" >")]
        words = line.lstrip(" >").casefold()
        if words.startswith(("reply", "please", "type", "write", "respond")) and len(words) <= MAX_DELIMITER_LEAD * 2:
            return lines[:number]
    return lines


def strip_quotes(text: str, *, marked: bool = False) -> str:
    """The lines of ``text`` that are the sender's own: no attribution, header block, or quoted line.

    ``marked``: the ``>`` lines are an HTML quote's, each surely a quote, even one alone among the text.
    """
    lines = _above_delimiter([
        "" if line.strip() and not line.strip().strip(_INVISIBLE) else line  # only zero-width marks: blank
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ])
    drop = [False] * len(lines)
    kept_prefix: dict[int, str] = {}
    introduced = False
    splits = _splits(lines)
    for split in splits:
        after = split.start + split.lines
        if not _next_is_quote(lines, after) and _next_is_quote(lines, after, bars=True):
            after = _bar_run(lines, after)  # a "|" quote goes with the attribution above it
        elif not _next_is_quote(lines, after) and not (after < len(lines) and _quoted(lines[after])):
            if split.column:
                kept_prefix[split.start] = lines[split.start][: split.column].rstrip(" -")
            for number in range(split.start, len(lines)):
                drop[number] = True
            break
        introduced = True
        if split.column:
            kept_prefix[split.start] = lines[split.start][: split.column].rstrip(" -")
        for number in range(split.start, after):
            drop[number] = True
    quoted = [(_quoted(line) or _continues_quote(lines, n)) and not drop[n] for n, line in enumerate(lines)]
    _keep_forwarded(lines, quoted)
    # Below a forward marker the reply quotes nothing: what follows, ">" lines too, is the forwarded mail.
    first_split = splits[0].start if splits else len(lines)
    forward = next((n for n in range(first_split) if not _quoted(lines[n]) and forward_marker(lines[n])), None)
    if forward is not None:
        quoted[forward:] = [False] * (len(lines) - forward)
    if introduced or marked or _quotes_elsewhere(lines, quoted, drop):
        drop = [d or q for d, q in zip(drop, quoted, strict=True)]
    return _assemble(lines, drop, kept_prefix)


def _keep_forwarded(lines: list[str], quoted: list[bool]) -> None:
    """A quote that opens with "Begin forwarded message:", or follows it, is the forward itself (Apple Mail's): kept."""
    number, above = 0, ""
    while number < len(lines):
        if not quoted[number]:
            above = lines[number] if lines[number].strip() else above
            number += 1
            continue
        end = number
        while end < len(lines) and (quoted[end] or not lines[end].strip()):
            end += 1
        first = next((line for line in lines[number:end] if line.lstrip(" >").strip()), "")
        if forward_marker(first.lstrip(" >")) or forward_marker(above):
            quoted[number:end] = [False] * (end - number)
        number = end


def _quotes_elsewhere(lines: list[str], quoted: list[bool], drop: list[bool]) -> bool:
    """Do the ``>`` lines quote: a run of two or more, or a run opening or closing the text?"""
    content = [n for n, line in enumerate(lines) if line.strip() and not drop[n]]
    if not content:
        return False
    for number in content:
        if quoted[number] and (
            number == content[0] or number == content[-1]
            or (number + 1 < len(lines) and quoted[number + 1])
        ):
            return True
    return False


def _assemble(lines: list[str], drop: list[bool], kept_prefix: dict[int, str]) -> str:
    """The kept lines; a dropped stretch takes the blank lines after it along."""
    out: list[str] = []
    swallowing = False
    for number, line in enumerate(lines):
        if number in kept_prefix and kept_prefix[number].strip():
            out.append(kept_prefix[number])
            swallowing = True
            continue
        if drop[number]:
            swallowing = True
            continue
        if swallowing and not line.strip():
            continue
        swallowing = False
        out.append(line)
    first = next((n for n, line in enumerate(out) if line.strip()), len(out))
    return "\n".join(out[first:]).rstrip()


# A client's line under the reply, naming the device or app it was sent from.
_SENT_FROM = re.compile(
    r"[ \t]*(?:Sent from|Sent with|Sent via|Get Outlook for|Envoyé de mon|Envoyé depuis|Envoyé à partir de"
    r"|Téléchargez Outlook|Gesendet von|Von meinem [^\n]{1,60} gesendet|Enviado desde|Enviado do meu|Inviato da"
    r"|Verzonden vanaf|Verstuurd vanaf|Sendt fra|Skickat från|Wysłano z|Отправлено с|Odesláno z"
    r"|Lähetetty [^\n]{1,60}laitteesta|iPhoneから送信|iPadから送信|从我的|發自我的|내 [^\n]{1,60}에서 보냄)"
)
# What may follow "-- " and still be a signature rather than more of the reply.
MAX_SIGNATURE_LINES = 15


def without_signature(text: str) -> str:
    """``text`` without its signature: from a last "-- " line (RFC 3676) on, and "Sent from my …" lines at the end."""
    lines = text.split("\n")
    for number in range(len(lines) - 1, max(-1, len(lines) - MAX_SIGNATURE_LINES - 2), -1):
        if lines[number].rstrip() == "--":
            lines = lines[:number]
            break
    while lines and (not lines[-1].strip() or (len(lines[-1]) <= MAX_LINE and _SENT_FROM.match(lines[-1]))):
        lines.pop()
    return "\n".join(lines)


def visible_text(text: str, html: str | None = None, *, strip_signature: bool = False) -> str:
    """What the sender of a reply wrote: no quoted message, no attribution, and if asked, no signature.

    ``html``, when given, is read for its quote containers (Gmail's, Outlook's,
    Apple Mail's, Thunderbird's); when it has one, or ``text`` is empty, the
    visible text comes from it, otherwise from ``text``.
    """
    source, marked = text, False
    if html and html.strip():
        from chalicelib.mailboxes.html_text import render  # noqa: PLC0415 - html.parser loads only for HTML

        rendered, contained = render(html)
        if contained or not text.strip():
            source, marked = rendered, True
    visible = strip_quotes(source, marked=marked)
    return without_signature(visible) if strip_signature else visible
