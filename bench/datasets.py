"""Generated chat datasets for the benchmark: realistic in shape, deterministic, made once.

The *mix* (what the headline figures are measured on) imitates a support team's
fine-tuning file:

- 55 % single-turn: a system message, a question, an answer;
- 25 % multi-turn: two to five user/assistant exchanges, some with ``"weight": 0``
  on an early assistant message;
- 10 % tool calling: the same three ``tools`` definitions on every such line, an
  assistant message with one or two ``tool_calls``, the ``tool`` answers (JSON),
  the final answer;
- 7 % in other scripts (French, German, Spanish, Russian, Japanese, Chinese, emoji);
- 3 % very short exchanges ("Hi" / "Hello, how can I help?");
- and, about once per 64 MB, a long-document example (a pasted document of 66-70 KB,
  about 13,000 tokens): longer in bytes than gpt-4o-mini's 65,536-token limit, so its
  tokens are counted (and the o200k_base encoding loaded), the worst case for memory.
  Every ~20,000th example is a 20-40 KB document, counted for gpt-35-turbo
  (16,385 tokens per example) but not for gpt-4o-mini.

Every example is valid for both gpt-4o-mini-2024-07-18 and gpt-35-turbo-0125 and
unique (a ticket number in the first question). English text uses a small
vocabulary with ~3 % accented or CJK words.

The 64 MB and 256 MB files are prefixes (whole lines) of the 512 MB one, so the
generator runs once. *Shape* files (short chat, tool calling, long chat) isolate
the per-example costs that the mix averages out.
"""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Callable, Iterator

import orjson

GENERATOR_VERSION = 3  # part of the cache key: bump when the output changes
MB = 1 << 20
MAX_FILE_BYTES = 512 * MB  # the service's limit; the "512 MB" file stays just under it

WORDS = ("the quick brown fox jumps over lazy dog customer order refund policy account please thank you "
         "help support ticket shipping delivery price invoice address change cancel return warranty "
         "package tracking number store credit card payment billing subscription plan upgrade "
         "downgrade password reset login email phone message today tomorrow week business days "
         "receipt product item size color replacement damaged missing late early available stock").split()
ACCENTED = ("café", "naïve", "données", "Straße", "señor", "日本語", "größe", "façade", "crème", "Zürich")
FOREIGN = (
    "Bonjour, je voudrais savoir où en est ma commande. Elle devait arriver hier et je n'ai reçu aucune nouvelle.",
    "Vielen Dank für Ihre Geduld. Ihre Bestellung wurde heute verschickt und kommt in zwei bis drei Tagen an.",
    "Hola, necesito cambiar la dirección de envío de mi pedido. ¿Es posible hacerlo todavía?",
    "Здравствуйте! Мой заказ пришёл повреждённым. Можно ли оформить возврат или замену?",
    "ご注文ありがとうございます。お荷物は明日発送され、三営業日以内に到着する予定です。",
    "您好，我的订单显示已发货，但物流信息三天没有更新了，请帮我查一下。",
    "Merci ! 😊 Votre remboursement a été traité ; il apparaîtra sous 5 à 7 jours ouvrés. 🎉",
    "Natürlich – ich habe die Rücksendung für Sie angelegt. Das Etikett kommt per E-Mail. ✅",
)
SYSTEMS = (
    "You are Contoso's support assistant. Answer briefly and politely, and never promise refunds "
    "that the policy does not allow.",
    "You are Contoso's support assistant. Answer briefly and politely.",
    "You are a helpful assistant for Contoso Outdoor Gear customers. Use the tools to look orders up.",
)
TOOLS = [
    {"type": "function", "function": {
        "name": "get_order", "description": "Look an order up by its number",
        "parameters": {"type": "object", "properties": {
            "order_id": {"type": "string", "description": "The order number, e.g. 1234567"}},
            "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "create_return", "description": "Start a return for items of an order",
        "parameters": {"type": "object", "properties": {
            "order_id": {"type": "string"}, "reason": {"type": "string", "enum": ["damaged", "wrong_item", "other"]},
            "items": {"type": "array", "items": {"type": "string"}}}, "required": ["order_id", "reason"]}}},
    {"type": "function", "function": {
        "name": "track_package", "description": "Current position of a package",
        "parameters": {"type": "object", "properties": {"tracking_number": {"type": "string"}},
                       "required": ["tracking_number"]}}},
]


class _Text:
    """Pools of sentences built once, so that an example costs a few choices and joins."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sentences = [self._sentence(rng.randint(5, 25)) for _ in range(6000)]
        self.short = [self._sentence(rng.randint(5, 12)) for _ in range(2000)]

    def _sentence(self, n: int) -> str:
        rng = self.rng
        words = [rng.choice(WORDS) if rng.random() > 0.03 else rng.choice(ACCENTED) for _ in range(n)]
        return " ".join(words).capitalize() + "."

    def para(self, lo: int, hi: int) -> str:
        return " ".join(self.rng.choices(self.sentences, k=self.rng.randint(lo, hi)))

    def document(self, nbytes: int) -> str:
        parts, size = [], 0
        while size < nbytes:
            s = self.rng.choice(self.sentences)
            if not self.rng.randrange(12):
                s += "\n\n"
            parts.append(s)
            size += len(s) + 1
        return " ".join(parts)


def _examples(seed: int) -> Iterator[dict]:
    rng = random.Random(seed)
    text = _Text(rng)
    r = rng.random
    n = 0
    next_huge = 1500  # the first long document comes early, so every prefix file has one
    while True:
        n += 1
        ticket = f" (ticket {n:07d})"
        system = {"role": "system", "content": SYSTEMS[0] if r() < 0.85 else rng.choice(SYSTEMS)}
        x = r()
        if n == next_huge:
            next_huge += 45_000 + rng.randrange(10_000)
            doc = text.document(66_000 + rng.randrange(4_000))
            yield {"messages": [system, {"role": "user", "content": "Summarise this support log" + ticket + ":\n\n" + doc},
                                {"role": "assistant", "content": text.para(3, 8)}]}
        elif n % 20_000 == 0:
            doc = text.document(20_000 + rng.randrange(20_000))
            yield {"messages": [system, {"role": "user", "content": "Summarise this conversation" + ticket + ":\n\n" + doc},
                                {"role": "assistant", "content": text.para(3, 8)}]}
        elif x < 0.55:
            yield {"messages": [system, {"role": "user", "content": text.para(1, 4) + ticket},
                                {"role": "assistant", "content": text.para(1, 6)}]}
        elif x < 0.80:
            msgs = [system]
            turns = rng.randint(2, 5)
            for t in range(turns):
                msgs.append({"role": "user", "content": text.para(1, 3) + (ticket if not t else "")})
                a = {"role": "assistant", "content": text.para(1, 4)}
                if t < turns - 1 and r() < 0.2:
                    a["weight"] = 0
                msgs.append(a)
            yield {"messages": msgs}
        elif x < 0.90:
            order = f"{rng.randrange(10**7):07d}"
            calls = [{"id": f"call_{n:07d}a", "type": "function", "function": {
                "name": "get_order", "arguments": orjson.dumps({"order_id": order}).decode()}}]
            if r() < 0.3:
                calls.append({"id": f"call_{n:07d}b", "type": "function", "function": {
                    "name": "track_package", "arguments": orjson.dumps({"tracking_number": f"1Z{order}"}).decode()}})
            msgs = [{"role": "system", "content": SYSTEMS[2]},
                    {"role": "user", "content": text.para(1, 2) + ticket},
                    {"role": "assistant", "content": None, "tool_calls": calls}]
            for c in calls:
                msgs.append({"role": "tool", "tool_call_id": c["id"], "content": orjson.dumps(
                    {"order_id": order, "status": rng.choice(("shipped", "delivered", "processing")),
                     "eta": f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}).decode()})
            msgs.append({"role": "assistant", "content": text.para(1, 3)})
            yield {"tools": TOOLS, "messages": msgs}
        elif x < 0.97:
            yield {"messages": [system, {"role": "user", "content": rng.choice(FOREIGN) + ticket},
                                {"role": "assistant", "content": " ".join(rng.choices(FOREIGN, k=rng.randint(1, 3)))}]}
        else:
            yield {"messages": [system, {"role": "user", "content": "Hi!" + ticket},
                                {"role": "assistant", "content": "Hello, how can I help?"}]}


def _short(seed: int) -> Iterator[dict]:
    """~220-byte examples: the per-example cost at its largest share."""
    rng = random.Random(seed)
    text = _Text(rng)
    system = {"role": "system", "content": "You are terse."}
    n = 0
    while True:
        n += 1
        yield {"messages": [system, {"role": "user", "content": rng.choice(text.short) + f" #{n}"},
                            {"role": "assistant", "content": rng.choice(text.short)}]}


def _tools(seed: int) -> Iterator[dict]:
    """Tool-calling examples only (the full walk on every line)."""
    for obj in _examples(seed):
        if "tools" in obj:
            yield obj


def _long(seed: int) -> Iterator[dict]:
    """~8 KB chat examples: parsing dominates."""
    rng = random.Random(seed)
    text = _Text(rng)
    n = 0
    while True:
        n += 1
        msgs = [{"role": "system", "content": SYSTEMS[0]}]
        for _ in range(4):
            msgs.append({"role": "user", "content": text.para(6, 12) + f" #{n}"})
            msgs.append({"role": "assistant", "content": text.para(6, 12)})
        yield {"messages": msgs}


KINDS: dict[str, tuple[str, Callable[[int], Iterator[dict]]]] = {
    "mix": ("realistic chat mix (multi-turn, tools, unicode, long documents)", _examples),
    "short": ("short chat examples (~220 B)", _short),
    "tools": ("tool-calling examples only", _tools),
    "long": ("long chat examples (~8 KB, 9 messages)", _long),
}


def _write(path: Path, examples: Iterator[dict], limit: int) -> None:
    tmp = path.with_suffix(".partial")
    size = 0
    dumps = orjson.dumps
    buf: list[bytes] = []
    with open(tmp, "wb") as fh:
        for obj in examples:
            line = dumps(obj) + b"\n"
            if size + len(line) > limit:
                break
            buf.append(line)
            size += len(line)
            if len(buf) >= 4096:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    os.replace(tmp, path)


def _prefix(src: Path, dst: Path, limit: int) -> None:
    """The whole lines of ``src`` that fit in ``limit`` bytes."""
    tmp = dst.with_suffix(".partial")
    size = 0
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        for line in fin:
            if size + len(line) > limit:
                break
            fout.write(line)
            size += len(line)
    os.replace(tmp, dst)


def dataset(cache: Path, kind: str, size_mb: int, seed: int = 7, log: Callable[[str], None] = print) -> Path:
    """The path of a generated dataset (made on first use, then reused from ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(f"{GENERATOR_VERSION}:{kind}:{seed}".encode()).hexdigest()[:8]
    path = cache / f"{kind}-{size_mb}mb-{key}.jsonl"
    if path.exists():
        return path
    limit = min(size_mb * MB, MAX_FILE_BYTES - 4096)
    if kind == "mix" and size_mb < 512:
        full = dataset(cache, kind, 512, seed, log)
        _prefix(full, path, limit)
        return path
    log(f"generating {path.name} ({KINDS[kind][0]}) once ...")
    _write(path, KINDS[kind][1](seed), limit)
    return path
